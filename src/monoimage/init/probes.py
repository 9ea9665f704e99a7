"""Readiness probes, built so that the single-threaded main loop never blocks on one.

An attempt either answers at once (a file exists; a connect was refused or accepted) or gives
back something pending: a non-blocking socket to watch for writability (`SocketAttempt`), or a
child process whose exit status the loop's reaper hands over (`CommandAttempt`).

Kinds: tcp (connect to host:port), unix (connect to a stream or datagram socket), file (path
exists), command (argv exits 0; run as root, output discarded), none (ready once started).
"""

import _signal
import _socket
import errno
import os

from .spawn import spawn
from .table import Ready

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

_IN_PROGRESS = (errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY)


class SocketAttempt:
    """A connect in progress; ready when the socket turns writable without an error."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()

    def result(self) -> bool:
        """Whether the connect succeeded (call once the socket is writable); closes it."""
        error = self.sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_ERROR)
        self.cancel()
        return error == 0

    def cancel(self) -> None:
        self.sock.close()


class CommandAttempt:
    """A probe command running in its own session; its exit code is the answer."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def cancel(self) -> None:
        """Kill the probe and whatever it started; the loop's reaper collects it."""
        try:
            os.killpg(self.pid, _signal.SIGKILL)
        except OSError:
            pass


Attempt = SocketAttempt | CommandAttempt


def start_attempt(ready: Ready, env: "Mapping[str, str]", cwd: str) -> "bool | Attempt":
    """Start one probe attempt: True/False when the answer is immediate, else the attempt."""
    if ready.kind == "none":
        return True
    if ready.kind == "file":
        return ready.path is not None and os.path.exists(ready.path)
    if ready.kind == "command":
        assert ready.argv is not None
        try:
            pid = spawn(ready.argv, dict(env), cwd, None, None, None)
        except OSError:
            return False
        return CommandAttempt(pid)
    if ready.kind == "unix":
        assert ready.path is not None
        return _connect_unix(ready.path)
    assert ready.port is not None
    try:
        infos = _socket.getaddrinfo(_host_bytes(ready.host), ready.port, 0, _socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    family, _, _, _, address = infos[0]
    return _connect(family, address)


def _host_bytes(host: str) -> bytes:
    """The host as bytes: given a str, getaddrinfo loads the idna codec (and unicodedata),
    2 MiB of PID 1's RSS for good; only a host that is not ASCII needs it."""
    try:
        return host.encode("ascii")
    except UnicodeError:
        return host.encode("idna")


def _connect_unix(path: str) -> bool:
    """A stream socket, or a datagram one (chronyd's command socket answers EPROTOTYPE)."""
    for kind in (_socket.SOCK_STREAM, _socket.SOCK_DGRAM):
        sock = _socket.socket(_socket.AF_UNIX, kind)
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


def _connect(family: int, address: "str | tuple[object, ...]") -> "bool | SocketAttempt":
    sock = _socket.socket(family, _socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        code = sock.connect_ex(address)
    except OSError:
        code = errno.ECONNREFUSED
    if code in _IN_PROGRESS and family != _socket.AF_UNIX:  # on AF_UNIX, EAGAIN: backlog full
        return SocketAttempt(sock)
    sock.close()
    return code == 0
