"""`status` and `health` over the unix socket, as HEALTHCHECK and `monoimage boot` use them."""

import json
import socket
import subprocess
import sys
import time

from init_harness import scaled, service, svc, table


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monoimage.init", *args], capture_output=True,
                          text=True, timeout=scaled(20), check=False)


def test_health_fails_until_every_service_is_ready_then_passes(start_init, tmp_path):
    flag = tmp_path / "slow-ready"
    run = start_init(table(
        service("fast", svc("fast")),
        service("slow", svc("slow"),     # ready when the test says so: it creates the file
                ready={"kind": "file", "path": str(flag), "timeout": 3600.0, "interval": 0.05}),
    ))
    run.wait_state("fast", "ready")
    run.wait_state("slow", "starting")
    health = cli("health", "--socket", str(run.socket))
    assert (health.returncode, health.stdout) == (1, "unhealthy: not ready: slow (starting)\n")
    flag.touch()
    run.wait_state("slow", "ready")
    health = cli("health", "--socket", str(run.socket))
    assert (health.returncode, health.stdout) == (0, "healthy\n")
    assert run.stop() == 0
    assert not run.socket.exists(), "the socket goes away with init"
    health = cli("health", "--socket", str(run.socket))
    assert (health.returncode, health.stdout, health.stderr) == (
        1, "", (f"unhealthy: cannot reach init at {run.socket}: [Errno 2] No such file or "
                f"directory\n"))


def test_status_json_and_table_describe_every_service(start_init, tmp_path):
    launched = time.time()
    run = start_init(table(service("web", svc("web")), service("cache", svc("cache"))))
    run.wait_state("cache", "ready")
    result = cli("status", "--json", "--socket", str(run.socket))
    assert result.returncode == 0
    document = json.loads(result.stdout)
    assert document["init"]["pid"] == 1 and document["init"]["state"] == "running"
    assert document["healthy"] is True
    web = document["services"][0]
    assert web["name"] == "web" and web["state"] == "ready" and web["restarts"] == 0
    assert isinstance(web["pid"], int) and web["pid"] > 1
    assert web["rss_kib"] > 1000
    assert launched <= web["ready_since"] <= time.time() and web["ready_after_ms"] >= 0
    assert web["critical"] is True and web["last_exit"] is None
    text = cli("status", "--socket", str(run.socket))
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert lines[0].startswith("init: running, pid 1, image test, up ")
    assert lines[1].split() == ["SERVICE", "STATE", "PID", "RESTARTS", "READY_MS", "READY_FOR",
                                "RSS_KIB", "LAST_EXIT"]
    assert lines[2].split()[:2] == ["web", "ready"] and lines[3].split()[:2] == ["cache", "ready"]
    assert lines[2].index("ready") == lines[3].index("ready"), "columns are aligned"
    assert run.stop() == 0


def test_wire_protocol_is_tab_separated_records_and_rejects_unknown_requests(start_init):
    run = start_init(table(service("web", svc("web"))))
    run.wait_state("web", "ready")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(run.socket))
        sock.sendall(b"status\n")
        answer = b"".join(iter(lambda: sock.recv(4096), b"")).decode()
    kinds = [line.split("\t")[0] for line in answer.splitlines()]
    assert kinds == ["init", "service", "end"]
    service_line = answer.splitlines()[1].split("\t")
    assert [field.split("=")[0] for field in service_line[1:]] == [
        "name", "state", "pid", "restarts", "ready_since", "ready_after_ms", "rss_kib",
        "critical", "last_exit"]
    assert answer.splitlines()[2] == "end\thealthy=yes\tservices=1"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(run.socket))
        sock.sendall(b"reboot\n")
        answer = b"".join(iter(lambda: sock.recv(4096), b"")).decode()
    assert answer == "error\tmessage=unknown request 'reboot'\n"
    assert run.stop() == 0
