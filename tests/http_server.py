"""A real HTTP server on a free loopback port for the probe tests: Python's http.server in a
thread, answering each path with the status the test gives (404 for the others)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def serving(statuses: dict[str, int], body: bytes = b"",
            seen: list[str] | None = None) -> Iterator[int]:
    """Serve GET: `statuses[path]` (else 404) with `body`; each request line, with its Host
    header, is appended to `seen`. Yields the port."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if seen is not None:
                seen.append(f"{self.command} {self.path} {self.request_version} "
                            f"{self.headers.get('Host')}")
            self.send_response(statuses.get(self.path, 404))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
