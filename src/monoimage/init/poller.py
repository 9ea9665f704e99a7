"""The main loop's wait: the part of `selectors` the init uses, over `select.poll` alone.

`selectors` imports `collections` and `math` (about 0.9 MiB of PID 1's RSS for its whole life,
measured with python3 -I -S); this keeps its interface (register an object with a `fileno()`
or an fd, for EVENT_READ and/or EVENT_WRITE, with a callback (of the object) as `data`; `select(timeout)`
gives (key, events) pairs), so the loop reads the same.
"""

import select

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

EVENT_READ = 1    # the values of selectors.EVENT_READ / EVENT_WRITE
EVENT_WRITE = 2
_READ_MASK = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR | select.POLLNVAL
_WRITE_MASK = select.POLLOUT | select.POLLHUP | select.POLLERR | select.POLLNVAL


class Key:
    """What one registration is: the object, its fd, the events and the callback."""

    __slots__ = ("data", "events", "fd", "fileobj")

    def __init__(self, fileobj: object, fd: int, events: int,
                 data: "Callable[[object], None]") -> None:
        self.fileobj = fileobj
        self.fd = fd
        self.events = events
        self.data = data


def _fd(fileobj: object) -> int:
    if isinstance(fileobj, int):
        return fileobj
    fileno = getattr(fileobj, "fileno", None)
    if fileno is None:
        raise ValueError(f"{fileobj!r} has no fileno()")
    fd = fileno()
    if not isinstance(fd, int) or fd < 0:
        raise ValueError(f"invalid file descriptor {fd!r}")
    return fd


class Poller:
    """`selectors.PollSelector`'s register/unregister/select, nothing more."""

    def __init__(self) -> None:
        self._poll = select.poll()
        self._keys: dict[int, Key] = {}

    def register(self, fileobj: object, events: int, data: "Callable[[object], None]") -> Key:
        """Watch `fileobj` for `events`; KeyError if it is watched already."""
        fd = _fd(fileobj)
        if fd in self._keys:
            raise KeyError(f"{fileobj!r} (fd {fd}) is already registered")
        flags = (select.POLLIN if events & EVENT_READ else 0) | (
            select.POLLOUT if events & EVENT_WRITE else 0)
        self._poll.register(fd, flags)
        key = self._keys[fd] = Key(fileobj, fd, events, data)
        return key

    def unregister(self, fileobj: object) -> Key:
        """Stop watching `fileobj`; KeyError if it is not watched."""
        fd = _fd(fileobj)
        key = self._keys.pop(fd)
        try:
            self._poll.unregister(fd)
        except KeyError:
            pass
        return key

    def select(self, timeout: float | None) -> list[tuple[Key, int]]:
        """The registrations ready within `timeout` seconds (None: no limit), with their
        ready events; an interrupted wait returns what it has (a signal's wakeup byte is in
        its pipe)."""
        milliseconds = None if timeout is None else max(0, -int(-timeout * 1000 // 1))
        try:
            ready = self._poll.poll(milliseconds)
        except InterruptedError:
            return []
        found = []
        for fd, flags in ready:
            key = self._keys.get(fd)
            if key is None:
                continue
            events = (EVENT_READ if flags & _READ_MASK else 0) | (
                EVENT_WRITE if flags & _WRITE_MASK else 0)
            events &= key.events
            if events:
                found.append((key, events))
        return found
