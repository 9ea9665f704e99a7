"""`monoimage boot`: run the golden image the way a small container-OS host would, and prove it.

Start it with podman under the run profile (`runprofile.container_spec`, the same spec the host
artefacts are rendered from) with every port on a free loopback port, wait until
`monoimage-init health` passes, probe each service from the host through its published port,
read the init's status, then stop it with `podman stop` and check it ended cleanly in time.
The container is always removed (unless kept on request), on failure and Ctrl-C too.

What boot needs to know (ports, capabilities, state volumes, limits, probes, stop timeouts)
comes from the recipe when given, else from the image itself: its config (exposed ports,
volumes), its labels (capabilities, limits) and its service table.
"""

from __future__ import annotations

import json
import secrets
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from monoimage.errors import UserError
from monoimage.image import (
    LABEL_CAPABILITIES,
    LABEL_MEMORY,
    LABEL_PACKAGER,
    LABEL_PIDS_LIMIT,
    LABEL_READ_ONLY,
    LABEL_RECIPE_DIGEST,
    LABEL_SERVICE_PORTS,
    LABEL_TITLE,
    STATUS_CMD,
    TABLE_PATH,
)
from monoimage.init.table import TableError, parse_table
from monoimage.plan.run_profile import ContainerSpec, ProfileName, container_spec, podman_run_args
from monoimage.recipe.model import Distro, Port, Probe, Recipe, Runtime, Service
from monoimage.recipe.versions import Family
from monoimage.tools import podman

POLL = 0.1                    # seconds between health checks
PROBE_TIMEOUT = 2.0           # seconds for one probe from the host

ProbeOutcome = Literal["ok", "failed", "skipped"]


@dataclass(frozen=True)
class HostProbe:
    """One service port tried from the host through its published port."""

    service: str
    port: str                 # "53/udp"
    host_port: int | None
    kind: str                 # tcp | dns | ntp | none
    outcome: ProbeOutcome
    detail: str
    ms: float | None = None


@dataclass(frozen=True)
class ServiceStatus:
    """One service as the init reported it."""

    name: str
    state: str
    ready_after_ms: int | None
    rss_kib: int | None
    restarts: int
    pid: int | None


@dataclass(frozen=True)
class BootReport:
    image: str
    container: str
    profile: ProfileName
    recipe_from: str                  # "recipe FILE" or "image"
    healthy: bool                     # monoimage-init health passed before the timeout
    time_to_ready_ms: float | None    # container start → every service ready (init's clock)
    time_to_healthy_ms: float | None  # container start → health check seen passing (host)
    services: tuple[ServiceStatus, ...]
    probes: tuple[HostProbe, ...]
    init_rss_kib: int | None
    zombies: tuple[str, ...]          # `pid comm` of zombie processes seen before the stop
    stop_timeout: int
    stop_seconds: float | None        # None when kept or never started
    exit_code: int | None
    kept: bool = False
    problems: tuple[str, ...] = ()
    log_tail: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """Healthy, every host probe answered, stopped cleanly in time, exit 0, no zombie."""
        return not self.problems


def boot(image: str, recipe: Recipe | None = None, *, profile: ProfileName = "small-host",
         timeout: float = 120.0, keep: bool = False, name: str | None = None,
         recipe_from: str = "image",
         progress: Callable[[str], None] = lambda _: None) -> BootReport:
    """Boot `image` under `profile` and report; `recipe` None reads the facts from the image."""
    inspect = podman.image_inspect(image)
    notes: list[str] = []
    if recipe is None:
        recipe, notes = recipe_from_image(image, inspect, read_table(image))
    name = name or f"monoimage-boot-{recipe.name}-{secrets.token_hex(3)}"
    spec = container_spec(recipe, image=image, name=name, profile=profile, ephemeral=True,
                          host_ip="127.0.0.1", random_host_ports=True)
    progress(f"starting {name} ({profile})")
    started = time.time()
    began = time.monotonic()
    try:
        podman.run_detached(podman_run_args(spec))
        return _observe(spec, recipe, started, began, timeout, keep, recipe_from, notes,
                        progress)
    finally:
        if not keep:
            podman.remove(name)


def _observe(spec: ContainerSpec, recipe: Recipe, started: float, began: float,
             timeout: float, keep: bool, recipe_from: str, notes: list[str],
             progress: Callable[[str], None]) -> BootReport:
    problems: list[str] = []
    progress("waiting for monoimage-init health")
    healthy, healthy_after, ended = wait_healthy(spec.name, began + timeout)
    time_to_healthy = (healthy_after - began) * 1000 if healthy_after is not None else None
    if ended is not None:
        problems.append(f"the container exited (code {ended}) before it was healthy")
    elif not healthy:
        problems.append(f"not healthy within {timeout:g} s")
    services: tuple[ServiceStatus, ...] = ()
    probes: tuple[HostProbe, ...] = ()
    init_rss = None
    zombies: tuple[str, ...] = ()
    time_to_ready = None
    if ended is None:
        status = read_status(spec.name)
        services = services_of(status)
        ready_since = [s.get("ready_since") for s in status.get("services", [])]
        if healthy and ready_since and all(isinstance(t, (int, float)) for t in ready_since):
            time_to_ready = (max(ready_since) - started) * 1000
        not_ready = [f"{s.name} ({s.state})" for s in services if s.state not in ("ready", "done")]
        if not_ready:
            problems.append(f"not ready: {', '.join(not_ready)}")
        progress("probing the services from the host")
        probes = probe_from_host(recipe, podman.container_inspect(spec.name) or {})
        problems += [f"{p.service} {p.port}: {p.detail}" for p in probes if p.outcome == "failed"]
        init_rss = init_rss_kib(spec.name)
        zombies = tuple(f"{p['pid']} {p.get('comm', '')}" for p in podman.processes(spec.name)
                        if p.get("state", "").startswith("Z"))
        if zombies:
            problems.append(f"zombie processes: {', '.join(zombies)}")
    log_tail = podman.logs(spec.name) if problems else ""
    stop_seconds = exit_code = None
    if not keep:
        progress(f"stopping (podman stop -t {spec.stop_timeout})")
        if ended is None:
            stop_seconds = podman.stop(spec.name, spec.stop_timeout)
            if stop_seconds >= spec.stop_timeout:
                problems.append(f"the stop took {stop_seconds:.1f} s: SIGKILL after the "
                                f"{spec.stop_timeout} s stop timeout")
        state = (podman.container_inspect(spec.name) or {}).get("State", {})
        exit_code = state.get("ExitCode", ended)
        if exit_code != 0 and ended is None:
            problems.append(f"exit code {exit_code} after podman stop")
    return BootReport(
        image=spec.image, container=spec.name, profile=spec.profile, recipe_from=recipe_from,
        healthy=healthy, time_to_ready_ms=time_to_ready, time_to_healthy_ms=time_to_healthy,
        services=services, probes=probes, init_rss_kib=init_rss, zombies=zombies,
        stop_timeout=spec.stop_timeout, stop_seconds=stop_seconds, exit_code=exit_code,
        kept=keep, problems=tuple(problems), log_tail=log_tail, notes=tuple(notes))


def wait_healthy(name: str, deadline: float) -> tuple[bool, float | None, int | None]:
    """Poll `podman healthcheck run` (which runs `monoimage-init health` in the container)
    until it passes or `deadline`: (healthy, when, exit code if the container ended)."""
    while True:
        state = (podman.container_inspect(name) or {}).get("State", {})
        if not state.get("Running", False):
            return False, None, int(state.get("ExitCode", -1))
        if podman.healthcheck(name).exit_code == 0:
            return True, time.monotonic(), None
        if time.monotonic() >= deadline:
            return False, None, None
        time.sleep(POLL)


def read_status(name: str) -> dict[str, Any]:
    """The init's status (`monoimage-init status --json` in the container)."""
    done = podman.exec_in(name, *STATUS_CMD)
    if done.exit_code != 0:
        return {"services": []}
    return dict(json.loads(done.stdout))


def services_of(status: dict[str, Any]) -> tuple[ServiceStatus, ...]:
    def number(value: object) -> int | None:
        return int(value) if isinstance(value, (int, float)) else None

    return tuple(ServiceStatus(name=str(s.get("name")), state=str(s.get("state")),
                               ready_after_ms=number(s.get("ready_after_ms")),
                               rss_kib=number(s.get("rss_kib")),
                               restarts=number(s.get("restarts")) or 0,
                               pid=number(s.get("pid")))
                 for s in status.get("services", []))


def init_rss_kib(name: str) -> int | None:
    """VmRSS of the container's PID 1 (monoimage-init), read from the host's /proc."""
    pid = (podman.container_inspect(name) or {}).get("State", {}).get("Pid")
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


# --- probes from the host ---------------------------------------------------------------------

def published_ports(inspect: dict[str, Any]) -> dict[str, int]:
    """{"53/udp": 40123, …} from a container's inspect data."""
    ports = (inspect.get("NetworkSettings") or {}).get("Ports") or {}
    return {key: int(bindings[0]["HostPort"]) for key, bindings in ports.items() if bindings}


def probe_from_host(recipe: Recipe, inspect: dict[str, Any]) -> tuple[HostProbe, ...]:
    """Every service port, tried through its published loopback port."""
    published = published_ports(inspect)
    results = []
    for service in recipe.services:
        for port in service.ports:
            results.append(probe_port(service.name, port, published.get(str(port))))
    return tuple(results)


def probe_port(service: str, port: Port, host_port: int | None) -> HostProbe:
    if host_port is None:
        return HostProbe(service, str(port), None, "none", "failed", "not published")
    kind = probe_kind(port)
    if kind == "none":
        return HostProbe(service, str(port), host_port, kind, "skipped",
                         "no host probe for this udp port")
    began = time.monotonic()
    try:
        detail = {"tcp": tcp_connect, "dns": dns_query, "ntp": ntp_query}[kind](host_port)
    except OSError as error:
        return HostProbe(service, str(port), host_port, kind, "failed",
                         f"{kind} on 127.0.0.1:{host_port}: {error.strerror or error}")
    return HostProbe(service, str(port), host_port, kind, "ok", detail,
                     (time.monotonic() - began) * 1000)


def probe_kind(port: Port) -> str:
    """tcp ports: a connect; well-known udp ports: a real query; other udp: none."""
    if port.protocol == "tcp":
        return "tcp"
    return {53: "dns", 123: "ntp"}.get(port.number, "none")


def tcp_connect(host_port: int) -> str:
    with socket.create_connection(("127.0.0.1", host_port), timeout=PROBE_TIMEOUT):
        return "tcp connect"


def dns_query(host_port: int, name: str = "localhost") -> str:
    """One A query over udp; any answer with our id is a DNS server answering."""
    query_id = secrets.randbits(16)
    request = build_dns_query(query_id, name)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(PROBE_TIMEOUT)
        sock.sendto(request, ("127.0.0.1", host_port))
        answer = sock.recv(4096)
    return parse_dns_answer(answer, query_id)


def build_dns_query(query_id: int, name: str) -> bytes:
    """A standard query (RD set) for `name`, type A, class IN."""
    header = struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(part)]) + part.encode("ascii") for part in name.split("."))
    return header + labels + b"\x00" + struct.pack("!HH", 1, 1)


RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def parse_dns_answer(answer: bytes, query_id: int) -> str:
    if len(answer) < 12:
        raise OSError("short DNS answer")
    answer_id, flags, _, count = struct.unpack("!HHHH", answer[:8])
    if answer_id != query_id or not flags & 0x8000:
        raise OSError("not an answer to our query")
    return f"dns {RCODES.get(flags & 0xF, str(flags & 0xF))}, {count} answer(s)"


def ntp_query(host_port: int) -> str:
    """One NTPv4 client request; a server-mode answer is an NTP server answering."""
    request = build_ntp_request()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(PROBE_TIMEOUT)
        sock.sendto(request, ("127.0.0.1", host_port))
        answer = sock.recv(512)
    return parse_ntp_answer(answer)


def build_ntp_request() -> bytes:
    return bytes([0b00_100_011]) + bytes(47)      # LI 0, version 4, mode 3 (client)


def parse_ntp_answer(answer: bytes) -> str:
    if len(answer) < 48 or answer[0] & 0b111 != 4:
        raise OSError("not an NTP server answer")
    leap, stratum = answer[0] >> 6, answer[1]
    return f"ntp stratum {stratum}" + (" unsynchronised" if leap == 3 else "")


# --- the recipe's facts, read back from the image ---------------------------------------------

def read_table(image: str) -> str:
    """The service table text, read from the image without starting it."""
    root = podman.image_mount(image)
    try:
        return (root / TABLE_PATH.lstrip("/")).read_text(encoding="utf-8")
    except OSError as error:
        raise UserError(f"image {image}: no monoimage service table at {TABLE_PATH} "
                        f"({error.strerror}); is it a monoimage image? "
                        f"Give --recipe otherwise") from None
    finally:
        podman.image_unmount(image)


def recipe_from_image(image: str, inspect: dict[str, Any], table_text: str
                      ) -> tuple[Recipe, list[str]]:
    """A Recipe holding what boot needs, from the image's table, config and labels; the notes
    say what had to be assumed."""
    try:
        table = parse_table(table_text, f"{image}:{TABLE_PATH}")
    except TableError as error:
        raise UserError(str(error)) from None
    config = inspect.get("Config") or {}
    labels = config.get("Labels") or inspect.get("Labels") or {}
    notes: list[str] = []
    exposed = sorted((_port(p) for p in (config.get("ExposedPorts") or {})),
                     key=lambda p: (p.number, p.protocol))
    owners = service_ports(labels.get(LABEL_SERVICE_PORTS, ""), table.services, exposed)
    services = []
    for index, entry in enumerate(table.services):
        ready = entry.ready
        services.append(Service(
            name=entry.name, source=image, depends_on=entry.depends_on,
            stop_timeout=entry.stop_timeout,
            ready=Probe(kind=ready.kind, port=ready.port, host=ready.host,  # type: ignore[arg-type]
                        path=ready.path, timeout=ready.timeout, interval=ready.interval),
            ports=owners.get(entry.name, ()),
            # The image records the union of capabilities and volumes: the first service
            # carries them, which is all the run profile looks at.
            capabilities=tuple(c for c in labels.get(LABEL_CAPABILITIES, "").split(",") if c)
            if index == 0 else (),
            volumes=tuple(sorted(config.get("Volumes") or {})) if index == 0 else ()))
    unowned = [p for p in exposed if not any(p in ports for ports in owners.values())]
    if unowned and services:
        services[0] = replace(services[0], ports=services[0].ports + tuple(unowned))
    if LABEL_SERVICE_PORTS not in labels:
        notes.append(f"the image has no {LABEL_SERVICE_PORTS} label: ports are matched to "
                     f"services by their readiness probes"
                     + (f"; {', '.join(map(str, unowned))} counted under {services[0].name}"
                        if unowned and services else ""))
    runtime = runtime_from_labels(labels)
    if LABEL_MEMORY not in labels:
        notes.append(f"the image has no {LABEL_MEMORY} label: default limits "
                     f"({runtime.memory}, {runtime.pids_limit} pids); --recipe gives the "
                     f"recipe's")
    name, _, tag = image.rpartition("/")[2].partition(":")
    packager = labels.get(LABEL_PACKAGER, "apt")
    recipe = Recipe(
        name=labels.get(LABEL_TITLE, name), tag=tag or "latest",
        source=image, digest=labels.get(LABEL_RECIPE_DIGEST, ""),
        distro=Distro(name="", release="", packager=Family(packager)),
        services=tuple(services), site=table.site, runtime=runtime)
    return recipe, notes


def service_ports(label: str, services: tuple[Any, ...], exposed: list[Port]
                  ) -> dict[str, tuple[Port, ...]]:
    """Which service owns which port: the image's label when it has one, else each service
    gets the exposed ports that carry its tcp readiness probe's number (tcp and udp)."""
    owners: dict[str, tuple[Port, ...]] = {}
    if label:
        for part in label.split(";"):
            service, _, ports = part.partition("=")
            owners[service.strip()] = tuple(_port(p) for p in ports.split(",") if p.strip())
        return owners
    for entry in services:
        if entry.ready.kind == "tcp" and entry.ready.port is not None:
            owners[entry.name] = tuple(p for p in exposed if p.number == entry.ready.port)
    return owners


def runtime_from_labels(labels: dict[str, str]) -> Runtime:
    default = Runtime()
    try:
        pids = int(labels.get(LABEL_PIDS_LIMIT, default.pids_limit))
    except ValueError:
        pids = default.pids_limit
    return Runtime(memory=labels.get(LABEL_MEMORY, default.memory), pids_limit=pids,
                   read_only=labels.get(LABEL_READ_ONLY, "true").lower() != "false")


def _port(text: str) -> Port:
    number, _, protocol = text.strip().partition("/")
    return Port(int(number), "udp" if protocol == "udp" else "tcp")
