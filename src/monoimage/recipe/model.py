"""The recipe model: frozen values that every later stage takes as its input.

Parsing and validation live in `load.py`; nothing here does I/O. A default a recipe key has
is read from `settings.py`, where the parser and the docs read it too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from monoimage.recipe.settings import default
from monoimage.recipe.versions import Constraint, Family

ProbeKind = Literal["tcp", "http", "unix", "file", "command", "none"]
RestartKind = Literal["always", "on-failure", "never"]
LayeringPolicy = Literal["single", "packages"]
LayeringUpdates = Literal["layers", "delta"]
Namespace = Literal["private", "host"]


@dataclass(frozen=True)
class PackageRequest:
    """One package a service (or the base) asks for, optionally with a version constraint."""

    name: str
    constraint: Constraint | None = None
    where: str = field(default="", compare=False)  # `FILE:LINE` it was asked at, for messages

    def __str__(self) -> str:
        return f"{self.name} {self.constraint}" if self.constraint else self.name


@dataclass(frozen=True)
class FamilyPackages:
    """Packages for every packager family, plus the per-family additions."""

    common: tuple[PackageRequest, ...] = ()
    apt: tuple[PackageRequest, ...] = ()
    dnf: tuple[PackageRequest, ...] = ()

    def for_family(self, family: Family) -> tuple[PackageRequest, ...]:
        return self.common + (self.apt if family is Family.APT else self.dnf)


@dataclass(frozen=True)
class Template:
    """A config file rendered at start from site values; `dest` is where the service reads it."""

    dest: str
    content: str
    mode: int = default("config.templates[].mode")
    owner: str = default("config.templates[].owner")
    group: str | None = None


@dataclass(frozen=True)
class ConfigCommand:
    """A one-shot command run in the configure phase, before any service starts."""

    argv: tuple[str, ...]
    user: str = default("config.commands[].user")


@dataclass(frozen=True)
class Probe:
    """How to tell a service is ready: a tcp port, an HTTP GET (`path` on `port`, answering
    `status`), a unix socket, a file, or a command."""

    kind: ProbeKind = "none"
    port: int | None = None
    host: str = default("ready.tcp.host")
    path: str | None = None
    status: int | None = None         # http: the status the GET must answer
    argv: tuple[str, ...] | None = None
    timeout: float = default("ready.timeout")
    interval: float = default("ready.interval")


@dataclass(frozen=True)
class RestartPolicy:
    policy: RestartKind = default("restart.policy")  # noqa: RUF009 (a str: immutable)
    backoff_initial: float = default("restart.backoff.initial")
    backoff_max: float = default("restart.backoff.max")
    max_restarts: int = default("restart.max_restarts")
    window: float = default("restart.window")


@dataclass(frozen=True)
class RuntimeDir:
    """A directory systemd would have made (RuntimeDirectory=): the init makes it at start."""

    path: str
    owner: str = default("runtime_dirs[].owner")
    group: str | None = None
    mode: int = default("runtime_dirs[].mode")


@dataclass(frozen=True)
class Port:
    number: int
    protocol: Literal["tcp", "udp"] = "tcp"

    def __str__(self) -> str:
        return f"{self.number}/{self.protocol}"


@dataclass(frozen=True)
class Service:
    """One edge service: what to install, how to configure it, how to run it."""

    name: str
    source: str  # the recipe file it came from, for messages
    description: str = default("description")
    packages: FamilyPackages = field(default_factory=FamilyPackages)
    templates: tuple[Template, ...] = ()
    commands: tuple[ConfigCommand, ...] = ()
    argv: tuple[str, ...] = ()
    user: str = default("run.user")
    group: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    workdir: str = default("run.workdir")
    ready: Probe = field(default_factory=Probe)
    depends_on: tuple[str, ...] = ()
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    stop_signal: str = default("stop.signal")
    stop_timeout: float = default("stop.timeout")
    reload_signal: str = default("reload_signal")
    critical: bool = default("critical")
    volumes: tuple[str, ...] = ()
    runtime_dirs: tuple[RuntimeDir, ...] = ()
    ports: tuple[Port, ...] = ()
    capabilities: tuple[str, ...] = ()
    condition: tuple[str, ...] = ()  # paths that must exist at start, else it is skipped
    needs: tuple[str, ...] = ()  # host grants it cannot run without, as Runtime.grants words


@dataclass(frozen=True)
class AptRepository:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...] = default("distro.repositories[].components")
    signed_by: str | None = None
    trusted: bool = default("distro.repositories[].trusted")


@dataclass(frozen=True)
class DnfRepository:
    id: str
    baseurl: str
    gpgcheck: bool = default("distro.repositories[].gpgcheck")


@dataclass(frozen=True)
class Distro:
    """The distribution and its packager; empty `repositories` on apt means the host's sources."""

    name: str
    release: str
    packager: Family
    architecture: str = default("distro.architecture")
    variant: str = default("distro.variant")
    recommends: bool = default("distro.recommends")
    repositories: tuple[AptRepository | DnfRepository, ...] = ()


@dataclass(frozen=True)
class Layering:
    policy: LayeringPolicy = default("layering.policy")  # noqa: RUF009 (a str: immutable)
    max_layers: int = default("layering.max_layers")
    updates: LayeringUpdates = default("layering.updates")  # noqa: RUF009 (a str: immutable)
    max_deltas: int = default("layering.max_deltas")
    max_shadowed: float = default("layering.max_shadowed")


@dataclass(frozen=True)
class Strip:
    """What the build removes: caches always; these when asked."""

    docs: bool = default("strip.docs")
    man: bool = default("strip.man")
    locales: bool = default("strip.locales")
    paths: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class HostMount:
    """A host directory or file bind-mounted into the container (`/lib/modules`, read-only)."""

    source: str
    target: str
    read_only: bool = default("runtime.host_mounts[].read_only")


@dataclass(frozen=True)
class Runtime:
    """How the container runs on its host: the limits of `--profile small-host`, and the host
    integration the image's services need (namespaces shared with the host, devices, host
    mounts, sysctls, privileged), granted under every profile and by every host artefact."""

    memory: str = default("runtime.memory")
    pids_limit: int = default("runtime.pids_limit")
    read_only: bool = default("runtime.read_only")
    network: Namespace = default("runtime.network")  # noqa: RUF009 (a str: immutable)
    pid: Namespace = default("runtime.pid")  # noqa: RUF009 (a str: immutable)
    ipc: Namespace = default("runtime.ipc")  # noqa: RUF009 (a str: immutable)
    privileged: bool = default("runtime.privileged")
    devices: tuple[str, ...] = default("runtime.devices")
    host_mounts: tuple[HostMount, ...] = ()
    sysctls: tuple[tuple[str, str], ...] = ()

    @property
    def grants(self) -> tuple[str, ...]:
        """The host integration granted, one word each (`network=host`, `device=/dev/kvm`)."""
        words = [f"{ns}=host" for ns in ("network", "pid", "ipc") if getattr(self, ns) == "host"]
        words += ["privileged"] if self.privileged else []
        words += [f"device={d}" for d in self.devices]
        words += [f"mount={m.source}:{m.target}:{'ro' if m.read_only else 'rw'}"
                  for m in self.host_mounts]
        words += [f"sysctl={k}={v}" for k, v in self.sysctls]
        return tuple(words)


@dataclass(frozen=True)
class Recipe:
    """One golden image: distro, base, services (in dependency order), site values, policy."""

    name: str
    tag: str
    source: str
    digest: str  # sha256 over every file the recipe was read from
    distro: Distro
    base_packages: tuple[PackageRequest, ...] = ()
    config_tools: tuple[PackageRequest, ...] = ()
    services: tuple[Service, ...] = ()
    site: tuple[tuple[str, str], ...] = ()  # the defaults, by name
    site_required: tuple[str, ...] = ()  # names with no default: given at run time
    site_secrets: tuple[str, ...] = ()   # those of site_required that are secrets
    layering: Layering = field(default_factory=Layering)
    strip: Strip = field(default_factory=Strip)
    runtime: Runtime = field(default_factory=Runtime)

    @property
    def reference(self) -> str:
        """The image reference the build tags: `localhost/NAME:TAG`."""
        return f"localhost/{self.name}:{self.tag}"

    @property
    def site_names(self) -> tuple[str, ...]:
        """Every site value the image's templates may use, with a default or not."""
        return tuple(sorted({name for name, _ in self.site} | set(self.site_required)))

    @property
    def ports(self) -> tuple[Port, ...]:
        return tuple(sorted({p for s in self.services for p in s.ports},
                            key=lambda p: (p.number, p.protocol)))

    @property
    def capabilities(self) -> tuple[str, ...]:
        return tuple(sorted({c for s in self.services for c in s.capabilities}))

    @property
    def volumes(self) -> tuple[str, ...]:
        return tuple(sorted({v for s in self.services for v in s.volumes}))

    def service(self, name: str) -> Service:
        for svc in self.services:
            if svc.name == name:
                return svc
        raise KeyError(name)
