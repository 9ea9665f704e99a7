"""A real sd_notify receiver for the tests: an AF_UNIX datagram socket bound where the test
says (a path, or an abstract `@name`), read the way systemd reads it: one datagram, one
message of newline-separated `KEY=VALUE` lines."""

import socket
import time
from pathlib import Path

from timing import scaled


class NotifySocket:
    """Collects every datagram sent to it, in order of arrival."""

    def __init__(self, address: str | Path) -> None:
        self.address = str(address)
        bound = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(bound)
        self.sock.setblocking(False)
        self.received: list[str] = []

    def messages(self) -> list[str]:
        """Every message so far (each one datagram's text)."""
        while True:
            try:
                self.received.append(self.sock.recv(65536).decode())
            except BlockingIOError:
                return self.received

    def lines(self) -> list[str]:
        """Every `KEY=VALUE` line so far, in order."""
        return [line for message in self.messages() for line in message.splitlines()]

    def wait_line(self, line: str, timeout: float = 20.0, log: object = "") -> int:
        """The index in `lines()` of the first line equal to `line`, once it has come (within
        `scaled(timeout)` seconds; `log`, text or a callable, is shown when it does not)."""
        deadline = time.monotonic() + scaled(timeout)
        while line not in self.lines():
            if time.monotonic() > deadline:
                shown = log() if callable(log) else log
                raise AssertionError(f"timed out after {scaled(timeout):g} s waiting for "
                                     f"{line!r} on the notify socket; got {self.lines()}; "
                                     f"log:\n{shown}")
            time.sleep(0.02)
        return self.lines().index(line)

    def close(self) -> None:
        self.sock.close()
