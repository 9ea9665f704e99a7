"""What a fresh edge host gets at first boot: the units, the site values file and the mirror
drop-in, as one `HostBundle`, written as an Ignition config (JSON, spec 3.3.0) or the Butane
(YAML) config that translates to it.

Pure: every function returns text.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import yaml

from monoimage.errors import UserError
from monoimage.hosts.quadlet import render_quadlet
from monoimage.hosts.spec import (
    QUADLET_DIR,
    QUADLET_FIRST,
    REGISTRIES_DIR,
    SITE_DIR,
    PodmanVersion,
    env_file_path,
    mirror_conf_name,
    plain_unit_name,
    quadlet_name,
)
from monoimage.hosts.systemd import render_systemd_unit, wrap_words
from monoimage.image import SITE_ENV_PREFIX
from monoimage.plan.run_profile import ContainerSpec, split_domain
from monoimage.recipe.model import Recipe

IGNITION_VERSION = "3.3.0"      # the newest stable spec Debian 12's ignition-validate accepts
BUTANE_VARIANT = ("fcos", "1.4.0")  # the Butane spec that translates to Ignition 3.3.0


@dataclass(frozen=True)
class HostFile:
    """A file an edge host gets: absolute `path`, text `content`, `mode`."""

    path: str
    content: str
    mode: int


@dataclass(frozen=True)
class HostUnit:
    """A systemd unit Ignition installs (`content`) and enables or not; `content` None only
    toggles a unit the OS already ships (podman-auto-update.timer)."""

    name: str
    enabled: bool
    content: str | None


@dataclass(frozen=True)
class HostBundle:
    """Everything one edge host gets from Ignition/Butane."""

    files: tuple[HostFile, ...]
    units: tuple[HostUnit, ...]


def render_site_env(spec: ContainerSpec, recipe: Recipe) -> str:
    """The site values file (podman --env-file format): the image's defaults, to edit per site.
    It may hold secrets: it is installed mode 0600, never baked into an image."""
    about = (f"Site values for {spec.name} ({spec.image}), read by monoimage-init at every "
             f"start as {SITE_ENV_PREFIX}<NAME>; a file /run/secrets/<name> (a podman secret) "
             f"wins over these. The values below are the image's defaults: edit them per site.")
    lines = [*(f"# {line}" for line in wrap_words(about, 90)), ""]
    for name, value in recipe.site:
        if "\n" in value:
            raise UserError(f"site value {name!r} spans lines: an env file cannot hold it; "
                            f"use a podman secret")
        lines.append(f"{SITE_ENV_PREFIX}{name.upper()}={value}")
    mounted = {secret.target for secret in spec.secrets}
    for name in recipe.site_required:
        if name not in mounted:  # no default in the image: the init refuses to start without it
            lines.append(f"# {SITE_ENV_PREFIX}{name.upper()}=  (no default: set it here or "
                         f"give `--secret {name}`)")
    return "\n".join(lines) + "\n"


def render_mirror_conf(image: str, mirror: str) -> str:
    """A registries.conf.d drop-in: pulls of `image`'s registry go through `mirror` first."""
    domain, _ = split_domain(image)
    if domain is None or domain == "localhost":
        raise UserError(f"--mirror needs an image from a registry, not {image!r}: "
                        f"give --registry too (or --image REGISTRY/NAME:TAG)")
    mirror = mirror.strip().rstrip("/")
    if not mirror or "://" in mirror or any(c.isspace() or c == '"' for c in mirror):
        raise UserError(f"--mirror {mirror!r}: give HOST[:PORT][/PATH], without a scheme")
    return "\n".join([
        f"# Pull {domain} images through the site-local mirror",
        f"# {mirror} first; the registry itself is the fallback.",
        "# Written by monoimage host.",
        "[[registry]]",
        f'prefix = "{domain}"',
        f'location = "{domain}"',
        "",
        "[[registry.mirror]]",
        f'location = "{mirror}"',
        "",
    ])


def host_bundle(spec: ContainerSpec, recipe: Recipe, podman: PodmanVersion = QUADLET_FIRST,
                mirror: str | None = None) -> HostBundle:
    """What Ignition/Butane put on a host: the Quadlet file (enabled through its [Install]),
    the plain unit (installed, disabled: the fallback for podman without Quadlet), the site
    values (0600), the mirror drop-in, and podman's auto-update timer switched on."""
    files = [HostFile(f"{QUADLET_DIR}/{quadlet_name(spec)}",
                      render_quadlet(spec, recipe, podman), 0o644),
             HostFile(env_file_path(spec.name), render_site_env(spec, recipe), 0o600)]
    if mirror is not None:
        files.append(HostFile(f"{REGISTRIES_DIR}/{mirror_conf_name(spec)}",
                              render_mirror_conf(spec.image, mirror), 0o644))
    units = (HostUnit(plain_unit_name(spec), False, render_systemd_unit(spec, recipe)),
             HostUnit("podman-auto-update.timer", True, None))
    return HostBundle(tuple(files), units)


def render_ignition(bundle: HostBundle) -> str:
    """The bundle as an Ignition config (spec 3.3.0, JSON)."""
    config = {
        "ignition": {"version": IGNITION_VERSION},
        "storage": {
            "directories": [{"path": SITE_DIR, "mode": 0o700}],
            "files": [{"path": f.path, "mode": f.mode, "overwrite": True,
                       "contents": {"source": _data_url(f.content)}} for f in bundle.files],
        },
        "systemd": {"units": [_unit(u) for u in bundle.units]},
    }
    return json.dumps(config, indent=2) + "\n"


def render_butane(bundle: HostBundle) -> str:
    """The same bundle as a Butane config (`butane --strict` makes the Ignition above)."""
    variant, version = BUTANE_VARIANT
    config = {
        "variant": variant,
        "version": version,
        "storage": {
            "directories": [{"path": SITE_DIR, "mode": _Mode(0o700)}],
            "files": [{"path": f.path, "mode": _Mode(f.mode), "overwrite": True,
                       "contents": {"inline": f.content}} for f in bundle.files],
        },
        "systemd": {"units": [_unit(u) for u in bundle.units]},
    }
    return yaml.dump(config, Dumper=_LiteralDumper, sort_keys=False, width=1000)


def _data_url(text: str) -> str:
    return "data:;base64," + base64.b64encode(text.encode()).decode()


def _unit(unit: HostUnit) -> dict[str, object]:
    """A unit as Ignition and Butane both spell it."""
    entry: dict[str, object] = {"name": unit.name, "enabled": unit.enabled}
    if unit.content is not None:
        entry["contents"] = unit.content
    return entry


class _LiteralDumper(yaml.SafeDumper):
    """Multi-line strings as YAML literal blocks, so the files read as themselves."""


def _literal(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


class _Mode(int):
    """A file mode, written in octal (`0644`) as Butane's own examples do."""


def _octal(dumper: yaml.SafeDumper, mode: _Mode) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:int", f"0{int(mode):o}")


_LiteralDumper.add_representer(str, _literal)
_LiteralDumper.add_representer(_Mode, _octal)
