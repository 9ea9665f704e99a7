"""Where monoimage keeps its state between runs on the build host: one folder, its parts named.

`~/.cache/monoimage` (or `$XDG_CACHE_HOME/monoimage`): the package caches (`apt/`, `dnf/`, see
`tools/packagers/cache.py`), the private APT roots (`apt/root-*`), the OCI exports and layer
file lists of `footprint` (`oci/`, see `tools/skopeo.py`).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def default_cache_dir() -> Path:
    """The cache folder of this user: `$XDG_CACHE_HOME/monoimage`, else `~/.cache/monoimage`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "monoimage"


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created if needed) for the `with` block: two
    monoimage runs sharing a cache take turns on what they would otherwise both write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
