"""The http readiness probe: a real GET against real servers on loopback (Python's http.server
in a thread, and raw sockets for servers that are not HTTP or do not answer), driven by a
selector as init's loop drives it; then through init as PID 1."""

import selectors
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from init_harness import PY, scaled, service, svc, table, wait_until

from monoimage.init.httpprobe import HttpAttempt, status_of
from monoimage.init.probes import start_attempt
from monoimage.init.table import Ready, TableError, parse_table


class Handler(BaseHTTPRequestHandler):
    """/healthz answers 200, / answers 403 (nginx without an index), the rest 404."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Handler.seen.append(f"{self.command} {self.path} {self.request_version} "
                            f"{self.headers.get('Host')}")
        code = {"/healthz": 200, "/": 403}.get(self.path, 404)
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"x" * 100000)   # a body the probe never needs to read

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def http_ready(port: int, path: str = "/healthz", status: int = 200) -> Ready:
    return Ready("http", "127.0.0.1", port, path, None, 5.0, 0.05, status)


def answer(ready: Ready) -> bool:
    """Drive one attempt to its answer as init's loop would."""
    attempt = start_attempt(ready, {}, "/")
    if isinstance(attempt, bool):
        return attempt
    assert isinstance(attempt, HttpAttempt)
    with selectors.DefaultSelector() as selector:
        selector.register(attempt, attempt.events())
        while True:
            assert selector.select(scaled(5.0)), "the probe's socket never became ready"
            result = attempt.advance()
            if result is not None:
                return result
            selector.modify(attempt, attempt.events())


def test_a_get_answering_the_expected_status_passes(http_port):
    Handler.seen.clear()
    assert answer(http_ready(http_port)) is True
    assert Handler.seen == [f"GET /healthz HTTP/1.0 127.0.0.1:{http_port}"]


def test_another_status_fails_unless_it_is_the_expected_one(http_port):
    assert answer(http_ready(http_port, "/")) is False              # 403
    assert answer(http_ready(http_port, "/nothing-here")) is False  # 404
    assert answer(http_ready(http_port, "/", status=403)) is True


def test_a_closed_port_fails():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    assert answer(http_ready(port)) is False


def test_a_server_that_is_not_http_fails():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def serve() -> None:
        client, _ = server.accept()
        client.recv(4096)
        client.sendall(b"+OK redis-like greeting\r\n")
        client.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        assert answer(http_ready(server.getsockname()[1])) is False
    finally:
        thread.join(scaled(5))
        server.close()


def test_status_lines():
    assert status_of(b"HTTP/1.1 200 OK\r\nServer: x\r\n") == 200
    assert status_of(b"HTTP/1.0 503\r\n") == 503
    assert status_of(b"SSH-2.0-OpenSSH\r\n") is None
    assert status_of(b"") is None


@pytest.mark.parametrize(("ready", "message"), [
    ({"kind": "http", "path": "/"}, "an http probe needs a port"),
    ({"kind": "http", "port": 80}, "needs a request path"),
    ({"kind": "http", "port": 80, "path": "healthz"}, "needs a request path"),
    ({"kind": "http", "port": 80, "path": "/a b"}, "needs a request path"),
    ({"kind": "http", "port": 80, "path": "/", "status": 600}, "expected an HTTP status"),
    ({"kind": "http", "port": 80, "path": "/", "status": True}, "expected an HTTP status"),
])
def test_the_table_refuses_a_broken_http_probe(ready, message):
    text = repr(table(service("web", ["/bin/true"], ready=ready)))
    with pytest.raises(TableError, match=message):
        parse_table(text)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_init_waits_for_the_right_answer_then_says_ready(start_init, tmp_path: Path):
    """python3 -m http.server answers 200 on / (a listing) and 404 on a missing file: the
    probe of the missing file keeps its service starting; until its timeout kills it."""
    (tmp_path / "www").mkdir()
    ok_port, missing_port = free_port(), free_port()

    def server(port: int) -> list[str]:
        return [PY, "-m", "http.server", "--bind", "127.0.0.1", "--directory",
                str(tmp_path / "www"), str(port)]

    run = start_init(table(
        service("web", server(ok_port),
                ready={"kind": "http", "port": ok_port, "path": "/", "timeout": 60.0}),
        service("wrong", server(missing_port), restart={"policy": "never"}, critical=False,
                ready={"kind": "http", "port": missing_port, "path": "/missing.html",
                       "timeout": 3.0, "interval": 0.1}),
    ))
    run.wait_log(r"web is ready \(http probe, \d+ ms\)")
    run.wait_log(r"wrong was not ready within 3 s; killing it", timeout=30.0)
    wait_until(lambda: run.status()["wrong"]["state"] == "failed", 10.0, "wrong to fail")
    assert run.status()["web"]["state"] == "ready"
    assert run.stop() == 0


def test_a_server_that_accepts_but_does_not_answer_gets_a_fresh_attempt(start_init):
    """The test's own server (init's probe reaches it on loopback): it takes the first GET and
    says nothing; the attempt's deadline passes and init asks again; that one gets 200."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(scaled(30.0))
    port = server.getsockname()[1]
    run = start_init(table(service("web", svc("web"),
                                   ready={"kind": "http", "port": port, "path": "/ready",
                                          "timeout": 3600.0})))
    silent, _ = server.accept()
    assert silent.recv(4096).startswith(b"GET /ready HTTP/1.0\r\n")
    second, _ = server.accept()         # while the first is still open: init gave up on it
    assert second.recv(4096).startswith(b"GET /ready HTTP/1.0\r\n")
    assert run.status()["web"]["state"] == "starting"
    second.sendall(b"HTTP/1.0 200 OK\r\n\r\n")
    second.close()
    run.wait_state("web", "ready")
    silent.close()
    server.close()
    assert run.stop() == 0
