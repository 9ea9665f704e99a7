"""Fixtures for monoimage-init's tests: `start_init` runs a real init as PID 1."""

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from init_harness import InitRun

NAMESPACES = os.geteuid() == 0 and shutil.which("unshare") is not None


@pytest.fixture
def start_init(tmp_path: Path) -> Iterator[Callable[..., InitRun]]:
    """Start monoimage-init on a table under tmp_path; every run is killed at teardown."""
    if not NAMESPACES:
        pytest.skip("needs root and unshare(1) to make a PID namespace with init as PID 1")
    runs: list[InitRun] = []

    def start(table: dict[str, Any], **options: Any) -> InitRun:
        run = InitRun(tmp_path, table, **options)
        runs.append(run)
        return run.start()

    yield start
    for run in runs:
        run.kill()
