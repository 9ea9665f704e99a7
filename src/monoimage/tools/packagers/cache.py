"""The package cache shared by every build on a host: read by many, written through a lock.

mmdebstrap copies the cache's .deb files into the new root (`sync-in`) and copies the root's
.deb files back out (`sync-out`, a tar pipe). Two builds doing that on one folder at once race
inside tar ("Cannot open: File exists"), and one could copy in a .deb that the other is still
writing. So each install gets a private cache folder on the same file system:

- before: the shared .deb files are hard-linked into it (cheap; tar replaces an existing file
  by unlinking it first, so nothing ever writes through a link into the shared file);
- after a successful install: the private folder's new .deb files are hard-linked back.

Both steps run under an exclusive `flock` on `CACHE_DIR/cache.lock`, and a link is created
whole, so the shared folder never holds a half-written file. Other files of the build that
used to live in the cache folder (apt source lists for mmdebstrap) are private too. dnf's
cache folder is shared as it is: dnf locks its own cache.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from monoimage.plan.resolution import ResolvedPackage
from monoimage.tools.cache_dir import locked

APT_ARCHIVES = Path("apt") / "archives"  # where packagers/apt.py keeps the .deb files
DNF_CACHE = Path("dnf")
LOCK_NAME = "cache.lock"
PRIVATE_FOLDER = "builds"


@contextmanager
def private_cache(cache_dir: Path, key: str, wanted: Collection[str] | None = None
                  ) -> Iterator[Path]:
    """A cache folder for one install, seeded from and merged back into `cache_dir`.

    `wanted`: the file names the install can use (`deb_file_name`), so that mmdebstrap copies
    in and out only those rather than the whole cache; None seeds everything. Merged back
    only when the `with` block succeeds; removed in every case.
    """
    shared = cache_dir / APT_ARCHIVES
    shared.mkdir(parents=True, exist_ok=True)
    (cache_dir / DNF_CACHE).mkdir(parents=True, exist_ok=True)
    private = cache_dir / PRIVATE_FOLDER / key
    shutil.rmtree(private, ignore_errors=True)
    (private / APT_ARCHIVES).mkdir(parents=True)
    (private / DNF_CACHE).symlink_to(cache_dir / DNF_CACHE)
    try:
        with locked(cache_dir / LOCK_NAME):
            link_new_files(shared, private / APT_ARCHIVES, wanted)
        yield private
        with locked(cache_dir / LOCK_NAME):
            link_new_files(private / APT_ARCHIVES, shared)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def deb_file_name(package: ResolvedPackage) -> str:
    """The file name apt gives a downloaded .deb (an epoch's ':' written as '%3a')."""
    return f"{package.name}_{package.version.replace(':', '%3a')}_{package.arch}.deb"


def deb_file_names(packages: Iterable[ResolvedPackage]) -> list[str]:
    """The .deb file names of these packages (what an install of them can use)."""
    return [deb_file_name(p) for p in packages]


def link_new_files(source: Path, dest: Path, wanted: Collection[str] | None = None) -> int:
    """Hard-link each .deb of `source` that `dest` lacks (and `wanted` names, if given).

    Returns how many were linked. Only regular files at the top: apt's partial/ downloads
    never count.
    """
    linked = 0
    have = set(os.listdir(dest))
    names = sorted(os.listdir(source)) if wanted is None else sorted(set(wanted))
    for name in names:
        path = source / name
        if name in have or not name.endswith(".deb") or path.is_symlink() \
                or not path.is_file():
            continue
        try:
            os.link(path, dest / name)
        except FileExistsError:
            continue  # someone without the lock (an older monoimage) made it meanwhile
        linked += 1
    return linked
