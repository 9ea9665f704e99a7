"""The runner never loses a Ctrl-C or SIGTERM that arrives while it starts a program.

sh forks in the calling thread; a KeyboardInterrupt raised by the SIGTERM handler inside the
fork's callbacks used to be dropped by Python ("Exception ignored in ..."), and a `footprint`
went on to exit 0. Here a SIGTERM lands at every moment of the start, 200 times.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from monoimage.tools.run import run

pytestmark = pytest.mark.tools


def _raise(*_: object) -> None:
    raise KeyboardInterrupt


@pytest.fixture
def sigterm_raises() -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, _raise)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_a_sigterm_while_a_program_starts_is_never_lost(sigterm_raises: None) -> None:
    marker = f"0.0{os.getpid() % 10}1"  # a sleep of this test's own, to look for strays
    interrupted = 0
    attempts = 200
    for i in range(attempts):
        timer = threading.Timer(0.0005 * (i % 40), os.kill, (os.getpid(), signal.SIGTERM))
        try:
            timer.start()
            run(["sleep", marker])
            time.sleep(0.05)
        except KeyboardInterrupt:
            interrupted += 1
        timer.join()
    assert interrupted == attempts
    strays = subprocess.run(["pgrep", "-x", "-f", f"sleep {marker}"], check=False,
                            capture_output=True,
                            text=True).stdout
    assert strays == ""
