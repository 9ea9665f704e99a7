"""The container log (init's fd 1 and 2), written without ever blocking the supervisor loop.

A reader of the log that stalls (a stopped `podman logs -f`, a full journald, a pipe nobody
reads) must not stop init from reaping, restarting or stopping. So writes are non-blocking:
what the reader cannot take yet waits in a bounded buffer per fd (`BUFFER_CAP`), which the main
loop flushes whenever the fd turns writable. A write that does not fit is dropped whole (lines
are never cut) and counted; init says how many lines it lost on stderr (one notice waits at a
time, so it reaches the reader when it is back), the total at exit, and `status` reports the
total as `log_dropped_lines`.

A pipe or a terminal is reopened through /proc/self/fd with O_NONBLOCK, so the flag stays on
init's own open file description (a shell sharing the terminal never sees it); other kinds (a
socket) get O_NONBLOCK for the time init runs, then their mode back. Regular files never block.
"""

import os
import select
import stat
import time

BUFFER_CAP = 256 * 1024
FINISH_TIMEOUT = 1.0
NOTICE_FD = 2


class LogWriter:
    """One output fd: non-blocking writes, a bounded buffer, a count of dropped lines."""

    def __init__(self, fd: int, cap: int = BUFFER_CAP) -> None:
        self.cap = cap
        self.pending = bytearray()
        self.dropped = 0          # lines dropped since the last notice
        self.dropped_total = 0
        self.fd, self._restore_blocking = _non_blocking(fd)

    def fileno(self) -> int:
        return self.fd

    def write(self, data: bytes) -> None:
        """Queue `data` (whole lines) and write what the reader takes now; drop it whole if
        the buffer cannot hold it."""
        if self.pending and len(self.pending) + len(data) > self.cap:
            lines = max(1, data.count(b"\n"))
            self.dropped += lines
            self.dropped_total += lines
            return
        self.pending += data
        self.flush()

    def flush(self) -> None:
        """Write as much of the buffer as the fd takes without blocking."""
        while self.pending:
            try:
                written = os.write(self.fd, self.pending)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:        # the reader is gone (EPIPE) or the disk is full: drop
                lines = max(1, self.pending.count(b"\n"))
                self.dropped += lines
                self.dropped_total += lines
                self.pending.clear()
                return
            del self.pending[:written]

    def close(self) -> None:
        """Give the fd its blocking mode back (a reopened pipe end is closed instead)."""
        if self._restore_blocking is not None:
            self._restore_blocking()
            self._restore_blocking = None


def _non_blocking(fd: int) -> tuple[int, "RestoreBlocking | None"]:
    """An fd for non-blocking writes to what `fd` is, and how to undo it."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return fd, None
    if stat.S_ISREG(mode):
        return fd, None
    if stat.S_ISFIFO(mode) or os.isatty(fd):
        try:
            own = os.open(f"/proc/self/fd/{fd}",
                          os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
        except OSError:
            pass  # no /proc, or no reader left: fall through to the shared description
        else:
            return own, RestoreBlocking(own, close=True)
    try:
        if not os.get_blocking(fd):
            return fd, None
        os.set_blocking(fd, False)
    except OSError:
        return fd, None
    return fd, RestoreBlocking(fd, close=False)


class RestoreBlocking:
    """Undoes `_non_blocking`: closes a reopened pipe end, or sets the fd blocking again."""

    def __init__(self, fd: int, close: bool) -> None:
        self.fd = fd
        self.close = close

    def __call__(self) -> None:
        try:
            if self.close:
                os.close(self.fd)
            else:
                os.set_blocking(self.fd, True)
        except OSError:
            pass


class ContainerLog:
    """Init's stdout and stderr as LogWriters, opened on first use."""

    def __init__(self) -> None:
        self.writers: dict[int, LogWriter] = {}

    def writer(self, fd: int) -> LogWriter:
        """The writer of fd 1 or 2."""
        found = self.writers.get(fd)
        if found is None:
            found = self.writers[fd] = LogWriter(fd)
        return found

    def write(self, fd: int, data: bytes) -> None:
        """Queue `data` for fd 1 or 2; never blocks."""
        self.writer(fd).write(data)
        self._notice_drops()

    def flush(self, writer: object) -> None:
        """Write what `writer` takes now (the loop calls this when its fd turns writable)."""
        assert isinstance(writer, LogWriter)
        writer.flush()
        self._notice_drops()

    def waiting(self) -> list[LogWriter]:
        """The writers holding data the reader has not taken yet."""
        return [writer for writer in self.writers.values() if writer.pending]

    @property
    def dropped_total(self) -> int:
        """Lines dropped since init started, on both fds."""
        return sum(writer.dropped_total for writer in self.writers.values())

    def summary(self) -> int:
        """Lines dropped in all, for init's last lines; the notices still owed are part of
        it, so none comes after."""
        for writer in self.writers.values():
            writer.dropped = 0
        return self.dropped_total

    def _notice_drops(self) -> None:
        # On stderr, and only when nothing of it waits: a stalled reader owes one notice, not
        # one per dropped block; the next counts from there.
        notice = self.writer(NOTICE_FD)
        if notice.pending:
            return
        lost = sum(writer.dropped for writer in self.writers.values())
        if not lost:
            return
        for writer in self.writers.values():
            writer.dropped = 0
        notice.write(f"monoimage-init | the log's reader fell behind: {lost} line(s) of "
                     f"output dropped\n".encode())

    def finish(self, timeout: float = FINISH_TIMEOUT) -> None:
        """At exit: flush for at most `timeout` seconds (a stalled reader loses the rest),
        then give every fd its blocking mode back. Says nothing more (see `summary`)."""
        deadline = time.monotonic() + timeout
        while True:
            waiting = self.waiting()
            left = deadline - time.monotonic()
            if not waiting or left <= 0:
                break
            try:
                _, writable, _ = select.select([], waiting, [], left)
            except (OSError, ValueError):
                break
            for writer in writable:
                writer.flush()   # no more notices: the summary was init's last word
        for writer in self.writers.values():
            writer.close()
        self.writers = {}


CONTAINER_LOG = ContainerLog()
