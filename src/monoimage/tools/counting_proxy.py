"""A counting HTTP proxy on loopback: the bytes a registry served, request by request.

Why a proxy rather than the registry's access log: it counts what crossed the connection,
whatever the registry is (the same proxy measures a mirror or another registry), and it
attributes bytes to each request. The access log records the size a handler meant to send:
distribution logs a HEAD of a manifest with the manifest's length though no body is sent.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from monoimage.footprint.pull_check import PullMeasure, Served

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                         "te", "trailer", "transfer-encoding", "upgrade"})
_CHUNK = 1 << 20


@dataclass
class Proxy:
    """A running counting proxy: where it listens, and what it has served so far."""

    host: str
    _served: list[Served] = field(default_factory=list)
    _in_flight: int = 0
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def begin(self) -> None:
        with self._changed:
            self._in_flight += 1

    def record(self, served: Served) -> None:
        with self._changed:
            self._served.append(served)
            self._in_flight -= 1
            self._changed.notify_all()

    def take(self, timeout: float = 30.0) -> PullMeasure:
        """Everything served since the last take, and start counting afresh.

        A client can read the last byte before the proxy's thread has recorded the request:
        wait until every request begun has been recorded.
        """
        with self._changed:
            if not self._changed.wait_for(lambda: self._in_flight == 0, timeout):
                raise RuntimeError(f"{self._in_flight} proxied requests still open")
            taken, self._served[:] = tuple(self._served), []
        return PullMeasure(taken)


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, proxy: Proxy) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream = upstream
        self.proxy = proxy


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer
    written: int = 0

    def do_GET(self) -> None:
        self._forward()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass  # the proxy records requests itself; stderr stays quiet

    def _forward(self) -> None:
        self.server.proxy.begin()
        upstream = http.client.HTTPConnection(self.server.upstream, timeout=120)
        status, self.written = 502, 0
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            # Header by header: a client sends Accept several times (one per manifest type).
            upstream.putrequest(self.command, self.path, skip_host=True,
                                skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    upstream.putheader(name, value)
            upstream.endheaders(body)
            response = upstream.getresponse()
            status = response.status
            self._relay(response)
        finally:
            upstream.close()
            self.server.proxy.record(Served(self.command, self.path, status, self.written,
                                            self.client_address[0]))

    def _relay(self, response: http.client.HTTPResponse) -> None:
        """Send the upstream response on, counting body bytes in `written` as they go."""
        size = response.getheader("Content-Length")
        buffered = None
        if size is None and self.command != "HEAD":
            buffered = response.read()  # a chunked upstream body: sent on with its length
            size = str(len(buffered))
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        if size is not None:
            self.send_header("Content-Length", size)
        self.end_headers()
        if self.command == "HEAD":
            return
        if buffered is not None:
            self.wfile.write(buffered)
            self.written += len(buffered)
            return
        while chunk := response.read(_CHUNK):
            self.wfile.write(chunk)
            self.written += len(chunk)


@contextmanager
def counting_proxy(upstream: str) -> Iterator[Proxy]:
    """An HTTP proxy on 127.0.0.1 to `upstream` (host:port) that counts bytes it serves."""
    proxy = Proxy("")
    server = _ProxyServer(upstream, proxy)
    proxy.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="counting-proxy", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


