"""How a long command runs in a terminal: its stages shown as they end, and Ctrl-C or SIGTERM
ending it the same way (cleaned up, one line, exit code 130)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import click
from rich.console import Console

from monoimage.pipeline.stages import Progress, StageEvent

INTERRUPTED = 130


@contextmanager
def interruptible(message: str) -> Iterator[None]:
    """The block runs with SIGTERM raised as KeyboardInterrupt (the stages clean up on the way
    out); an interrupt prints `monoimage: MESSAGE` and exits 130."""
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    except KeyboardInterrupt:
        click.echo(f"monoimage: {message}", err=True)
        sys.exit(INTERRUPTED)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C


def stage_reporter(console: Console, status: Any, width: int = 9) -> Progress:
    """A progress callback: the running stage in the status line, a tick per finished one."""
    def report(event: StageEvent) -> None:
        if event.state == "start":
            status.update(f"[bold]{event.stage}[/] …")
        else:
            detail = f"  {event.detail}" if event.detail else ""
            console.print(f"[green]✓[/] {event.stage:<{width}} {event.elapsed:6.1f}s{detail}")
    return report
