"""Strip: what the runtime does not need, removed from the root and recorded with byte counts.

The rules are data (`plan/strip_rules.py`); this module is the part that touches the files.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from monoimage.plan.sbom import StripRecord
from monoimage.plan.strip_rules import StripRule


def apply_strip(root: Path, rules: tuple[StripRule, ...]) -> tuple[StripRecord, ...]:
    """Remove what each rule matches under `root`; one record per rule, in rule order."""
    records = []
    for rule in rules:
        files = size = 0
        for path in sorted({p for g in rule.globs for p in root.glob(g)}):
            if _through_symlink(root, path) or not os.path.lexists(path):
                continue  # a symlink followed from the host could point anywhere on the host
            if _kept(root, path, rule.keep):
                continue
            if path.is_dir() and not path.is_symlink():
                for sub in _files_under(path):
                    if not _kept(root, sub, rule.keep):
                        files, size = files + 1, size + sub.lstat().st_size
                        sub.unlink()
                if not rule.files_only and not any(path.iterdir()):
                    path.rmdir()
                elif not rule.files_only:
                    _remove_empty_dirs(path, root, rule.keep)
            else:
                files, size = files + 1, size + path.lstat().st_size
                path.unlink()
        records.append(StripRecord(rule.what, files, 0 if rule.volatile else size))
    return tuple(records)


def remove_build_cache(root: Path, cache_dir: Path) -> StripRecord | None:
    """Remove what an installer left under the build host's cache path inside the image.

    `dnf --installroot` writes expired_repos.json into ROOT/CACHE_DIR/dnf: a host path that
    would also make the image differ with the cache location. Emptied parents go too, but never
    a top-level directory of the image (/root stays). None when there was nothing.
    """
    relative = str(cache_dir.resolve()).strip("/")
    path = root / relative
    if not relative or _through_symlink(root, path) or not path.is_dir() \
            or path.is_symlink():
        return None
    files = size = 0
    for sub in _files_under(path):
        files, size = files + 1, size + sub.lstat().st_size
    shutil.rmtree(path)
    parent = path.parent
    while parent.parent != root and parent != root and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent
    return StripRecord("build cache", files, size)


def _through_symlink(root: Path, path: Path) -> bool:
    """Whether `path` is reached through a symlinked directory below `root`."""
    current = root
    for part in path.relative_to(root).parts[:-1]:
        current = current / part
        if current.is_symlink():
            return True
    return False


def _kept(root: Path, path: Path, keep: tuple[str, ...]) -> bool:
    relative = path.relative_to(root)
    return any(relative.match(k) for k in keep)


def _files_under(folder: Path) -> Iterator[Path]:
    for dirpath, _dirs, names in os.walk(folder, followlinks=False):
        for name in names:
            yield Path(dirpath, name)
        for name in _dirs:
            if Path(dirpath, name).is_symlink():
                yield Path(dirpath, name)


def _remove_empty_dirs(folder: Path, root: Path, keep: tuple[str, ...]) -> None:
    if not any(_kept(root, p, keep) for p in folder.rglob("*")):
        shutil.rmtree(folder)
