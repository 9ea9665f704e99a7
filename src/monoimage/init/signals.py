"""Signals delivered to init, turned into events the single-threaded main loop reads.

Handlers only record the signal number; `signal.set_wakeup_fd` writes a byte to a pipe that the
loop's selector watches, so a signal arriving just before `select()` still wakes it up. Nothing
ever reaps or signals from inside a handler, so no handler races the loop's `waitpid`.
SIGCHLD gets a handler too: with its default disposition no wakeup byte would be written.

PID 1 of a PID namespace ignores every signal it has no handler for, even SIGTERM from the
host, so a `podman stop` right after `podman run` would be lost while Python imports the init.
__main__ blocks these signals first thing (a blocked signal stays pending instead of being
ignored); `SignalInbox` unblocks them once its handlers are in place, and every other command
right away (`release_startup_signals`). No child is started before: children inherit the mask.
"""

import os
import signal
from types import FrameType

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
CAUGHT = (*FORWARDED, signal.SIGCHLD)   # = __main__.STARTUP_BLOCKED


def release_startup_signals() -> None:
    """Unblock what __main__ blocked at startup (for the commands that are not PID 1)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, CAUGHT)


class SignalInbox:
    """Catches SIGTERM, SIGINT, SIGHUP and SIGCHLD; `take()` returns what arrived since."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)
        signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)
        for signum in CAUGHT:
            signal.signal(signum, self._record)
        release_startup_signals()   # what arrived during startup is handled now

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
