"""Named stages of a run, timed and told to a progress callback as they start and end."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class StageEvent:
    stage: str
    state: str  # "start" | "done"
    detail: str = ""
    elapsed: float = 0.0


Progress = Callable[[StageEvent], None]


def ignore(event: StageEvent) -> None:
    """A progress callback that shows nothing."""


class Stages:
    """Times named stages and reports their start and end to a progress callback."""

    def __init__(self, progress: Progress | None = None) -> None:
        self.progress = progress or ignore
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[Callable[[str], None]]:
        """The `with` block is stage `name`; the value it gives adds a detail to its end."""
        details: list[str] = []
        start = time.monotonic()
        self.progress(StageEvent(name, "start"))
        yield details.append
        self.seconds[name] = round(time.monotonic() - start, 3)
        self.progress(StageEvent(name, "done", "; ".join(details), self.seconds[name]))
