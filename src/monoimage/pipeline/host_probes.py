"""Each service tried from the host through its published loopback port: a real GET where the
service's readiness probe is an http probe on that port (the status shown, the probe's own
status expected), a tcp connect on the other tcp ports, a real query on the well-known udp
ports (DNS on 53, NTP on 123).

The packets are built and read by the pure functions beside the socket code that sends them.
"""

from __future__ import annotations

import http.client
import secrets
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any, Literal

from monoimage.recipe.model import Port, Probe, Recipe

PROBE_TIMEOUT = 2.0           # seconds for one probe from the host

ProbeOutcome = Literal["ok", "failed", "skipped"]


@dataclass(frozen=True)
class HostProbe:
    """One service port tried from the host through its published port."""

    service: str
    port: str                 # "53/udp"
    host_port: int | None
    kind: str                 # http | tcp | dns | ntp | none
    outcome: ProbeOutcome
    detail: str
    ms: float | None = None


def published_ports(inspect: dict[str, Any]) -> dict[str, int]:
    """{"53/udp": 40123, …} from a container's inspect data."""
    ports = (inspect.get("NetworkSettings") or {}).get("Ports") or {}
    return {key: int(bindings[0]["HostPort"]) for key, bindings in ports.items() if bindings}


def probe_from_host(recipe: Recipe, inspect: dict[str, Any], *, host_network: bool = False,
                    skipped: frozenset[str] = frozenset()) -> tuple[HostProbe, ...]:
    """Every service port, tried through its published loopback port; on the host's network
    (nothing published) on the port itself. A service the init skipped is not tried."""
    published = ({str(p): p.number for p in recipe.ports} if host_network
                 else published_ports(inspect))
    results = []
    for service in recipe.services:
        if service.name in skipped:
            continue
        for port in service.ports:
            results.append(probe_port(service.name, port, published.get(str(port)),
                                      ready=service.ready))
    return tuple(results)


def probe_port(service: str, port: Port, host_port: int | None,
               ready: Probe | None = None) -> HostProbe:
    """One port through `host_port`; `ready`, the service's readiness probe, makes it a GET
    when it is an http probe on this port."""
    if host_port is None:
        return HostProbe(service, str(port), None, "none", "failed", "not published")
    kind = probe_kind(port, ready)
    if kind == "none":
        return HostProbe(service, str(port), host_port, kind, "skipped",
                         "no host probe for this udp port")
    began = time.monotonic()
    try:
        if kind == "http":
            assert ready is not None and ready.path is not None and ready.status is not None
            detail = http_get(host_port, ready.path, ready.status)
        else:
            detail = {"tcp": tcp_connect, "dns": dns_query, "ntp": ntp_query}[kind](host_port)
    except OSError as error:
        return HostProbe(service, str(port), host_port, kind, "failed",
                         f"{kind} on 127.0.0.1:{host_port}: {error.strerror or error}")
    return HostProbe(service, str(port), host_port, kind, "ok", detail,
                     (time.monotonic() - began) * 1000)


def probe_kind(port: Port, ready: Probe | None = None) -> str:
    """tcp ports: a GET where `ready` is an http probe on the port, else a connect; well-known
    udp ports: a real query; other udp: none."""
    if port.protocol == "tcp":
        if ready is not None and ready.kind == "http" and ready.port == port.number:
            return "http"
        return "tcp"
    return {53: "dns", 123: "ntp"}.get(port.number, "none")


def tcp_connect(host_port: int) -> str:
    with socket.create_connection(("127.0.0.1", host_port), timeout=PROBE_TIMEOUT):
        return "tcp connect"


def http_get(host_port: int, path: str, expected: int) -> str:
    """`GET path` through the published port: `http GET / 200`; an OSError naming the status
    when it is not `expected` (what the init's probe waits for)."""
    connection = http.client.HTTPConnection("127.0.0.1", host_port, timeout=PROBE_TIMEOUT)
    try:
        connection.request("GET", path, headers={"User-Agent": "monoimage-boot"})
        status = connection.getresponse().status
    except http.client.HTTPException as error:
        raise OSError(f"not an HTTP answer ({type(error).__name__})") from None
    finally:
        connection.close()
    if status != expected:
        raise OSError(f"GET {path} answered {status}, not {expected}")
    return f"http GET {path} {status}"


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
