"""The container log: every service line prefixed with its service's name, init's own lines
prefixed `monoimage-init | `.

Lines are bytes end to end (a service's encoding is its own business). A partial line is held
only until it reaches `LINE_CAP` bytes, the stream ends, or it has waited `PARTIAL_AFTER`
seconds, so a prompt without newline or a binary blob still shows up promptly. Every write
goes through logwriter.CONTAINER_LOG, which never blocks.
"""

import os

from .logwriter import CONTAINER_LOG

INIT_PREFIX = "monoimage-init | "
LINE_CAP = 8192
PARTIAL_AFTER = 1.0
READ_SIZE = 65536
_SAFE_ARG_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                            "_@%+=:,./-")


class LineBuffer:
    """Splits a byte stream into lines, holding back at most one partial line."""

    def __init__(self, cap: int = LINE_CAP) -> None:
        self.cap = cap
        self.pending = b""
        self.pending_since: float | None = None

    def feed(self, data: bytes, now: float) -> list[bytes]:
        """The complete lines (without newline) that `data` finishes; lines longer than the
        cap come as cap-sized pieces, and so does a partial line that reaches the cap."""
        pieces = (self.pending + data).split(b"\n")
        self.pending = pieces.pop()
        lines: list[bytes] = []
        for piece in pieces:  # a line longer than the cap becomes several, whatever the reads
            lines.extend(piece[start:start + self.cap]
                         for start in range(0, max(len(piece), 1), self.cap))
        while len(self.pending) >= self.cap:
            lines.append(self.pending[:self.cap])
            self.pending = self.pending[self.cap:]
        if not self.pending:
            self.pending_since = None
        elif self.pending_since is None or lines:
            self.pending_since = now
        return lines

    def flush(self) -> list[bytes]:
        """The partial line, if any, as a line of its own."""
        lines = [self.pending] if self.pending else []
        self.pending = b""
        self.pending_since = None
        return lines

    def flush_due(self) -> float | None:
        """When the partial line must be flushed (monotonic time), None without one."""
        return None if self.pending_since is None else self.pending_since + PARTIAL_AFTER


def prefixed(prefix: bytes, lines: list[bytes]) -> bytes:
    """`lines` as one block of prefixed, newline-terminated lines (one write, one syscall)."""
    return b"".join(prefix + line + b"\n" for line in lines)


def say(message: str) -> None:
    """Write one message of init's own to stderr, each of its lines prefixed."""
    lines = message.rstrip("\n").split("\n")
    text = "".join(f"{INIT_PREFIX}{line}\n" for line in lines)
    CONTAINER_LOG.write(2, text.encode("utf-8", "replace"))


def quote_argv(argv: tuple[str, ...] | list[str]) -> str:
    """`argv` as a shell-like string for messages (display only: nothing ever runs a shell);
    newlines show as `\\n` so that one message stays one log line."""
    return " ".join(arg if arg and all(char in _SAFE_ARG_CHARS for char in arg)
                    else "'" + arg.replace("'", "'\\''").replace("\n", "\\n") + "'"
                    for arg in argv)


class OutputStream:
    """One pipe from a service (its stdout or its stderr) to init's own fd 1 or 2."""

    def __init__(self, fd: int, prefix: bytes, target: int, owner: object = None,
                 watch: bytes = b"") -> None:
        self.fd = fd
        self.owner = owner   # whose output it is (the supervisor's business)
        self.prefix = prefix
        self.target = target
        self.buffer = LineBuffer()
        self.watch = watch        # a `log` probe's text: `seen` once a line holds it
        self.seen = False

    def fileno(self) -> int:
        return self.fd

    def pump(self, now: float) -> bool:
        """Copy what is readable now; False at end of stream (partial line flushed)."""
        try:
            data = os.read(self.fd, READ_SIZE)
        except BlockingIOError:
            return True
        except OSError:
            data = b""
        if not data:
            self.emit(self.buffer.flush())
            return False
        self.emit(self.buffer.feed(data, now))
        return True

    def emit(self, lines: list[bytes]) -> None:
        """Write `lines` prefixed, in one write."""
        if self.watch and not self.seen:
            self.seen = any(self.watch in line for line in lines)
        if lines:
            CONTAINER_LOG.write(self.target, prefixed(self.prefix, lines))
