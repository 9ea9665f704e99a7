"""The Podman Quadlet `.container` file that runs one `ContainerSpec` on an edge host.

Pure: `render_quadlet` returns text; `cli/host.py` writes the files.

Quadlet keys appeared over several podman releases; `render_quadlet` writes a key only when
the target podman has it and passes the same podman option through `PodmanArgs=` otherwise, so
the file works on every podman from the target on (4.4, Quadlet's first release, by default).
"""

from __future__ import annotations

from monoimage.hosts.spec import (
    QUADLET_DIR,
    QUADLET_FIRST,
    PodmanVersion,
    quadlet_name,
    quadlet_service,
)
from monoimage.hosts.systemd import (
    start_timeout,
    systemd_quote,
    unit_description,
    unit_header,
    unit_value,
)
from monoimage.plan.run_profile import ContainerSpec, health_options
from monoimage.recipe.model import Recipe

# The first podman release whose Quadlet takes each [Container] key we write. Sources:
# podman 4.4's quadlet.go supportedContainerKeys (4.4); podman-systemd.unit(5) of 4.5 (Tmpfs,
# Health*) and 4.6 (AutoUpdate; 4.6.0 release notes); PRs containers/podman#19955, #19956
# (PidsLimit, Ulimit; merged 2023-09, after the 4.7 cutoff: 4.8 to be safe); the 5.0 key list
# (Secret, StopTimeout, ReadOnlyTmpfs; said to be safe there); PR #25346 (Memory, 2025-02,
# after 5.4). A later version than the real one only costs a PodmanArgs= line.
# Notify=true is in 4.4's quadlet.go: the generator then passes `--sdnotify=container` instead
# of `--sdnotify=conmon` (Type=notify, NotifyAccess=all either way), so the unit is started only
# when monoimage-init sends READY=1, i.e. when every service is ready.
QUADLET_KEY_SINCE: dict[str, PodmanVersion] = {
    "Image": (4, 4), "ContainerName": (4, 4), "ReadOnly": (4, 4), "DropCapability": (4, 4),
    "AddCapability": (4, 4), "PublishPort": (4, 4), "Volume": (4, 4), "Label": (4, 4),
    "EnvironmentFile": (4, 4), "PodmanArgs": (4, 4), "Network": (4, 4), "AddDevice": (4, 4),
    "Notify": (4, 4),
    "Tmpfs": (4, 5), "HealthCmd": (4, 5), "HealthInterval": (4, 5), "HealthTimeout": (4, 5),
    "HealthRetries": (4, 5), "HealthStartPeriod": (4, 5), "HealthOnFailure": (4, 5),
    "AutoUpdate": (4, 6), "Sysctl": (4, 6),
    "PidsLimit": (4, 8), "Ulimit": (4, 8),
    "Secret": (5, 0), "StopTimeout": (5, 0), "ReadOnlyTmpfs": (5, 0),
    "Memory": (5, 5),
}

AUTO_UPDATE = "io.containers.autoupdate"

_HEALTH_KEYS = ("HealthCmd", "HealthInterval", "HealthTimeout", "HealthRetries",
                "HealthStartPeriod", "HealthOnFailure")


def render_quadlet(spec: ContainerSpec, recipe: Recipe,
                   podman: PodmanVersion = QUADLET_FIRST) -> str:
    """The Quadlet `.container` file that runs `spec` on podman `podman` and newer."""
    keys: list[tuple[str, str]] = []
    passthrough: list[list[str]] = []

    def key(name: str, value: str, fallback: list[str]) -> None:
        if podman >= QUADLET_KEY_SINCE[name]:
            keys.append((name, unit_value(value)))
        else:
            passthrough.append(fallback)

    keys.append(("Image", unit_value(spec.image)))
    keys.append(("ContainerName", unit_value(spec.name)))
    key("Notify", "true", ["--sdnotify=container"])
    for label, value in spec.labels:
        if label == AUTO_UPDATE and podman >= QUADLET_KEY_SINCE["AutoUpdate"]:
            keys.append(("AutoUpdate", unit_value(value)))
        else:
            keys.append(("Label", unit_value(f"{label}={value}")))
    if spec.read_only:
        keys.append(("ReadOnly", "true"))
        key("ReadOnlyTmpfs", "false", ["--read-only-tmpfs=false"])
    for mount in spec.tmpfs:
        key("Tmpfs", mount.options, ["--tmpfs", mount.options])
    if spec.network:
        keys.append(("Network", spec.network))
    # Quadlet has no key for the PID and IPC namespaces nor for --privileged
    passthrough += [[f"--{ns}", "host"] for ns in ("pid", "ipc") if getattr(spec, ns)]
    if spec.privileged:
        passthrough.append(["--privileged"])
    for device in spec.devices:
        keys.append(("AddDevice", unit_value(device)))
    for name, value in spec.sysctls:
        if any(c.isspace() for c in value):  # Sysctl= is a space-separated list
            passthrough.append(["--sysctl", f"{name}={value}"])
        else:
            key("Sysctl", f"{name}={value}", ["--sysctl", f"{name}={value}"])
    if spec.cap_drop_all:
        keys.append(("DropCapability", "all"))
    if spec.cap_add:
        keys.append(("AddCapability", " ".join(spec.cap_add)))
    for port in spec.ports:
        keys.append(("PublishPort", port.option))
    for option in [v.option for v in spec.volumes] + [m.option for m in spec.host_mounts]:
        keys.append(("Volume", unit_value(option)))
    for env_file in spec.env_files:
        keys.append(("EnvironmentFile", unit_value(env_file)))
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

    lines = unit_header(recipe, f"Podman Quadlet for podman {podman[0]}.{podman[1]} and newer. "
                                f"Install as {QUADLET_DIR}/{quadlet_name(spec)}; the generator "
                                f"makes {quadlet_service(spec)} and enables it from [Install].")
    lines += ["[Unit]", f"Description={unit_description(recipe)}",
              "Wants=network-online.target", "After=network-online.target", "",
              "[Container]"]
    lines += [f"{name}={value}" for name, value in keys]
    lines += ["", "[Service]", "Restart=on-failure", f"TimeoutStartSec={start_timeout(recipe)}",
              f"TimeoutStopSec={spec.systemd_stop_timeout}", "",
              "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)
