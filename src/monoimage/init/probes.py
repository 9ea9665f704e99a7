"""Readiness probes, built so that the single-threaded main loop never blocks on one.

An attempt either answers at once (a file exists; a connect was refused or accepted) or gives
back something pending: a non-blocking socket to watch for writability (`SocketAttempt`), or a
child process whose exit status the loop's reaper hands over (`CommandAttempt`).

Kinds: tcp (connect to host:port), http (GET host:port/path answers the status; httpprobe.py,
imported only for it), unix (connect to a stream or datagram socket), file (path
exists), command (argv exits 0; run as root, output discarded), none (ready once started).
"""

import errno
import os
import selectors
import signal
import socket
import subprocess
from collections.abc import Mapping

from .table import Ready

_IN_PROGRESS = (errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY)


class SocketAttempt:
    """A connect in progress; ready when the socket turns writable without an error."""

    deadline: float | None = None   # monotonic; past it, the loop cancels and tries again

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()

    def events(self) -> int:
        """What the loop waits for on the socket before calling `advance`."""
        return selectors.EVENT_WRITE

    def advance(self) -> bool | None:
        """The answer once the socket is ready for `events()`; None to wait again."""
        return self.result()

    def result(self) -> bool:
        """Whether the connect succeeded (call once the socket is writable); closes it."""
        error = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        self.cancel()
        return error == 0

    def cancel(self) -> None:
        self.sock.close()


class CommandAttempt:
    """A probe command running in its own session; its exit code is the answer."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    @property
    def pid(self) -> int:
        return self.process.pid

    def cancel(self) -> None:
        """Kill the probe and whatever it started; the loop's reaper collects it."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except OSError:
            pass


Attempt = SocketAttempt | CommandAttempt


def start_attempt(ready: Ready, env: Mapping[str, str], cwd: str) -> bool | Attempt:
    """Start one probe attempt: True/False when the answer is immediate, else the attempt."""
    if ready.kind == "none":
        return True
    if ready.kind == "file":
        return ready.path is not None and os.path.exists(ready.path)
    if ready.kind == "command":
        assert ready.argv is not None
        try:
            process = subprocess.Popen(ready.argv, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       cwd=cwd, env=dict(env), start_new_session=True)
        except (OSError, subprocess.SubprocessError):
            return False
        return CommandAttempt(process)
    if ready.kind == "unix":
        assert ready.path is not None
        return _connect_unix(ready.path)
    if ready.kind == "http":
        from .httpprobe import start_http
        return start_http(ready)
    assert ready.port is not None
    started = connect_tcp(ready.host, ready.port)
    if started is None:
        return False
    sock, connected = started
    if connected:
        sock.close()
        return True
    return SocketAttempt(sock)


def connect_tcp(host: str, port: int) -> tuple[socket.socket, bool] | None:
    """A non-blocking connect to host:port: (socket, connected already) while it is under way
    or done, None when it failed at once (refused, unknown host)."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except OSError:
        return None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        code = sock.connect_ex(address)
    except OSError:
        code = errno.ECONNREFUSED
    if code == 0 or code in _IN_PROGRESS:
        return sock, code == 0
    sock.close()
    return None


def _connect_unix(path: str) -> bool:
    """A stream socket, or a datagram one (chronyd's command socket answers EPROTOTYPE)."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        sock = socket.socket(socket.AF_UNIX, kind)
        sock.setblocking(False)  # a full backlog answers EAGAIN: not ready yet
        try:
            code = sock.connect_ex(path)
        except OSError:
            code = errno.ECONNREFUSED
        finally:
            sock.close()
        if code != errno.EPROTOTYPE:
            return code == 0
    return False
