"""The plain systemd unit (what `podman generate systemd --new` makes, for podman without
Quadlet), and what every unit file monoimage writes shares: quoting, the header, timeouts.

Pure: every function returns text.
"""

from __future__ import annotations

import math
from pathlib import PurePosixPath

from monoimage.errors import UserError
from monoimage.hosts.spec import PODMAN, UNIT_DIR, plain_unit_name, quadlet_name, quadlet_service
from monoimage.plan.run_profile import ContainerSpec, podman_run_options
from monoimage.recipe.model import Recipe

START_TIMEOUT = 900             # seconds: a first pull over a thin WAN link takes a while

# `--sdnotify=container` (podman >= 2.1): the OCI runtime passes NOTIFY_SOCKET into the
# container, and monoimage-init sends READY=1 once every service is ready, so "started" in
# systemd means the services answer (conmon's READY would only mean the container started).
SYSTEMD_RUN_OPTIONS = ("--cidfile=%t/%n.ctr-id", "--cgroups=no-conmon", "--rm",
                       "--sdnotify=container", "--detach", "--replace")


def start_timeout(recipe: Recipe) -> int:
    """TimeoutStartSec: the first pull's START_TIMEOUT plus the longest chain of readiness
    timeouts (a service starts once its dependencies are ready; the others start at once)."""
    services = {service.name: service for service in recipe.services}
    chains: dict[str, float] = {}

    def chain(name: str) -> float:   # depends_on has no cycle: the recipe refuses one
        if name not in chains:
            service = services[name]
            chains[name] = service.ready.timeout + max(
                (chain(d) for d in service.depends_on if d in services), default=0.0)
        return chains[name]

    return START_TIMEOUT + math.ceil(max(map(chain, services), default=0.0))


def systemd_run_command(spec: ContainerSpec) -> list[str]:
    """The plain unit's ExecStart argv (before unit-file quoting), as `podman generate systemd
    --new` writes it (cidfile, no conmon cgroup, removed on exit) but with the container's
    own sd_notify: READY=1 comes from monoimage-init once every service is ready."""
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
    lines = unit_header(recipe, f"A plain podman-run unit (podman generate systemd --new style) "
                                f"for podman without Quadlet. Install as {UNIT_DIR}/"
                                f"{plain_unit_name(spec)}; do not enable it beside "
                                f"{quadlet_name(spec)}.")
    lines += ["[Unit]", f"Description={unit_description(recipe)} (podman run)",
              "Documentation=man:podman-generate-systemd(1)",
              "Wants=network-online.target", "After=network-online.target",
              "RequiresMountsFor=%t/containers", f"Conflicts={quadlet_service(spec)}", "",
              "[Service]", "Environment=PODMAN_SYSTEMD_UNIT=%n", "Restart=on-failure",
              f"TimeoutStartSec={start_timeout(recipe)}", f"TimeoutStopSec={spec.systemd_stop_timeout}",
              "ExecStartPre=/bin/rm -f %t/%n.ctr-id", f"ExecStart={exec_start}",
              f"ExecStop={PODMAN} stop --ignore {stop}",
              f"ExecStopPost={PODMAN} rm -f --ignore {stop}",
              "Type=notify", "NotifyAccess=all", "",
              "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


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


def unit_value(text: str) -> str:
    """`text` as the value of a unit-file key: one line, `%` doubled against specifiers."""
    if "\n" in text:
        raise UserError(f"a value spans lines and cannot go into a unit file: {text!r}")
    return text.replace("%", "%%")


def unit_header(recipe: Recipe, what: str) -> list[str]:
    """The comment lines a generated file opens with: its recipe, then `what` it is."""
    source = PurePosixPath(recipe.source).name
    digest = recipe.digest.removeprefix("sha256:")[:16]
    return [f"# Generated by `monoimage host` from {source} (recipe sha256:{digest}).",
            *(f"# {line}" for line in wrap_words(what, 90)), ""]


def unit_description(recipe: Recipe) -> str:
    return f"monoimage {recipe.name}: {', '.join(s.name for s in recipe.services)}"


def wrap_words(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width` characters (a longer word stands alone)."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines
