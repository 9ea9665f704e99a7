"""Artefacts for edge hosts, rendered from one `ContainerSpec`: a Podman Quadlet `.container`,
a plain systemd unit (what `podman generate systemd --new` makes, for podman without Quadlet),
and the Ignition (JSON, spec 3.3.0) / Butane (YAML) configs that put them on a fresh host.

Pure: every function returns text; `cli/host.py` writes the files.

Quadlet keys appeared over several podman releases; `render_quadlet` writes a key only when
the target podman has it and passes the same podman option through `PodmanArgs=` otherwise, so
the file works on every podman from the target on (4.4, Quadlet's first release, by default).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import PurePosixPath

import yaml

from monoimage.errors import UserError
from monoimage.image import SITE_ENV_PREFIX
from monoimage.plan.run_profile import (
    ContainerSpec,
    SecretMount,
    container_spec,
    health_options,
    podman_run_options,
    rewrite_registry,
    split_domain,
)
from monoimage.recipe.model import Recipe

PodmanVersion = tuple[int, int]
QUADLET_FIRST: PodmanVersion = (4, 4)

# The first podman release whose Quadlet takes each [Container] key we write. Sources:
# podman 4.4's quadlet.go supportedContainerKeys (4.4); podman-systemd.unit(5) of 4.5 (Tmpfs,
# Health*) and 4.6 (AutoUpdate; 4.6.0 release notes); PRs containers/podman#19955, #19956
# (PidsLimit, Ulimit; merged 2023-09, after the 4.7 cutoff: 4.8 to be safe); the 5.0 key list
# (Secret, StopTimeout, ReadOnlyTmpfs; said to be safe there); PR #25346 (Memory, 2025-02,
# after 5.4). A later version than the real one only costs a PodmanArgs= line.
QUADLET_KEY_SINCE: dict[str, PodmanVersion] = {
    "Image": (4, 4), "ContainerName": (4, 4), "ReadOnly": (4, 4), "DropCapability": (4, 4),
    "AddCapability": (4, 4), "PublishPort": (4, 4), "Volume": (4, 4), "Label": (4, 4),
    "EnvironmentFile": (4, 4), "PodmanArgs": (4, 4),
    "Tmpfs": (4, 5), "HealthCmd": (4, 5), "HealthInterval": (4, 5), "HealthTimeout": (4, 5),
    "HealthRetries": (4, 5), "HealthStartPeriod": (4, 5), "HealthOnFailure": (4, 5),
    "AutoUpdate": (4, 6),
    "PidsLimit": (4, 8), "Ulimit": (4, 8),
    "Secret": (5, 0), "StopTimeout": (5, 0), "ReadOnlyTmpfs": (5, 0),
    "Memory": (5, 5),
}

IGNITION_VERSION = "3.3.0"      # the newest stable spec Debian 12's ignition-validate accepts
BUTANE_VARIANT = ("fcos", "1.4.0")  # the Butane spec that translates to Ignition 3.3.0
PODMAN = "/usr/bin/podman"
QUADLET_DIR = "/etc/containers/systemd"
UNIT_DIR = "/etc/systemd/system"
SITE_DIR = "/etc/monoimage"
REGISTRIES_DIR = "/etc/containers/registries.conf.d"
START_TIMEOUT = 900             # seconds: a first pull over a thin WAN link takes a while
AUTO_UPDATE = "io.containers.autoupdate"


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


def parse_podman_version(text: str) -> PodmanVersion:
    """`4.4` or `5.2.1` as (major, minor); Quadlet needs at least 4.4."""
    parts = text.strip().split(".")
    try:
        version = (int(parts[0]), int(parts[1]) if len(parts) > 1 else 0)
    except ValueError:
        raise UserError(f"--podman-version {text!r}: give MAJOR.MINOR, e.g. 4.4") from None
    if version < QUADLET_FIRST:
        raise UserError(f"--podman-version {text}: Quadlet needs podman 4.4 or newer; use "
                        f"--format systemd for older podman")
    return version


def host_spec(recipe: Recipe, image: str | None = None, registry: str | None = None,
              secrets: tuple[str, ...] = ()) -> ContainerSpec:
    """The small-host spec an edge host runs: named state volumes, the site values file,
    podman auto-update (`registry` for an image from a registry, `local` otherwise), and
    `secrets` (site value names) from podman secrets called `<name>-<secret>`."""
    reference = image or recipe.reference
    if registry is not None:
        reference = rewrite_registry(reference, registry)
    domain, _ = split_domain(reference)
    policy = "local" if domain in (None, "localhost") else "registry"
    mounts = tuple(SecretMount(f"{recipe.name}-{s}", s) for s in secrets)
    return container_spec(recipe, image=reference, profile="small-host",
                          env_files=(env_file_path(recipe.name),), secrets=mounts,
                          auto_update=policy)


def quadlet_name(spec: ContainerSpec) -> str:
    return f"{spec.name}.container"


def quadlet_service(spec: ContainerSpec) -> str:
    """The unit Quadlet's generator makes of the `.container` file."""
    return f"{spec.name}.service"


def plain_unit_name(spec: ContainerSpec) -> str:
    """The plain unit has its own name: the same name in /etc/systemd/system would mask the
    unit Quadlet generates."""
    return f"{spec.name}-podman.service"


def env_file_path(name: str) -> str:
    """Where the host keeps the site values of container `name` (0600)."""
    return f"{SITE_DIR}/{name}.env"


def mirror_conf_name(spec: ContainerSpec) -> str:
    return f"50-monoimage-{spec.name}.conf"


def render_quadlet(spec: ContainerSpec, recipe: Recipe,
                   podman: PodmanVersion = QUADLET_FIRST) -> str:
    """The Quadlet `.container` file that runs `spec` on podman `podman` and newer."""
    keys: list[tuple[str, str]] = []
    passthrough: list[list[str]] = []

    def key(name: str, value: str, fallback: list[str]) -> None:
        if podman >= QUADLET_KEY_SINCE[name]:
            keys.append((name, _value(value)))
        else:
            passthrough.append(fallback)

    keys.append(("Image", _value(spec.image)))
    keys.append(("ContainerName", _value(spec.name)))
    for label, value in spec.labels:
        if label == AUTO_UPDATE and podman >= QUADLET_KEY_SINCE["AutoUpdate"]:
            keys.append(("AutoUpdate", _value(value)))
        else:
            keys.append(("Label", _value(f"{label}={value}")))
    if spec.read_only:
        keys.append(("ReadOnly", "true"))
        key("ReadOnlyTmpfs", "false", ["--read-only-tmpfs=false"])
    for mount in spec.tmpfs:
        key("Tmpfs", mount.options, ["--tmpfs", mount.options])
    if spec.cap_drop_all:
        keys.append(("DropCapability", "all"))
    if spec.cap_add:
        keys.append(("AddCapability", " ".join(spec.cap_add)))
    for port in spec.ports:
        keys.append(("PublishPort", port.option))
    for volume in spec.volumes:
        keys.append(("Volume", _value(volume.option)))
    for env_file in spec.env_files:
        keys.append(("EnvironmentFile", _value(env_file)))
    for secret in spec.secrets:
        key("Secret", secret.option, ["--secret", secret.option])
    if spec.memory:
        key("Memory", spec.memory, ["--memory", spec.memory])
    if spec.pids_limit:
        key("PidsLimit", str(spec.pids_limit), ["--pids-limit", str(spec.pids_limit)])
    for ulimit in spec.ulimits:
        key("Ulimit", ulimit.option, ["--ulimit", ulimit.option])
    for (option, value), name in zip(health_options(spec.health), _HEALTH_KEYS, strict=True):
        key(name, value, [option, value])
    key("StopTimeout", str(spec.stop_timeout), ["--stop-timeout", str(spec.stop_timeout)])
    for args in passthrough:
        keys.append(("PodmanArgs", " ".join(systemd_quote(a) for a in args)))

    lines = _header(recipe, f"Podman Quadlet for podman {podman[0]}.{podman[1]} and newer. "
                            f"Install as {QUADLET_DIR}/{quadlet_name(spec)}; the generator "
                            f"makes {quadlet_service(spec)} and enables it from [Install].")
    lines += ["[Unit]", f"Description={_description(recipe)}",
              "Wants=network-online.target", "After=network-online.target", "",
              "[Container]"]
    lines += [f"{name}={value}" for name, value in keys]
    lines += ["", "[Service]", "Restart=on-failure", f"TimeoutStartSec={START_TIMEOUT}",
              f"TimeoutStopSec={spec.systemd_stop_timeout}", "",
              "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


_HEALTH_KEYS = ("HealthCmd", "HealthInterval", "HealthTimeout", "HealthRetries",
                "HealthStartPeriod", "HealthOnFailure")


SYSTEMD_RUN_OPTIONS = ("--cidfile=%t/%n.ctr-id", "--cgroups=no-conmon", "--rm",
                       "--sdnotify=conmon", "--detach", "--replace")


def systemd_run_command(spec: ContainerSpec) -> list[str]:
    """The plain unit's ExecStart argv (before unit-file quoting), as `podman generate systemd
    --new` writes it: cidfile, no conmon cgroup, removed on exit, sd_notify through conmon."""
    options = [arg for option in podman_run_options(spec) for arg in option]
    return [PODMAN, "run", *SYSTEMD_RUN_OPTIONS, *options, spec.image]


def render_systemd_unit(spec: ContainerSpec, recipe: Recipe) -> str:
    """A plain systemd unit that runs `spec` with `podman run`, for podman without Quadlet."""
    # The systemd-specific options carry specifiers (%t, %n); the spec's values must not.
    lines_of_run = [f"{PODMAN} run", *SYSTEMD_RUN_OPTIONS]
    lines_of_run += [" ".join(systemd_quote(a, specifiers=True) for a in option)
                     for option in podman_run_options(spec)]
    lines_of_run.append(systemd_quote(spec.image, specifiers=True))
    exec_start = " \\\n    ".join(lines_of_run)
    stop = f"-t {spec.stop_timeout} --cidfile=%t/%n.ctr-id"
    lines = _header(recipe, f"A plain podman-run unit (podman generate systemd --new style) for "
                            f"podman without Quadlet. Install as {UNIT_DIR}/"
                            f"{plain_unit_name(spec)}; do not enable it beside "
                            f"{quadlet_name(spec)}.")
    lines += ["[Unit]", f"Description={_description(recipe)} (podman run)",
              "Documentation=man:podman-generate-systemd(1)",
              "Wants=network-online.target", "After=network-online.target",
              "RequiresMountsFor=%t/containers", f"Conflicts={quadlet_service(spec)}", "",
              "[Service]", "Environment=PODMAN_SYSTEMD_UNIT=%n", "Restart=on-failure",
              f"TimeoutStartSec={START_TIMEOUT}", f"TimeoutStopSec={spec.systemd_stop_timeout}",
              "ExecStartPre=/bin/rm -f %t/%n.ctr-id", f"ExecStart={exec_start}",
              f"ExecStop={PODMAN} stop --ignore {stop}",
              f"ExecStopPost={PODMAN} rm -f --ignore {stop}",
              "Type=notify", "NotifyAccess=all", "",
              "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


def render_site_env(spec: ContainerSpec, recipe: Recipe) -> str:
    """The site values file (podman --env-file format): the image's defaults, to edit per site.
    It may hold secrets: it is installed mode 0600, never baked into an image."""
    about = (f"Site values for {spec.name} ({spec.image}), read by monoimage-init at every "
             f"start as {SITE_ENV_PREFIX}<NAME>; a file /run/secrets/<name> (a podman secret) "
             f"wins over these. The values below are the image's defaults: edit them per site.")
    lines = [*(f"# {line}" for line in _wrap(about, 90)), ""]
    for name, value in recipe.site:
        if "\n" in value:
            raise UserError(f"site value {name!r} spans lines: an env file cannot hold it; "
                            f"use a podman secret")
        lines.append(f"{SITE_ENV_PREFIX}{name.upper()}={value}")
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
        "systemd": {"units": [_ignition_unit(u) for u in bundle.units]},
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
        "systemd": {"units": [_butane_unit(u) for u in bundle.units]},
    }
    return yaml.dump(config, Dumper=_LiteralDumper, sort_keys=False, width=1000)


def systemd_quote(arg: str, specifiers: bool = False) -> str:
    """One argument as systemd's command-line parser reads it back; `specifiers` doubles `%`
    (and `$`, which ExecStart would expand) so that a value reaches podman unchanged."""
    if "\n" in arg:
        raise UserError(f"a value spans lines and cannot go into a unit file: {arg!r}")
    if specifiers:
        arg = arg.replace("%", "%%").replace("$", "$$")
    if arg and not any(c.isspace() or c in "\"'\\;" for c in arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _value(text: str) -> str:
    if "\n" in text:
        raise UserError(f"a value spans lines and cannot go into a unit file: {text!r}")
    return text.replace("%", "%%")


def _header(recipe: Recipe, what: str) -> list[str]:
    source = PurePosixPath(recipe.source).name
    digest = recipe.digest.removeprefix("sha256:")[:16]
    return [f"# Generated by `monoimage host` from {source} (recipe sha256:{digest}).",
            *(f"# {line}" for line in _wrap(what, 90)), ""]


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def _description(recipe: Recipe) -> str:
    return f"monoimage {recipe.name}: {', '.join(s.name for s in recipe.services)}"


def _data_url(text: str) -> str:
    return "data:;base64," + base64.b64encode(text.encode()).decode()


def _ignition_unit(unit: HostUnit) -> dict[str, object]:
    entry: dict[str, object] = {"name": unit.name, "enabled": unit.enabled}
    if unit.content is not None:
        entry["contents"] = unit.content
    return entry


def _butane_unit(unit: HostUnit) -> dict[str, object]:
    return _ignition_unit(unit)


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


FORMATS = ("quadlet", "systemd", "ignition", "butane")


@dataclass(frozen=True)
class Artefact:
    """One file `monoimage host` writes into its output directory."""

    filename: str
    content: str
    mode: int


def artefact_names(spec: ContainerSpec) -> frozenset[str]:
    """Every file name `render_artefacts` can write for `spec`, whatever the formats."""
    return frozenset({quadlet_name(spec), plain_unit_name(spec), f"{spec.name}.env",
                      mirror_conf_name(spec), f"{spec.name}.ign", f"{spec.name}.bu"})


def render_artefacts(spec: ContainerSpec, recipe: Recipe, formats: tuple[str, ...],
                     podman: PodmanVersion = QUADLET_FIRST,
                     mirror: str | None = None) -> tuple[Artefact, ...]:
    """The files for `formats` (a subset of FORMATS): the units come with the site values file
    (and the mirror drop-in) they need; Ignition and Butane carry everything inside."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise UserError(f"unknown format {unknown[0]!r}: choose from {', '.join(FORMATS)}")
    bundle = host_bundle(spec, recipe, podman, mirror)
    out: list[Artefact] = []
    if "quadlet" in formats:
        out.append(Artefact(quadlet_name(spec), render_quadlet(spec, recipe, podman), 0o644))
    if "systemd" in formats:
        out.append(Artefact(plain_unit_name(spec), render_systemd_unit(spec, recipe), 0o644))
    if "quadlet" in formats or "systemd" in formats:
        out.append(Artefact(f"{spec.name}.env", render_site_env(spec, recipe), 0o600))
        if mirror is not None:
            out.append(Artefact(mirror_conf_name(spec), render_mirror_conf(spec.image, mirror),
                                0o644))
    if "ignition" in formats:
        out.append(Artefact(f"{spec.name}.ign", render_ignition(bundle), 0o600))
    if "butane" in formats:
        out.append(Artefact(f"{spec.name}.bu", render_butane(bundle), 0o600))
    return tuple(out)
