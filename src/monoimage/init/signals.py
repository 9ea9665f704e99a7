"""Signals delivered to init, turned into events the single-threaded main loop reads.

Handlers only record the signal number; `signal.set_wakeup_fd` writes a byte to a pipe that the
loop's poller watches, so a signal arriving just before `poll()` still wakes it up. Nothing
ever reaps or signals from inside a handler, so no handler races the loop's `waitpid`.
SIGCHLD gets a handler too: with its default disposition no wakeup byte would be written, and
the byte it writes is what makes a child's exit an event (no polling).

PID 1 of a PID namespace ignores every signal it has no handler for, even SIGTERM from the
host, so a `podman stop` right after `podman run` would be lost while Python imports the init.
__main__ blocks these signals first thing (a blocked signal stays pending instead of being
ignored); `SignalInbox` unblocks them once its handlers are in place, and every other command
right away (`release_startup_signals`). Children are started with the default disposition of
every signal and an empty mask (spawn.py).

Built on the `_signal` built-in: the `signal` module imports `enum`, about 1 MiB of PID 1's
RSS for its whole life; `signal_number` and `signal_name` replace `signal.Signals`.
"""

import _signal
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType

FORWARDED = (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP)
CAUGHT = (*FORWARDED, _signal.SIGCHLD)   # = __main__.STARTUP_BLOCKED


def _names() -> dict[int, str]:
    # as signal.Signals: SIG* but not SIG_*; of two names for one number (SIGIOT, SIGABRT),
    # the first in alphabetical order, as enum's _convert_ sorts them
    names: dict[int, str] = {}
    for name in sorted(dir(_signal)):
        if name.startswith("SIG") and not name.startswith("SIG_") and name.isupper():
            names.setdefault(getattr(_signal, name), name)
    return names


SIGNAL_NAMES = _names()
SIGNAL_NUMBERS = {name: getattr(_signal, name) for name in dir(_signal)
                  if name.startswith("SIG") and not name.startswith("SIG_") and name.isupper()}


def signal_name(signum: int) -> str:
    """`SIGTERM` for 15, `signal 99` for a number without a name."""
    return SIGNAL_NAMES.get(signum, f"signal {signum}")


def signal_number(name: str) -> int | None:
    """15 for `SIGTERM` (or `TERM`), None for a name that is no signal."""
    return SIGNAL_NUMBERS.get(name if name.startswith("SIG") else f"SIG{name}")


def release_startup_signals() -> None:
    """Unblock what __main__ blocked at startup (for the commands that are not PID 1)."""
    _signal.pthread_sigmask(_signal.SIG_UNBLOCK, CAUGHT)


class SignalInbox:
    """Catches SIGTERM, SIGINT, SIGHUP and SIGCHLD; `take()` returns what arrived since."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)
        _signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)
        for signum in CAUGHT:
            _signal.signal(signum, self._record)
        release_startup_signals()   # what arrived during startup is handled now

    def _record(self, signum: int, frame: "FrameType | None") -> None:
        self.received.append(signum)

    def fileno(self) -> int:
        """The pipe end to watch for readability."""
        return self.read_fd

    def drain(self) -> None:
        """Empty the wakeup pipe; what arrived stays for `take()`."""
        try:
            while os.read(self.read_fd, 4096):
                pass
        except BlockingIOError:
            pass

    def take(self) -> list[int]:
        """The signals received since the last call, oldest first (the pipe is drained)."""
        self.drain()
        received, self.received = self.received, []
        return received

    def stop_requested(self) -> bool:
        """Whether SIGTERM or SIGINT has arrived (and not yet been taken)."""
        return _signal.SIGTERM in self.received or _signal.SIGINT in self.received
