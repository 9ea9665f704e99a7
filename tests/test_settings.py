"""A recipe key's default is declared once, in settings.py: the docs' reference table, the
model's dataclass defaults and the parser's defaults, minimums and choices all agree with it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from monoimage.errors import RecipeError
from monoimage.recipe.load import load_recipe
from monoimage.recipe.model import (
    AptRepository,
    ConfigCommand,
    Distro,
    DnfRepository,
    HostMount,
    Layering,
    Probe,
    Recipe,
    RestartPolicy,
    Runtime,
    RuntimeDir,
    Service,
    Strip,
    Template,
)
from monoimage.recipe.settings import SETTINGS, reference_table
from recipe_files import write_recipe

DOC = Path(__file__).resolve().parents[1] / "docs" / "recipes.md"
BEGIN, END = "<!-- settings:begin -->\n", "<!-- settings:end -->"

# The least an image and a service can say, with one item in every list whose items have
# keys with defaults; nothing here gives a value that has a default.
IMAGE: dict[str, Any] = {
    "image": {"name": "test-image"},
    "distro": {"name": "debian", "release": "bookworm",
               "repositories": [{"uri": "http://deb.example/debian", "suite": "bookworm"}]},
    "services": ["alpha"],
    "runtime": {"host_mounts": [{"source": "/srv/alpha"}]},
}
DNF_DISTRO: dict[str, Any] = {"name": "fedora", "release": "40", "packager": "dnf",
                              "repositories": [{"id": "fedora", "baseurl": "http://rpm.example"}]}
SERVICE: dict[str, Any] = {
    "name": "alpha",
    "run": {"argv": ["/usr/bin/alpha"]},
    "config": {"templates": [{"dest": "/etc/alpha.conf", "content": "x"}],
               "commands": [{"argv": ["/usr/bin/alpha", "--check"]}]},
    "ready": {"tcp": {"port": 1883}},
    "runtime_dirs": [{"path": "/run/alpha"}],
}

# Every setting: the model field that holds its default (None where the model has no default
# because the field is required there), and where a loaded recipe keeps the value.
Read = Callable[[Recipe], Any]
LANDS: dict[str, tuple[tuple[type, str] | None, Read]] = {
    "image.tag": (None, lambda r: r.tag),
    "distro.packager": (None, lambda r: r.distro.packager.value),
    "distro.architecture": ((Distro, "architecture"), lambda r: r.distro.architecture),
    "distro.variant": ((Distro, "variant"), lambda r: r.distro.variant),
    "distro.recommends": ((Distro, "recommends"), lambda r: r.distro.recommends),
    "distro.repositories[].components": ((AptRepository, "components"),
                                         lambda r: r.distro.repositories[0].components),
    "distro.repositories[].trusted": ((AptRepository, "trusted"),
                                      lambda r: r.distro.repositories[0].trusted),
    "distro.repositories[].gpgcheck": ((DnfRepository, "gpgcheck"),
                                       lambda r: r.distro.repositories[0].gpgcheck),
    "layering.policy": ((Layering, "policy"), lambda r: r.layering.policy),
    "layering.max_layers": ((Layering, "max_layers"), lambda r: r.layering.max_layers),
    "layering.updates": ((Layering, "updates"), lambda r: r.layering.updates),
    "layering.max_deltas": ((Layering, "max_deltas"), lambda r: r.layering.max_deltas),
    "layering.max_shadowed": ((Layering, "max_shadowed"), lambda r: r.layering.max_shadowed),
    "strip.docs": ((Strip, "docs"), lambda r: r.strip.docs),
    "strip.man": ((Strip, "man"), lambda r: r.strip.man),
    "strip.locales": ((Strip, "locales"), lambda r: r.strip.locales),
    "runtime.memory": ((Runtime, "memory"), lambda r: r.runtime.memory),
    "runtime.pids_limit": ((Runtime, "pids_limit"), lambda r: r.runtime.pids_limit),
    "runtime.read_only": ((Runtime, "read_only"), lambda r: r.runtime.read_only),
    "runtime.network": ((Runtime, "network"), lambda r: r.runtime.network),
    "runtime.pid": ((Runtime, "pid"), lambda r: r.runtime.pid),
    "runtime.ipc": ((Runtime, "ipc"), lambda r: r.runtime.ipc),
    "runtime.privileged": ((Runtime, "privileged"), lambda r: r.runtime.privileged),
    "runtime.devices": ((Runtime, "devices"), lambda r: r.runtime.devices),
    "runtime.host_mounts[].read_only": ((HostMount, "read_only"),
                                        lambda r: r.runtime.host_mounts[0].read_only),
    "site.NAME.secret": (None, lambda r: "NAME" in r.site_secrets),
    "site.NAME.required": (None, lambda r: "NAME" in r.site_required),
    "description": ((Service, "description"), lambda r: r.services[0].description),
    "config.templates[].mode": ((Template, "mode"), lambda r: r.services[0].templates[0].mode),
    "config.templates[].owner": ((Template, "owner"),
                                 lambda r: r.services[0].templates[0].owner),
    "config.commands[].user": ((ConfigCommand, "user"),
                               lambda r: r.services[0].commands[0].user),
    "run.user": ((Service, "user"), lambda r: r.services[0].user),
    "run.workdir": ((Service, "workdir"), lambda r: r.services[0].workdir),
    "ready.tcp.host": ((Probe, "host"), lambda r: r.services[0].ready.host),
    # the model's Probe has no default path nor status: only an http probe has them
    "ready.http.path": (None, lambda r: r.services[0].ready.path),
    "ready.http.status": (None, lambda r: r.services[0].ready.status),
    "ready.timeout": ((Probe, "timeout"), lambda r: r.services[0].ready.timeout),
    "ready.interval": ((Probe, "interval"), lambda r: r.services[0].ready.interval),
    "restart.policy": ((RestartPolicy, "policy"), lambda r: r.services[0].restart.policy),
    "restart.backoff.initial": ((RestartPolicy, "backoff_initial"),
                                lambda r: r.services[0].restart.backoff_initial),
    "restart.backoff.max": ((RestartPolicy, "backoff_max"),
                            lambda r: r.services[0].restart.backoff_max),
    "restart.max_restarts": ((RestartPolicy, "max_restarts"),
                             lambda r: r.services[0].restart.max_restarts),
    "restart.window": ((RestartPolicy, "window"), lambda r: r.services[0].restart.window),
    "stop.signal": ((Service, "stop_signal"), lambda r: r.services[0].stop_signal),
    "stop.timeout": ((Service, "stop_timeout"), lambda r: r.services[0].stop_timeout),
    "reload_signal": ((Service, "reload_signal"), lambda r: r.services[0].reload_signal),
    "critical": ((Service, "critical"), lambda r: r.services[0].critical),
    "runtime_dirs[].owner": ((RuntimeDir, "owner"), lambda r: r.services[0].runtime_dirs[0].owner),
    "runtime_dirs[].mode": ((RuntimeDir, "mode"), lambda r: r.services[0].runtime_dirs[0].mode),
}
DNF_ONLY = {"distro.repositories[].gpgcheck"}
# Keys of the http probe: checked on a service whose probe is one.
HTTP_SERVICE: dict[str, Any] = {**SERVICE, "ready": {"http": {"port": 80}}}
HTTP_ONLY = {"ready.http.path", "ready.http.status"}


def load(root: Path, image: dict[str, Any], service: dict[str, Any] = SERVICE) -> Recipe:
    path = write_recipe(root, {"alpha": yaml.safe_dump(service)}, image=yaml.safe_dump(image))
    return load_recipe(path)


def with_value(doc: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of `doc` with `value` at the setting key `key` (no `[]` keys)."""
    doc = yaml.safe_load(yaml.safe_dump(doc))
    *parents, last = key.split(".")
    mapping = doc
    for part in parents:
        mapping = mapping.setdefault(part, {})
    mapping[last] = value
    return doc


def test_the_docs_reference_table_is_the_generated_one() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert BEGIN in text and END in text
    shown = text[text.index(BEGIN) + len(BEGIN):text.index(END)]
    assert shown == reference_table(), (
        "docs/recipes.md is stale: paste settings.reference_table() between its markers")


def test_every_setting_is_checked_here() -> None:
    assert set(LANDS) == set(SETTINGS)


@pytest.mark.parametrize("key", [k for k, (field, _) in LANDS.items() if field])
def test_the_model_default_is_the_setting(key: str) -> None:
    model, name = LANDS[key][0]  # type: ignore[misc]
    defaults = {f.name: f.default for f in dataclasses.fields(model)}
    assert defaults[name] == SETTINGS[key].default


@pytest.mark.parametrize("key", sorted(SETTINGS))
def test_the_parser_applies_the_default(tmp_path: Path, key: str) -> None:
    image = {**IMAGE, "distro": DNF_DISTRO} if key in DNF_ONLY else IMAGE
    recipe = load(tmp_path, image, HTTP_SERVICE if key in HTTP_ONLY else SERVICE)
    assert LANDS[key][1](recipe) == SETTINGS[key].default


def test_a_tcp_probe_given_as_a_port_takes_the_default_host(tmp_path: Path) -> None:
    recipe = load(tmp_path, IMAGE, {**SERVICE, "ready": {"tcp": 1883}})
    assert recipe.services[0].ready.host == SETTINGS["ready.tcp.host"].default


def rejection(root: Path, key: str, value: Any) -> RecipeError:
    """The error of a recipe that gives `value` to the setting `key`."""
    in_image = SETTINGS[key].file == "image"
    image = with_value(IMAGE, key, value) if in_image else IMAGE
    base = HTTP_SERVICE if key in HTTP_ONLY else SERVICE
    service = base if in_image else with_value(base, key, value)
    with pytest.raises(RecipeError) as caught:
        load(root, image, service)
    assert caught.value.key_path == key
    return caught.value


@pytest.mark.parametrize("key", sorted(k for k, s in SETTINGS.items() if s.minimum is not None))
def test_the_parser_enforces_the_minimum(tmp_path: Path, key: str) -> None:
    minimum = SETTINGS[key].minimum
    assert minimum is not None
    err = rejection(tmp_path, key, minimum - 1)
    assert err.message == f"must be at least {minimum}, not {minimum - 1}"


@pytest.mark.parametrize("key", sorted(k for k, s in SETTINGS.items() if s.choices))
def test_the_parser_accepts_only_the_choices(tmp_path: Path, key: str) -> None:
    err = rejection(tmp_path, key, "bogus")
    assert err.message == f"must be one of {', '.join(SETTINGS[key].choices)}, not 'bogus'"
