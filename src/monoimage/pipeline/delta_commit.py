"""Commit a delta update: the previous image's layers as they are, plus one layer of what changed.

The build stages the new root as always; this module opens a working container over the
previous image, reads both roots (`read_tree`), diffs them (`plan/delta.py`), removes from the
container what is gone (overlay turns each removal into a whiteout) and copies in from the
staged root what is new or changed (`tools/tar.py`). Committing that container without
squashing gives exactly one new layer over the previous image's own blobs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from monoimage.pipeline.previous_image import PreviousImage
from monoimage.pipeline.workspace import Workspace
from monoimage.plan.delta import Entry, TreeDiff, diff_trees
from monoimage.tools import buildah
from monoimage.tools.tar import copy_paths

# What the overlay or the host's security module adds to a mounted root; never in a layer.
_SKIPPED_XATTRS = ("trusted.", "security.selinux")


@dataclass(frozen=True)
class OpenedDelta:
    """A working container over the previous image, and the diff from its root to the new."""

    container: str
    diff: TreeDiff


def open_delta(staging: Path, previous: PreviousImage, work: Workspace) -> OpenedDelta:
    """Mount the previous image in a new working container and diff its root with `staging`."""
    container = work.container(previous.reference, suffix="-delta")
    buildah.forget_base(container)
    lower = buildah.mount(container)
    return OpenedDelta(container, diff_trees(read_tree(lower), read_tree(staging)))


def apply_delta(staging: Path, opened: OpenedDelta) -> str:
    """Remove and copy what the diff says into the container; returns it, unmounted."""
    lower = buildah.mount(opened.container)
    for path in opened.diff.removed:
        target = lower / path.lstrip("/")
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()
    if opened.diff.changed:
        copy_paths(staging, lower, opened.diff.changed)
    buildah.umount(opened.container)
    return opened.container


def read_tree(root: Path) -> dict[str, Entry]:
    """Every path under `root` ("/usr/bin/x") with what a layer records of it."""
    found: dict[str, Entry] = {}
    for dirpath, dirs, names in os.walk(root):
        relative = "/" + os.path.relpath(dirpath, root) if dirpath != str(root) else ""
        for name in (*dirs, *names):
            found[f"{relative}/{name}"] = _entry(os.path.join(dirpath, name))
    return found


def _entry(path: str) -> Entry:
    info = os.lstat(path)
    mode = info.st_mode
    xattrs = tuple(sorted((key, os.getxattr(path, key, follow_symlinks=False))
                          for key in os.listxattr(path, follow_symlinks=False)
                          if not key.startswith(_SKIPPED_XATTRS)))
    kind, size, content = "other", 0, f"{stat.S_IFMT(mode)}:{info.st_rdev}"
    if stat.S_ISREG(mode):
        kind, size, content = "file", info.st_size, _sha256(path)
    elif stat.S_ISDIR(mode):
        kind, content = "dir", ""
    elif stat.S_ISLNK(mode):
        kind, content = "link", os.readlink(path)
    return Entry(kind, stat.S_IMODE(mode), info.st_uid, info.st_gid, size, content, xattrs)


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
