"""Fixtures for monoimage-init's tests: `start_init` runs a real init as PID 1."""

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from init_harness import InitRun


def missing_for_namespaces() -> str | None:
    """Why init cannot run as PID 1 of its own PID namespace here, None when it can."""
    if os.geteuid() != 0:
        return f"not root (euid {os.geteuid()}): unshare --pid needs CAP_SYS_ADMIN"
    if shutil.which("unshare") is None:
        return "unshare(1) (util-linux) is not on PATH"
    return None


@pytest.fixture
def start_init(tmp_path: Path) -> Iterator[Callable[..., InitRun]]:
    """Start monoimage-init on a table under tmp_path; every run is killed at teardown."""
    missing = missing_for_namespaces()
    if missing is not None:
        pytest.skip(f"init as PID 1 of a PID namespace: {missing}")
    runs: list[InitRun] = []

    def start(table: dict[str, Any], directory: Path | None = None,
              **options: Any) -> InitRun:
        run = InitRun(directory or tmp_path, table, **options)
        runs.append(run)
        return run.start()

    yield start
    for run in runs:
        run.kill()
