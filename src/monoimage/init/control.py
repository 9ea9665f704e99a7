"""The status protocol between a running init and `monoimage-init status|health` (or the
host-side `monoimage boot`, which runs those through `podman exec` or reads the socket).

Socket: AF_UNIX stream, default /run/monoimage/init.sock (`--socket`, env MONOIMAGE_SOCKET),
mode 0600, created once the configure phase is over (before that, health fails: unreachable).

Request: one line, `status` + LF. Response: UTF-8 text lines, then init closes the connection.
Every line is one record: a kind, then TAB-separated `key=value` fields, in this order:

    init     version=1  pid=<int>  state=<running|stopping>  image=<text>  uptime_s=<float>
             log_dropped_lines=<int>
    service  name=<text>  state=<state>  pid=<int|->  restarts=<int>
             ready_since=<epoch seconds, float|->  ready_after_ms=<int|->  rss_kib=<int|->
             critical=<yes|no>  last_exit=<text|->
    ...      (one `service` record per service, in table order)
    end      healthy=<yes|no>  services=<int>

or, for a request it does not know, the single record `error  message=<text>`.
Service states: waiting (for dependencies), starting (started, not ready yet), ready, backoff
(waiting to restart), stopping, stopped, done (exited successfully, not restarted), failed.
`-` means none/null; values never hold a TAB or a newline. healthy=yes when every service is
ready or done. `ready_after_ms` counts from the (re)start of the process to its probe passing;
`rss_kib` is VmRSS of the main process; `uptime_s` counts from the start of the run phase;
`log_dropped_lines` counts the lines of output init dropped because the container log's reader
did not keep up (see logwriter.py);
`last_exit` says how the previous process of that service ended (`exit code 1`, `killed by
SIGKILL`, `not ready within 30 s`, `cannot start`).
Readers must ignore record kinds and keys they do not know: new ones may be added.
"""

import _socket
import os
import time

from .poller import EVENT_READ, Poller

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

DEFAULT_SOCKET = "/run/monoimage/init.sock"
REQUEST_LIMIT = 1024
REQUEST_TIMEOUT = 5.0
Record = tuple[str, list[tuple[str, object]]]


def format_records(records: list[Record]) -> str:
    """The wire text of `records`."""
    return "".join("\t".join([kind, *(f"{key}={_field(value)}" for key, value in fields)]) + "\n"
                   for kind, fields in records)


def parse_records(text: str) -> list[tuple[str, dict[str, str]]]:
    """Records from wire text: (kind, {key: value}); `-` stays `-` for the caller to read."""
    records = []
    for line in text.splitlines():
        if not line:
            continue
        kind, *fields = line.split("\t")
        records.append((kind, dict(field.partition("=")[::2] for field in fields)))
    return records


def _field(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    text = str(value).replace("\t", " ").replace("\n", " ").replace("\r", " ")
    return text if text else "-"


class ControlConnection:
    """One client: reads its request line (non-blocking), then answers and closes."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.sock.setblocking(False)
        self.buffer = b""
        self.deadline = time.monotonic() + REQUEST_TIMEOUT

    def fileno(self) -> int:
        return self.sock.fileno()

    def read_request(self) -> str | None:
        """The request once a whole line arrived (`""` for a client that hung up or sent
        junk), None while more is needed."""
        try:
            data = self.sock.recv(REQUEST_LIMIT)
        except BlockingIOError:
            return None
        except OSError:
            return ""
        self.buffer += data
        if b"\n" in self.buffer:
            return self.buffer.split(b"\n", 1)[0].decode("ascii", "replace").strip()
        if not data:  # the client shut its side: what it sent is the whole request
            return self.buffer.decode("ascii", "replace").strip()
        if len(self.buffer) > REQUEST_LIMIT:
            return ""
        return None

    def answer(self, text: str) -> None:
        """Send `text` (small: fits the socket buffer) and close."""
        try:
            self.sock.settimeout(1.0)
            self.sock.sendall(text.encode("utf-8", "replace"))
        except OSError:
            pass
        self.close()

    def close(self) -> None:
        self.sock.close()


class ControlServer:
    """The listening socket (mode 0600: root only); a stale one from an earlier boot goes."""

    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        # Bound under a temporary name and renamed once listening: a client that sees the
        # socket file can connect (no ECONNREFUSED between bind and listen).
        temp = f"{path}.{os.getpid()}"
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        old_umask = os.umask(0o177)
        try:
            self.sock.bind(temp)
        finally:
            os.umask(old_umask)
        self.sock.listen(16)
        self.sock.setblocking(False)
        os.rename(temp, path)

    def fileno(self) -> int:
        return self.sock.fileno()

    def accept(self) -> ControlConnection | None:
        """The next waiting client, if any."""
        try:
            fd, _ = self.sock._accept()  # type: ignore[attr-defined]  # a new close-on-exec fd
        except OSError:
            return None
        return ControlConnection(_socket.socket(fileno=fd))

    def close(self) -> None:
        """Stop listening and remove the socket file."""
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


class StatusEndpoint:
    """The listening socket and its clients, served from the main loop's selector: each
    client's request is read without blocking, answered from `records()`, then closed; a client
    silent for REQUEST_TIMEOUT is dropped."""

    def __init__(self, path: str, selector: Poller,
                 records: "Callable[[], list[Record]]") -> None:
        self.server = ControlServer(path)   # OSError when it cannot listen
        self.selector = selector
        self.records = records
        self.clients: list[ControlConnection] = []
        selector.register(self.server, EVENT_READ, self._on_server)

    def _on_server(self, _: object) -> None:
        client = self.server.accept()
        if client is not None:
            self.clients.append(client)
            self.selector.register(client, EVENT_READ, self._on_client)

    def _on_client(self, client: object) -> None:
        assert isinstance(client, ControlConnection)
        request = client.read_request()
        if request is None:
            return
        self._forget(client)
        if request == "status":
            client.answer(format_records(self.records()))
        else:
            client.answer(format_records([("error", [("message",
                                                       f"unknown request {request!r}")])]))

    def _forget(self, client: ControlConnection) -> None:
        self.selector.unregister(client)
        self.clients.remove(client)

    def drop_idle(self, now: float) -> None:
        """Close the clients that sent no whole request in time."""
        for client in [client for client in self.clients if now >= client.deadline]:
            self._forget(client)
            client.close()

    def deadlines(self) -> list[float]:
        """When the loop must wake up to drop an idle client (monotonic times)."""
        return [client.deadline for client in self.clients]

    def close(self) -> None:
        """Stop listening (the socket file goes) and close every client."""
        self.selector.unregister(self.server)
        self.server.close()
        for client in self.clients:
            self.selector.unregister(client)
            client.close()
        self.clients = []


def request_status(path: str, timeout: float = 5.0) -> list[tuple[str, dict[str, str]]]:
    """Ask the init listening on `path` for its status (OSError if it cannot be reached)."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(b"status\n")
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        sock.close()
    return parse_records(b"".join(chunks).decode("utf-8", "replace"))
