"""sd_notify: tell the service manager on the host how far the services are.

When `NOTIFY_SOCKET` is set (systemd sets it for a `Type=notify` unit; `podman run
--sdnotify=container` passes it into the container), init sends, as AF_UNIX datagrams:
`STATUS=3/7 ready: redis, nginx, chrony` whenever that line changes, `READY=1` once, when every
service is ready (done and skipped ones count, as `monoimage boot`'s report counts them), and
`STOPPING=1` when it starts to stop. A path starting with `@` is an abstract address.

Nothing here may fail the init: the socket may be gone or full, the manager may not listen.
An error is said once in the log, and the messages after it are still tried.
"""

import socket

from .logs import say
from .service import SATISFIES_DEPENDENTS, SKIPPED, ServiceRun

MAX_STATUS = 400   # characters: one line that a `systemctl status` shows whole


class Notifier:
    """Sends the notifications of one init run; does nothing without NOTIFY_SOCKET."""

    def __init__(self, address: str | None) -> None:
        if address and address.startswith("@"):
            address = "\0" + address[1:]
        self.address = address or None
        self.sock: socket.socket | None = None
        self.status = ""
        self.ready_sent = False
        self.stopping_sent = False
        self.failed = False

    def update(self, runs: list[ServiceRun], stopping: bool) -> None:
        """Send what changed since the last call: STOPPING=1, READY=1, the STATUS line."""
        if self.address is None:
            return
        lines = []
        if stopping and not self.stopping_sent:
            self.stopping_sent = True
            lines.append("STOPPING=1")
        elif (not stopping and not self.ready_sent
              and all(run.state in SATISFIES_DEPENDENTS for run in runs)):
            self.ready_sent = True
            lines.append("READY=1")
        status = status_line(runs, stopping)
        if status != self.status:
            self.status = status
            lines.append(f"STATUS={status}")
        if lines:
            self.send("\n".join(lines))

    def send(self, message: str) -> None:
        """One datagram; an error is logged once and never raised."""
        if self.address is None:
            return
        try:
            if self.sock is None:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self.sock.setblocking(False)   # a full queue must not stop the loop
            self.sock.sendto(message.encode("utf-8", "replace"), self.address)
        except OSError as error:
            if not self.failed:
                self.failed = True
                shown = self.address.replace("\0", "@", 1)
                say(f"cannot notify the service manager at {shown}: "
                    f"{error.strerror or error} (the services run on regardless)")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def status_line(runs: list[ServiceRun], stopping: bool = False) -> str:
    """`3/7 ready: redis, nginx, chrony` (skipped ones say so); `stopping: …` when stopping."""
    up = [run for run in runs if run.state in SATISFIES_DEPENDENTS]
    names = ", ".join(run.name + (" (skipped)" if run.state == SKIPPED else "") for run in up)
    line = f"{len(up)}/{len(runs)} ready" + (f": {names}" if names else "")
    if stopping:
        line = f"stopping; {line}"
    if len(line) > MAX_STATUS:
        line = line[:MAX_STATUS - 1] + "…"
    return line
