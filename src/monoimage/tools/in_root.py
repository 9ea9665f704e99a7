"""Paths of an image root, resolved as the image itself sees them: every write into a root goes
through here.

An image root is a folder on the build host holding another system's files, and its symlinks
are the image's: Debian's `/var/run -> /run`, `/lib -> usr/lib`. The build host following them
would write into its *own* `/run`. `resolve_in_root` walks an image path one component at a
time, reads each symlink itself and resolves its target against the root (an absolute target
starts again at the root, `..` never climbs above it), as `chroot` or openat2's
RESOLVE_IN_ROOT do, so a resolved path is always inside the root. `writable_path` also refuses
what no build may write: the root itself and the kernel's file systems (/proc, /sys, /dev).
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from monoimage.errors import UserError

MAX_LINKS = 40  # as the kernel's ELOOP limit
NOT_WRITABLE = ("/proc", "/sys", "/dev")


class RootPathError(UserError):
    """An image path that cannot be written: it names the root, a kernel file system or a
    symlink loop. The message starts with `where` (a recipe key when there is one)."""


def resolve_in_root(root: Path, path: str, *, follow_last: bool = True,
                    memo: dict[str, str] | None = None) -> str:
    """`path` (an image path) with every symlink resolved inside `root`; an image path.

    `follow_last=False`: a symlink at the last component is left as it is (the caller will
    replace it), only its parents are resolved. `memo` caches answers across calls on one root.
    """
    key = f"{int(follow_last)}{path}"
    if memo is not None and key in memo:
        return memo[key]
    pending = _parts(path)
    current = "/"
    links = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            current = posixpath.dirname(current)  # "/" stays "/": nothing above the root
            continue
        candidate = posixpath.join(current, part)
        host = root / candidate.lstrip("/")
        if (pending or follow_last) and host.is_symlink():
            links += 1
            if links > MAX_LINKS:
                raise RootPathError(f"{path}: too many levels of symbolic links in the image")
            target = os.readlink(host)
            if target.startswith("/"):
                current = "/"
            pending = _parts(target) + pending
            continue
        current = candidate
    if memo is not None:
        memo[key] = current
    return current


def writable_path(root: Path, path: str, where: str, *, follow_last: bool = True) -> Path:
    """The host path where the build writes the image path `path`, resolved inside `root`.

    A path that resolves to the root itself or into /proc, /sys or /dev is a RootPathError
    naming `where`. Parents that do not exist yet are the caller's to make (`make_parents`).
    """
    try:
        resolved = resolve_in_root(root, path, follow_last=follow_last)
    except RootPathError as err:
        raise RootPathError(f"{where}: {err}") from None
    shown = path if resolved == path else f"{path} (that is {resolved} in the image)"
    if resolved == "/":
        raise RootPathError(f"{where}: {shown} is the image's root directory")
    for top in NOT_WRITABLE:
        if resolved == top or resolved.startswith(top + "/"):
            raise RootPathError(f"{where}: {shown} is in {top}, which the kernel provides at "
                                f"run time: nothing the build puts there would be seen")
    return root / resolved.lstrip("/")


def make_parents(root: Path, host_path: Path) -> None:
    """Make the missing parents of `host_path` (a `writable_path` answer) inside `root`.

    The existing part was resolved without a symlink left in it, so what is made is new
    directories under it; one that turns out to be a symlink is refused, never followed.
    """
    missing = []
    parent = host_path.parent
    while parent != root and not os.path.lexists(parent):
        missing.append(parent)
        parent = parent.parent
    for folder in reversed(missing):
        os.mkdir(folder)
    if os.path.islink(host_path.parent) or not host_path.parent.is_dir():
        raise RootPathError(f"{host_path.relative_to(root)}: its folder is not a directory "
                            f"in the image")


def write_text(root: Path, path: str, text: str, mode: int, where: str) -> Path:
    """Write `text` at the image path `path` (resolved inside `root`) with `mode`; the host
    path written. The file is written without following a link at its own name."""
    target = writable_path(root, path, where)
    make_parents(root, target)
    if target.is_dir():
        raise RootPathError(f"{where}: {path} is a directory in the image")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(target, mode)
    return target


def _parts(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]
