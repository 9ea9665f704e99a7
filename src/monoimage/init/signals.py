"""Signals delivered to init, turned into events the single-threaded main loop reads.

Handlers only record the signal number; `signal.set_wakeup_fd` writes a byte to a pipe that the
loop's selector watches, so a signal arriving just before `select()` still wakes it up. Nothing
ever reaps or signals from inside a handler, so no handler races the loop's `waitpid`.
SIGCHLD gets a handler too: with its default disposition no wakeup byte would be written.
"""

import os
import signal
from types import FrameType

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class SignalInbox:
    """Catches SIGTERM, SIGINT, SIGHUP and SIGCHLD; `take()` returns what arrived since."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)
        signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)
        for signum in (*FORWARDED, signal.SIGCHLD):
            signal.signal(signum, self._record)

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)

    def fileno(self) -> int:
        """The pipe end to watch for readability."""
        return self.read_fd

    def take(self) -> list[int]:
        """The signals received since the last call, oldest first (the pipe is drained)."""
        try:
            while os.read(self.read_fd, 4096):
                pass
        except BlockingIOError:
            pass
        received, self.received = self.received, []
        return received

    def stop_requested(self) -> bool:
        """Whether SIGTERM or SIGINT has arrived (and not yet been taken)."""
        return signal.SIGTERM in self.received or signal.SIGINT in self.received
