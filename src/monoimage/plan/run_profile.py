"""How the golden image runs on a small container-OS host: one frozen `ContainerSpec`.

`boot` (podman on this machine) and `host` (Quadlet, systemd unit, Ignition, Butane) both start
from `container_spec()`, and `podman_run_args()` is the one place that turns a spec into podman
arguments, so the read-only root, tmpfs mounts, limits, capabilities, ports and health check a
site gets are the ones `boot --profile small-host` proved. Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from monoimage.errors import UserError
from monoimage.image import HEALTH_CMD
from monoimage.recipe.model import Recipe

ProfileName = Literal["small-host", "default"]
PROFILES: tuple[ProfileName, ...] = ("small-host", "default")


# What PID 1 itself needs on top of the services' own capabilities, root without them being
# nobody in particular: CHOWN and FOWNER to hand runtime directories and rendered configs to
# service users (chown, then chmod a file it no longer owns), SETUID/SETGID to start services
# as their users, KILL to signal processes that run as other users (stop, reload, reap).
INIT_CAPABILITIES = ("CHOWN", "FOWNER", "KILL", "SETGID", "SETUID")

# The same limits as src/monoimage/data/containers.conf (a test keeps them equal). Podman 4.3
# replaces every default ulimit once one --ulimit is given (and then sets nproc=1048576, which a
# host without CAP_SYS_RESOURCE refuses), so nofile and nproc always travel together.
ULIMITS = (("nofile", 16384, 16384), ("nproc", 8192, 8192))

TMPFS_RUN_SIZE = "64m"
TMPFS_TMP_SIZE = "64m"
STOP_MARGIN = 5          # seconds on top of the slowest service's stop timeout
HEALTH_INTERVAL = 30     # seconds
HEALTH_TIMEOUT = 10      # seconds
HEALTH_RETRIES = 3
START_PERIOD_CAP = 300   # seconds

_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*\Z")


@dataclass(frozen=True)
class TmpfsMount:
    path: str
    size: str
    mode: int

    @property
    def options(self) -> str:
        """Podman's `--tmpfs PATH:OPTIONS` form (nosuid,nodev are podman's own defaults)."""
        return f"{self.path}:rw,size={self.size},mode={self.mode:o}"


@dataclass(frozen=True)
class PublishedPort:
    """A container port published on the host; `host_port` None lets podman pick a free one."""

    container_port: int
    protocol: Literal["tcp", "udp"]
    host_port: int | None
    host_ip: str = ""

    @property
    def option(self) -> str:
        """Podman's `--publish` form: `[IP:][HOST]:CONTAINER/PROTO`."""
        host = "" if self.host_port is None else str(self.host_port)
        where = f"{self.host_ip}:{host}:" if self.host_ip else (f"{host}:" if host else "")
        return f"{where}{self.container_port}/{self.protocol}"


@dataclass(frozen=True)
class StateVolume:
    """A state directory; `name` None is an anonymous volume (removed with the container)."""

    path: str
    name: str | None

    @property
    def option(self) -> str:
        return f"{self.name}:{self.path}" if self.name else self.path


@dataclass(frozen=True)
class HealthCheck:
    cmd: str
    interval: int
    timeout: int
    retries: int
    start_period: int
    on_failure: Literal["none", "kill"]


@dataclass(frozen=True)
class Ulimit:
    name: str
    soft: int
    hard: int

    @property
    def option(self) -> str:
        return f"{self.name}={self.soft}:{self.hard}"


@dataclass(frozen=True)
class SecretMount:
    """A podman secret mounted at /run/secrets/TARGET, where monoimage-init looks for a site
    value before the environment and the image's defaults."""

    name: str
    target: str

    @property
    def option(self) -> str:
        return f"{self.name},target={self.target}"


@dataclass(frozen=True)
class BindMount:
    """A host path mounted into the container (`runtime.host_mounts`)."""

    source: str
    target: str
    read_only: bool

    @property
    def option(self) -> str:
        """Podman's `--volume SRC:DST[:ro]` form (Quadlet's `Volume=` takes the same)."""
        return f"{self.source}:{self.target}" + (":ro" if self.read_only else "")


@dataclass(frozen=True)
class ContainerSpec:
    """Everything podman needs to run the golden image the way an edge host runs it."""

    image: str
    name: str
    profile: ProfileName
    read_only: bool
    tmpfs: tuple[TmpfsMount, ...]
    memory: str | None
    pids_limit: int | None
    cap_drop_all: bool
    cap_add: tuple[str, ...]
    ports: tuple[PublishedPort, ...]
    volumes: tuple[StateVolume, ...]
    health: HealthCheck
    stop_timeout: int
    ulimits: tuple[Ulimit, ...]
    env_files: tuple[str, ...] = ()
    secrets: tuple[SecretMount, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    # the host integration of `runtime:`, granted under every profile
    network: str = ""          # "host", or "" for podman's own network
    pid: str = ""              # "host", or ""
    ipc: str = ""              # "host", or ""
    privileged: bool = False
    devices: tuple[str, ...] = ()
    host_mounts: tuple[BindMount, ...] = ()
    sysctls: tuple[tuple[str, str], ...] = ()

    @property
    def systemd_stop_timeout(self) -> int:
        """TimeoutStopSec: podman's own stop budget plus a minute, as `podman generate systemd`
        does, so systemd never SIGKILLs podman while it is still stopping the container."""
        return self.stop_timeout + 60


def container_spec(recipe: Recipe, *, image: str | None = None, name: str | None = None,
                   profile: ProfileName = "small-host", ephemeral: bool = False,
                   host_ip: str = "", random_host_ports: bool = False,
                   env_files: tuple[str, ...] = (), secrets: tuple[SecretMount, ...] = (),
                   auto_update: str | None = None) -> ContainerSpec:
    """The spec for running `recipe`'s image under `profile`.

    `ephemeral` uses anonymous state volumes (a test boot leaves nothing behind) instead of
    named ones; `random_host_ports` lets podman pick free host ports (bound to `host_ip`);
    `auto_update` is the podman auto-update policy label (`registry` or `local`).
    """
    if profile not in PROFILES:
        raise UserError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")
    name = name or recipe.name
    if not _NAME_RE.match(name):
        raise UserError(f"container name {name!r}: use letters, digits, '_', '.', '-'")
    small = profile == "small-host"
    labels = (("io.containers.autoupdate", auto_update),) if auto_update else ()
    runtime = recipe.runtime
    host_network = runtime.network == "host"
    return ContainerSpec(
        image=image or recipe.reference,
        name=name,
        profile=profile,
        read_only=small and recipe.runtime.read_only,
        tmpfs=(TmpfsMount("/run", TMPFS_RUN_SIZE, 0o755),
               TmpfsMount("/tmp", TMPFS_TMP_SIZE, 0o1777)),
        memory=recipe.runtime.memory if small else None,
        pids_limit=recipe.runtime.pids_limit if small else None,
        # privileged holds every capability: a list beside it would only mislead
        cap_drop_all=small and not runtime.privileged,
        cap_add=capabilities(recipe) if small and not runtime.privileged else (),
        # on the host's network the services' ports are the host's own: nothing to publish
        ports=() if host_network else tuple(
            PublishedPort(p.number, p.protocol, None if random_host_ports else p.number,
                          host_ip) for p in recipe.ports),
        volumes=tuple(StateVolume(path, None if ephemeral else volume_name(name, path))
                      for path in recipe.volumes),
        health=health_check(recipe),
        stop_timeout=stop_timeout(recipe),
        ulimits=tuple(Ulimit(*u) for u in ULIMITS),
        env_files=env_files,
        secrets=secrets,
        labels=labels,
        network="host" if host_network else "",
        pid="host" if runtime.pid == "host" else "",
        ipc="host" if runtime.ipc == "host" else "",
        privileged=runtime.privileged,
        devices=runtime.devices,
        host_mounts=tuple(BindMount(m.source, m.target, m.read_only)
                          for m in runtime.host_mounts),
        sysctls=runtime.sysctls,
    )


def spec_grants(spec: ContainerSpec) -> tuple[str, ...]:
    """What `spec` grants, as `Runtime.grants` words (the words a service's `needs:` uses)."""
    words = [f"{ns}=host" for ns in ("network", "pid", "ipc") if getattr(spec, ns) == "host"]
    words += ["privileged"] if spec.privileged else []
    words += [f"device={d}" for d in spec.devices]
    return tuple(words)


def unmet_needs(recipe: Recipe, spec: ContainerSpec) -> tuple[tuple[str, str], ...]:
    """(service, need) for each grant a service needs that `spec` does not give."""
    granted = set(spec_grants(spec))
    return tuple((s.name, need) for s in recipe.services for need in s.needs
                 if need not in granted)


def capabilities(recipe: Recipe) -> tuple[str, ...]:
    """The recipe's declared capabilities plus the init's own, as sorted `CAP_*` names."""
    names = {c.upper().removeprefix("CAP_") for c in recipe.capabilities}
    return tuple(f"CAP_{c}" for c in sorted(names | set(INIT_CAPABILITIES)))


def stop_timeout(recipe: Recipe) -> int:
    """Seconds `podman stop` waits before SIGKILL: the init's worst clean stop plus a margin.

    The init signals a service once every service that depends on it has exited, and SIGKILLs
    it after its own stop timeout; independent services stop together. The worst case is the
    longest dependency chain of stop timeouts: without dependencies, the slowest service.
    """
    dependents: dict[str, list[str]] = {s.name: [] for s in recipe.services}
    for service in recipe.services:
        for dependency in service.depends_on:
            dependents.setdefault(dependency, []).append(service.name)
    timeouts = {s.name: s.stop_timeout for s in recipe.services}
    done: dict[str, float] = {}
    for service in reversed(recipe.services):   # dependency order: dependents come later
        done[service.name] = timeouts[service.name] + max(
            (done.get(d, 0.0) for d in dependents[service.name]), default=0.0)
    return math.ceil(max(done.values(), default=10.0)) + STOP_MARGIN


def health_check(recipe: Recipe) -> HealthCheck:
    """`monoimage-init health`, with a start period long enough for every readiness timeout."""
    start = sum(s.ready.timeout for s in recipe.services if s.ready.kind != "none")
    return HealthCheck(cmd=" ".join(HEALTH_CMD), interval=HEALTH_INTERVAL, timeout=HEALTH_TIMEOUT,
                       retries=HEALTH_RETRIES,
                       start_period=min(math.ceil(start), START_PERIOD_CAP) or HEALTH_INTERVAL,
                       on_failure="kill")


def volume_name(container: str, path: str) -> str:
    """The named volume for a state directory: `edge-lite-var-lib-redis`."""
    slug = re.sub(r"[^a-zA-Z0-9_.-]+", "-", path.strip("/")) or "root"
    return f"{container}-{slug}"


def podman_run_args(spec: ContainerSpec) -> list[str]:
    """The `podman run` options for `spec`, image last (callers put their own options first)."""
    return [arg for option in podman_run_options(spec) for arg in option] + [spec.image]


def podman_run_options(spec: ContainerSpec) -> tuple[tuple[str, ...], ...]:
    """The options of `podman_run_args`, each with its value: `("--memory", "512m")`."""
    options: list[tuple[str, ...]] = [("--name", spec.name)]
    if spec.read_only:
        # Only /run and /tmp are writable, whatever the podman version's read-only defaults.
        options += [("--read-only",), ("--read-only-tmpfs=false",)]
    options += [("--tmpfs", mount.options) for mount in spec.tmpfs]
    if spec.memory:
        options.append(("--memory", spec.memory))
    if spec.pids_limit:
        options.append(("--pids-limit", str(spec.pids_limit)))
    options += host_options(spec)
    if spec.cap_drop_all:
        options.append(("--cap-drop", "all"))
    options += [("--cap-add", cap) for cap in spec.cap_add]
    options += [("--publish", port.option) for port in spec.ports]
    options += [("--volume", volume.option) for volume in spec.volumes]
    options += [("--volume", mount.option) for mount in spec.host_mounts]
    options += [("--env-file", env_file) for env_file in spec.env_files]
    options += [("--secret", secret.option) for secret in spec.secrets]
    options += [("--label", f"{key}={value}") for key, value in spec.labels]
    options += health_options(spec.health)
    options.append(("--stop-timeout", str(spec.stop_timeout)))
    options += [("--ulimit", ulimit.option) for ulimit in spec.ulimits]
    return tuple(options)


def host_options(spec: ContainerSpec) -> list[tuple[str, ...]]:
    """The namespaces shared with the host, privileged, devices and sysctls of `spec`."""
    options: list[tuple[str, ...]] = [(f"--{ns}", "host") for ns in ("network", "pid", "ipc")
                                      if getattr(spec, ns) == "host"]
    if spec.privileged:
        options.append(("--privileged",))
    options += [("--device", device) for device in spec.devices]
    options += [("--sysctl", f"{name}={value}") for name, value in spec.sysctls]
    return options


def health_options(health: HealthCheck) -> list[tuple[str, str]]:
    return [("--health-cmd", health.cmd),
            ("--health-interval", f"{health.interval}s"),
            ("--health-timeout", f"{health.timeout}s"),
            ("--health-retries", str(health.retries)),
            ("--health-start-period", f"{health.start_period}s"),
            ("--health-on-failure", health.on_failure)]


def rewrite_registry(image: str, registry: str) -> str:
    """`image` pulled from `registry` instead: `localhost/edge-lite:latest` with
    `registry.example:5000/edge` gives `registry.example:5000/edge/edge-lite:latest`."""
    registry = registry.strip().rstrip("/")
    if not registry or "://" in registry or any(c.isspace() for c in registry):
        raise UserError(f"--registry {registry!r}: give HOST[:PORT][/PATH], without a scheme")
    _, path = split_domain(image)
    return f"{registry}/{path}"


def split_domain(image: str) -> tuple[str | None, str]:
    """The registry domain of an image reference (None when it has none) and the rest."""
    first, sep, rest = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return None, image
