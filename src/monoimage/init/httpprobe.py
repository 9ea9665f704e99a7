"""The http readiness probe: a real `GET path HTTP/1.0` over a non-blocking socket, ready when
the status line carries the expected status. Imported only by an image with an http probe.

The attempt moves on each time the main loop sees its socket ready: connected → request sent
→ status line read. HTTP/1.0 with `Connection: close` keeps it to one request and one status
line; the body is never read. An attempt that has not answered by its deadline (a server that
accepts but does not answer yet) is cancelled by the loop and tried again.
"""

import selectors
import socket
import time

from .probes import SocketAttempt, connect_tcp
from .table import Ready

ATTEMPT_TIMEOUT = 2.0       # seconds one GET may take before the loop tries again
MAX_STATUS_LINE = 4096      # bytes read at most: the status line comes first


class HttpAttempt(SocketAttempt):
    """One GET in progress."""

    def __init__(self, sock: socket.socket, request: bytes, status: int) -> None:
        super().__init__(sock)
        self.connected = False
        self.pending = request
        self.expected = status
        self.answer = b""
        self.deadline = time.monotonic() + ATTEMPT_TIMEOUT

    def events(self) -> int:
        return selectors.EVENT_WRITE if self.pending else selectors.EVENT_READ

    def advance(self) -> bool | None:
        """One step once the socket is ready for `events()`: None to wait again, else the
        answer (the socket is then closed)."""
        try:
            if not self.connected:
                if self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    return self._end(False)
                self.connected = True
            if self.pending:
                sent = self.sock.send(self.pending)
                self.pending = self.pending[sent:]
                return None
            data = self.sock.recv(MAX_STATUS_LINE)
        except BlockingIOError:
            return None
        except OSError:
            return self._end(False)
        self.answer += data
        if data and b"\n" not in self.answer and len(self.answer) < MAX_STATUS_LINE:
            return None
        return self._end(status_of(self.answer) == self.expected)

    def _end(self, answer: bool) -> bool:
        self.cancel()
        return answer


def start_http(ready: Ready) -> bool | HttpAttempt:
    """Connect to the probe's host:port without blocking; False when refused at once."""
    assert ready.port is not None and ready.path is not None
    started = connect_tcp(ready.host, ready.port)
    if started is None:
        return False
    host = f"[{ready.host}]" if ":" in ready.host else ready.host
    request = (f"GET {ready.path} HTTP/1.0\r\nHost: {host}:{ready.port}\r\n"
               f"User-Agent: monoimage-init\r\nConnection: close\r\n\r\n").encode("ascii")
    return HttpAttempt(started[0], request, ready.status)


def status_of(answer: bytes) -> int | None:
    """The status code of an HTTP status line (`HTTP/1.1 200 OK`), None if it is not one."""
    line = answer.split(b"\n", 1)[0].strip()
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return None
    return int(parts[1])
