"""`monoimage boot` without booting: probes against real sockets on this host, the recipe's facts
read back from an image's table and labels, and the errors a user can cause."""

from __future__ import annotations

import http.server
import io
import socket
import struct
import subprocess
import tarfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from click.testing import CliRunner
from rich.console import Console

from monoimage.cli import main
from monoimage.cli.boot import print_report, summary
from monoimage.image import LABEL_MEMORY, LABEL_PIDS_LIMIT, LABEL_READ_ONLY, LABEL_SERVICE_PORTS
from monoimage.pipeline.boot import BootReport, ServiceStatus
from monoimage.pipeline.build import BuildOptions, image_config
from monoimage.pipeline.host_probes import (
    HostProbe,
    build_dns_query,
    build_ntp_request,
    dns_query,
    ntp_query,
    parse_dns_answer,
    parse_ntp_answer,
    probe_kind,
    probe_port,
    published_ports,
)
from monoimage.plan.image_facts import recipe_from_image, runtime_from_labels
from monoimage.plan.run_profile import container_spec
from monoimage.plan.service_table import service_table_text
from monoimage.recipe.model import Port, Probe
from test_runprofile import edge_recipe, podman_env
from timing import scaled

# --- probes against real sockets --------------------------------------------------------------

def udp_server(answer: Callable[[bytes], bytes]) -> Iterator[int]:
    """A one-shot UDP server on a free loopback port that replies answer(request)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(scaled(5))

    def serve() -> None:
        try:
            request, peer = sock.recvfrom(4096)
            sock.sendto(answer(request), peer)
        except OSError:
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    sock.close()
    thread.join(scaled(5))


@pytest.fixture
def dns_server() -> Iterator[int]:
    def answer(request: bytes) -> bytes:   # NXDOMAIN, QR set, same id, same question
        query_id = struct.unpack("!H", request[:2])[0]
        return struct.pack("!HHHHHH", query_id, 0x8183, 1, 0, 0, 0) + request[12:]
    yield from udp_server(answer)


@pytest.fixture
def ntp_server() -> Iterator[int]:
    yield from udp_server(lambda request: bytes([0b00_100_100, 3]) + bytes(46))


def test_dns_query_is_a_standard_a_query():
    query = build_dns_query(0x1234, "edge.test")
    assert query[:12] == struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    assert query[12:] == b"\x04edge\x04test\x00\x00\x01\x00\x01"


def test_dns_answer_must_be_ours():
    answer = struct.pack("!HHHHHH", 7, 0x8180, 1, 2, 0, 0)
    assert parse_dns_answer(answer, 7) == "dns NOERROR, 2 answer(s)"
    with pytest.raises(OSError, match="not an answer"):
        parse_dns_answer(answer, 8)
    with pytest.raises(OSError, match="short"):
        parse_dns_answer(b"\x00\x07", 7)


def test_dns_probe_talks_to_a_real_udp_server(dns_server):
    assert dns_query(dns_server) == "dns NXDOMAIN, 0 answer(s)"


def test_ntp_request_is_a_v4_client_packet():
    request = build_ntp_request()
    assert len(request) == 48 and request[0] == 0x23


def test_ntp_answer_must_come_from_a_server():
    assert parse_ntp_answer(bytes([0b11_100_100, 0]) + bytes(46)) == "ntp stratum 0 unsynchronised"
    with pytest.raises(OSError):
        parse_ntp_answer(bytes([0x23]) + bytes(47))


def test_ntp_probe_talks_to_a_real_udp_server(ntp_server):
    assert ntp_query(ntp_server) == "ntp stratum 3"


def test_tcp_probe_connects_or_fails():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        ok = probe_port("web", Port(80), port)
    assert (ok.outcome, ok.detail) == ("ok", "tcp connect")
    refused = probe_port("web", Port(80), port)      # closed now
    assert refused.outcome == "failed" and "refused" in refused.detail.lower()


@pytest.fixture
def http_server() -> Iterator[int]:
    """A real HTTP server on a free loopback port: / answers 200, /private 403."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/" else 403)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_an_http_probed_port_gets_a_real_get_and_shows_its_status(http_server):
    ready = Probe(kind="http", port=80, path="/", status=200)
    ok = probe_port("nginx", Port(80), http_server, ready=ready)
    assert (ok.kind, ok.outcome, ok.detail) == ("http", "ok", "http GET / 200")
    wrong = probe_port("nginx", Port(80), http_server, ready=replace(ready, path="/private"))
    assert (wrong.kind, wrong.outcome) == ("http", "failed")
    assert wrong.detail == f"http on 127.0.0.1:{http_server}: GET /private answered 403, not 200"
    expected = probe_port("nginx", Port(80), http_server,
                          ready=replace(ready, path="/private", status=403))
    assert expected.outcome == "ok" and expected.detail == "http GET /private 403"


def test_a_port_that_is_not_http_fails_the_get():
    with socket.create_server(("127.0.0.1", 0)) as server:   # accepts, then says nothing
        port = server.getsockname()[1]
        silent = probe_port("nginx", Port(80), port,
                            ready=Probe(kind="http", port=80, path="/", status=200))
    assert silent.outcome == "failed" and silent.kind == "http"


def test_only_the_port_of_an_http_probe_gets_a_get():
    ready = Probe(kind="http", port=80, path="/", status=200)
    assert probe_kind(Port(80), ready) == "http"
    assert probe_kind(Port(8080), ready) == "tcp"
    assert probe_kind(Port(80), Probe(kind="tcp", port=80)) == "tcp"
    assert probe_kind(Port(80, "udp"), ready) == "none"


def test_a_port_that_is_not_published_fails():
    assert probe_port("web", Port(80), None).detail == "not published"


def test_probe_kinds():
    assert [probe_kind(p) for p in (Port(80), Port(53, "udp"), Port(123, "udp"),
                                    Port(25826, "udp"))] == ["tcp", "dns", "ntp", "none"]
    skipped = probe_port("collectd", Port(25826, "udp"), 40000)
    assert skipped.outcome == "skipped"


def test_published_ports_from_inspect():
    inspect = {"NetworkSettings": {"Ports": {
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "40001"}], "80/tcp": None}}}
    assert published_ports(inspect) == {"53/udp": 40001}


# --- the recipe's facts, read back from the image ---------------------------------------------

# What `podman image inspect` shows of edge_recipe()'s image, written out by hand.
RUN_LABELS = {
    LABEL_SERVICE_PORTS: "dnsmasq=53/udp,53/tcp;redis=6379/tcp;chrony=123/udp",
    LABEL_MEMORY: "512m", LABEL_PIDS_LIMIT: "1024", LABEL_READ_ONLY: "true"}
CAPABILITIES = {"io.monoimage.capabilities": "CAP_NET_BIND_SERVICE,NET_BIND_SERVICE,NET_RAW"}


def edge_inspect(labels: dict[str, str]) -> dict:
    return {"Config": {
        "ExposedPorts": {"53/tcp": {}, "53/udp": {}, "123/udp": {}, "6379/tcp": {}},
        "Volumes": {"/var/lib/chrony": {}, "/var/lib/redis": {}},
        "Labels": {"io.monoimage.health-cmd": "/usr/bin/monoimage-init health", **labels}}}


def test_the_build_writes_the_labels_boot_reads():
    labels = dict(image_config(edge_recipe(), BuildOptions(), "sha256:" + "0" * 64).labels)
    assert {k: labels[k] for k in (*RUN_LABELS, *CAPABILITIES)} == RUN_LABELS | CAPABILITIES


def test_the_image_gives_boot_the_same_spec_as_the_recipe():
    """One source of truth: the labels and config the build writes are enough to run the
    image as the recipe says."""
    recipe = edge_recipe()
    from_image, notes = recipe_from_image("localhost/edge-lite:latest",
                                          edge_inspect(RUN_LABELS | CAPABILITIES),
                                          service_table_text(recipe))
    assert notes == []
    assert container_spec(from_image) == container_spec(recipe)
    assert [(s.name, s.ports) for s in from_image.services] == [
        ("dnsmasq", (Port(53, "udp"), Port(53, "tcp"))), ("redis", (Port(6379),)),
        ("chrony", (Port(123, "udp"),))]


def test_without_run_labels_boot_guesses_and_says_so():
    """An image built before the build wrote the run labels: boot guesses and says so."""
    recipe = edge_recipe()
    from_image, notes = recipe_from_image("localhost/edge-lite:latest",
                                          edge_inspect(CAPABILITIES),
                                          service_table_text(recipe))
    assert from_image.ports == recipe.ports             # every exposed port is published
    assert from_image.capabilities == recipe.capabilities
    assert from_image.volumes == ("/var/lib/chrony", "/var/lib/redis")
    assert {x.name: x.ports for x in from_image.services}["redis"] == (Port(6379),)
    assert any(LABEL_SERVICE_PORTS in n for n in notes)
    assert any(LABEL_MEMORY in n for n in notes)


def test_runtime_labels():
    runtime = runtime_from_labels({LABEL_MEMORY: "256m", LABEL_PIDS_LIMIT: "64",
                                   LABEL_READ_ONLY: "false"})
    assert (runtime.memory, runtime.pids_limit, runtime.read_only) == ("256m", 64, False)


def test_report_is_ok_only_without_problems():
    report = BootReport(image="i", container="c", profile="small-host", recipe_from="image",
                        healthy=True, time_to_ready_ms=1.0, time_to_healthy_ms=2.0,
                        services=(), probes=(), init_rss_kib=1, zombies=(), stop_timeout=10,
                        stop_seconds=1.0, exit_code=0)
    assert report.ok
    assert not replace(report, problems=("exit code 1",)).ok


# --- the text report, from hand-made values ---------------------------------------------------

HEALTHY = BootReport(
    image="localhost/edge-lite:latest", container="monoimage-boot-edge-lite-1a2b3c",
    profile="small-host", recipe_from="image", healthy=True, time_to_ready_ms=1234.4,
    time_to_healthy_ms=1500.6,
    services=(ServiceStatus("dnsmasq", "ready", 310, 2048, 0, 12),
              ServiceStatus("redis", "ready", 905, 9830, 1, 13)),
    probes=(HostProbe("dnsmasq", "53/udp", 40001, "dns", "ok", "dns NXDOMAIN, 0 answer(s)"),
            HostProbe("dnsmasq", "53/tcp", 40002, "tcp", "ok", "tcp connect"),
            HostProbe("redis", "6379/tcp", 40003, "tcp", "ok", "tcp connect")),
    init_rss_kib=15360, zombies=(), stop_timeout=25, stop_seconds=1.234, exit_code=0)


def report_lines(report: BootReport) -> list[str]:
    out = io.StringIO()
    print_report(report, Console(file=out, width=200, color_system=None))
    return [line.rstrip() for line in out.getvalue().splitlines()]


def test_a_healthy_report_has_a_row_per_service_and_says_healthy():
    lines = report_lines(HEALTHY)
    assert lines[0].strip() == "localhost/edge-lite:latest — profile small-host, facts from image"
    rows = [[c.strip() for c in line.strip("│").split("│")] for line in lines
            if line.startswith("│")]
    assert rows == [
        ["dnsmasq", "ready", "310 ms", "2.0 MiB", "0", "✓ 53/udp dns NXDOMAIN, 0 answer(s)"],
        ["", "", "", "", "", "✓ 53/tcp tcp connect"],
        ["redis", "ready", "905 ms", "9.6 MiB", "1", "✓ 6379/tcp tcp connect"]]
    assert lines[lines.index(next(x for x in lines if x.startswith("container "))):] == [
        ("container monoimage-boot-edge-lite-1a2b3c (localhost/edge-lite:latest, profile "
        "small-host)"),
        "all services ready 1234 ms after start (health check passed at 1501 ms)",
        "monoimage-init RSS 15.0 MiB",
        "podman stop: 1.23 s (stop timeout 25 s), exit code 0, 0 zombie(s)",
        "healthy: every service ready and answering from the host; stopped cleanly"]


def test_an_unhealthy_report_lists_problems_notes_and_the_log():
    sick = replace(HEALTHY, healthy=False, time_to_ready_ms=None, time_to_healthy_ms=None,
                   services=(), probes=(), init_rss_kib=None, stop_seconds=None,
                   exit_code=4, notes=("no io.monoimage.runtime.memory label: 512m assumed",),
                   problems=("the container exited (code 4) before it was healthy",),
                   log_tail="never: not ready after 4 s\n")
    assert report_lines(sick) == [
        ("container monoimage-boot-edge-lite-1a2b3c (localhost/edge-lite:latest, profile "
        "small-host)"),
        "note: no io.monoimage.runtime.memory label: 512m assumed",
        "not healthy:",
        "  ✗ the container exited (code 4) before it was healthy",
        "last lines of the container log:",
        "never: not ready after 4 s"]


def test_a_kept_container_says_how_to_stop_it():
    kept = replace(HEALTHY, kept=True, stop_seconds=None, exit_code=None)
    assert summary(kept).splitlines()[-1] == (
        "kept running: podman stop -t 25 monoimage-boot-edge-lite-1a2b3c && podman rm "
        "monoimage-boot-edge-lite-1a2b3c")


# --- errors a user can cause ------------------------------------------------------------------

def run(*args: str):
    return CliRunner().invoke(main, ["boot", *args])


@pytest.mark.tools
def test_an_image_that_is_not_here_exits_2():
    result = run("localhost/monoimage-test-absent:0")
    assert result.exit_code == 2
    assert "localhost/monoimage-test-absent:0: not in local storage" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--profile", "huge"],
     "monoimage: Invalid value for '--profile': 'huge' is not one of 'small-host', 'default'."),
    (["--timeout", "0"],
     "monoimage: Invalid value for '--timeout': 0.0 is not in the range x>=1."),
])
def test_bad_options_exit_2(args, message):
    result = run("localhost/edge-lite:latest", *args)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [message, "  see 'main boot --help'"]


@pytest.fixture(scope="module")
def foreign_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An image that is not a monoimage image (no service table)."""
    root = tmp_path_factory.mktemp("foreign")
    (root / "hello").write_text("hello\n")
    with tarfile.open(root / "rootfs.tar", "w") as tar:
        tar.add(root / "hello", arcname="hello")
    ref = f"localhost/monoimage-test-foreign:{uuid.uuid4().hex[:8]}"
    subprocess.run(["podman", "import", "--quiet", str(root / "rootfs.tar"), ref], check=True,
                   env=podman_env(), capture_output=True)
    yield ref
    subprocess.run(["podman", "rmi", "--force", ref], check=False, env=podman_env(),
                   capture_output=True)


@pytest.mark.tools
def test_an_image_without_a_service_table_exits_2_and_runs_nothing(foreign_image):
    result = run(foreign_image)
    assert result.exit_code == 2
    assert "no monoimage service table" in result.output and "--recipe" in result.output
    listed = subprocess.run(["podman", "ps", "--all", "--format", "{{.Image}}"], check=True,
                            env=podman_env(), capture_output=True, text=True).stdout
    assert foreign_image not in listed
