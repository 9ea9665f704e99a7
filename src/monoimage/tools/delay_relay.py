"""A delaying TCP relay, run as its own process inside a site's network namespace.

    python -m monoimage.tools.delay_relay RTT_SECONDS LISTEN_PORT=UPSTREAM_HOST:PORT...

The kernel here has no `netem`, so a link's round-trip time is added in user space: the relay
listens on the site's loopback, and for every connection it waits one RTT (the TCP handshake
over the long link), connects to the upstream registry across the shaped veth, and forwards
each chunk in each direction half an RTT after it arrived (a delay line: chunks keep their
order and their spacing, so the shaped rate survives). The relay's own TCP connections span
the veth only, so TCP slow start does not see the added delay: a real long link would add it.

It prints `ready` once it listens, and runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Awaitable, Callable

_CHUNK = 1 << 16


async def _delay_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      delay: float) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def take() -> None:
        while data := await reader.read(_CHUNK):
            queue.put_nowait((time.monotonic() + delay, data))
        queue.put_nowait((time.monotonic() + delay, b""))

    async def give() -> None:
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    await asyncio.gather(take(), give())


async def _relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter,
                 upstream: tuple[str, int], rtt: float) -> None:
    try:
        await asyncio.sleep(rtt)  # the handshake's round trip over the long link
        server_r, server_w = await asyncio.open_connection(*upstream)
    except OSError:
        client_w.close()
        return
    try:
        await asyncio.gather(_delay_line(client_r, server_w, rtt / 2),
                             _delay_line(server_r, client_w, rtt / 2))
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        for writer in (client_w, server_w):
            writer.close()


async def serve(routes: dict[int, tuple[str, int]], rtt: float) -> None:
    """Relay each 127.0.0.1:port to its upstream with `rtt` added, until a stop signal."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def handler(upstream: tuple[str, int]) -> Callable[..., Awaitable[None]]:
        return lambda r, w: _relay(r, w, upstream, rtt)

    servers = [await asyncio.start_server(handler(upstream), "127.0.0.1", port)
               for port, upstream in routes.items()]
    print("ready", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str]) -> int:
    rtt, routes = float(argv[0]), {}
    for route in argv[1:]:
        port, _, upstream = route.partition("=")
        host, _, upstream_port = upstream.rpartition(":")
        routes[int(port)] = (host, int(upstream_port))
    asyncio.run(serve(routes, rtt))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
