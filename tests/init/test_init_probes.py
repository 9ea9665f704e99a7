"""The unix probe reaches stream and datagram sockets alike (chronyd's is a datagram socket)."""

import socket
from pathlib import Path

import pytest

from monoimage.init.probes import start_attempt
from monoimage.init.table import Ready


def unix_ready(path: Path) -> Ready:
    return Ready("unix", "127.0.0.1", None, str(path), None, 1.0, 0.05)


@pytest.mark.parametrize("kind", [socket.SOCK_STREAM, socket.SOCK_DGRAM])
def test_unix_probe_passes_on_a_bound_socket_of_either_type(tmp_path: Path, kind: int) -> None:
    path = tmp_path / "daemon.sock"
    server = socket.socket(socket.AF_UNIX, kind)
    server.bind(str(path))
    if kind == socket.SOCK_STREAM:
        server.listen(1)
    try:
        assert start_attempt(unix_ready(path), {}, "/") is True
    finally:
        server.close()


def test_unix_probe_fails_where_nobody_listens(tmp_path: Path) -> None:
    assert start_attempt(unix_ready(tmp_path / "absent.sock"), {}, "/") is False
    stale = tmp_path / "stale.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(stale))
    server.close()  # the file stays, nobody is bound to it
    assert start_attempt(unix_ready(stale), {}, "/") is False
