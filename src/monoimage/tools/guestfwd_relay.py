"""One guest connection of QEMU's `guestfwd=…-cmd:`, carried to a loopback address.

QEMU runs this script once per connection the guest opens to the forwarded address, with the
connection on its standard input and output; the script connects to HOST PORT on the build
host and copies bytes both ways until either side closes. (A `guestfwd` to a chardev would
carry every guest connection over one host connection: HTTP clients open several.)

Standard library only, run as `python3 -I -S guestfwd_relay.py HOST PORT`.
"""

from __future__ import annotations

import os
import selectors
import socket
import sys


def relay(host: str, port: int) -> None:
    upstream = socket.create_connection((host, port), timeout=30)
    upstream.settimeout(None)
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ)
    selector.register(upstream, selectors.EVENT_READ)
    open_sides = 2
    while open_sides:
        for key, _ in selector.select():
            if key.fileobj == 0:
                data = os.read(0, 1 << 16)
                if not data:
                    selector.unregister(0)
                    upstream.shutdown(socket.SHUT_WR)
                    open_sides -= 1
                    continue
                upstream.sendall(data)
            else:
                data = upstream.recv(1 << 16)
                if not data:
                    selector.unregister(upstream)
                    open_sides -= 1
                    if open_sides:
                        return  # the registry closed: the guest's side ends with us
                    continue
                view = memoryview(data)
                while view:
                    view = view[os.write(1, view):]


if __name__ == "__main__":
    try:
        relay(sys.argv[1], int(sys.argv[2]))
    except OSError:
        sys.exit(1)
