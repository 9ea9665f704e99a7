"""Run a program of an image root inside it (`chroot`), with only the environment given."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from monoimage.tools.run import Completed, run


def run_in_root(root: Path, argv: Sequence[str], *, env: Mapping[str, str]) -> Completed:
    """`chroot ROOT ARGV…` with exactly `env` (not this process's): the image's own program."""
    return run(["chroot", str(root), *argv], env=dict(env), clean_env=True, check=False)
