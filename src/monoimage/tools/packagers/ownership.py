"""Which package owns which path of an image root, from the image's own package database.

apt: `/var/lib/dpkg/info/NAME.list` and `NAME:ARCH.list`, with dpkg-divert diversions applied
(`/var/lib/dpkg/diversions`: a file another package ships at a diverted path is installed at
the diversion's target). dnf: `rpm --root ROOT --dbpath … -qa` over every file name.

Package databases list paths as packages ship them; on a merged-/usr system `/bin/sh` is really
`/usr/bin/sh`, so each path's parent is resolved through the root's own symlinks (never the
host's). Paths that are not in the root (removed by strip, rpm %ghost files) are left out.

Two kinds of files no package lists still belong with one package, because they change exactly
when it does, and are given to it (`derived_ownership`): dpkg's own records of a package
(`/var/lib/dpkg/info/NAME.list`, `.md5sums`, maintainer scripts…; the shared `status` file is
no package's), and Python bytecode compiled at install time next to a package's `.py` file
(`__pycache__/NAME.cpython-311.pyc`, as Debian's py3compile writes it).
"""

from __future__ import annotations

import glob
import os
import posixpath
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from monoimage.recipe.versions import Family
from monoimage.tools.in_root import resolve_in_root
from monoimage.tools.packagers.dnf import DBPATH
from monoimage.tools.run import run

DPKG_INFO = "var/lib/dpkg/info"
DPKG_DIVERSIONS = "var/lib/dpkg/diversions"

Ownership = dict[str, tuple[str, ...]]  # "/usr/bin/x" → owning package names, sorted


@dataclass(frozen=True)
class Diversion:
    """dpkg-divert: files at `path` from any package but `by` go to `to` (`by` ":" = local)."""

    path: str
    to: str
    by: str


def read_ownership(root: Path, family: Family) -> Ownership:
    """path → owners for every path of `root` that some installed package owns."""
    if family is Family.APT:
        listed = dpkg_listed(root)
        diversions = parse_diversions(_read(root / DPKG_DIVERSIONS))
        pairs = apply_diversions(listed, diversions)
    else:
        pairs = rpm_listed(root)
    owners = canonical_ownership(root, pairs)
    return derived_ownership(root, owners, {package for package, _ in pairs})


def derived_ownership(root: Path, owners: Ownership, packages: set[str]) -> Ownership:
    """`owners` plus dpkg's per-package records and install-time bytecode (module docstring)."""
    derived = dict(owners)
    info = root / DPKG_INFO
    if info.is_dir():
        for name in sorted(os.listdir(info)):
            package = name.rpartition(".")[0].partition(":")[0]
            path = f"/{DPKG_INFO}/{name}"
            if package in packages and path not in derived:
                derived[path] = (package,)
    for path, names in owners.items():
        folder, _, file_name = path.rpartition("/")
        if not file_name.endswith(".py"):
            continue
        cache = root / folder.lstrip("/") / "__pycache__"
        if not cache.is_dir() or cache.is_symlink():
            continue
        for compiled in sorted(cache.glob(f"{glob.escape(file_name[:-3])}.*.pyc")):
            compiled_path = f"{folder}/__pycache__/{compiled.name}"
            if compiled_path not in owners and not compiled.is_symlink():
                _add(derived, compiled_path, names)
                _add(derived, f"{folder}/__pycache__", names)
    return dict(sorted(derived.items()))


def _add(owners: dict[str, tuple[str, ...]], path: str, names: Iterable[str]) -> None:
    owners[path] = tuple(sorted({*owners.get(path, ()), *names}))


def dpkg_listed(root: Path) -> list[tuple[str, str]]:
    """(package, path) from every `*.list` of the dpkg database under `root`."""
    pairs = []
    for path in sorted((root / DPKG_INFO).glob("*.list")):
        package = path.stem.partition(":")[0]
        pairs += [(package, line) for line in path.read_text(errors="surrogateescape")
                  .splitlines() if line.startswith("/")]
    return pairs


def rpm_listed(root: Path) -> list[tuple[str, str]]:
    out = run(["rpm", "--root", str(root), "--dbpath", DBPATH, "-qa", "--qf",
               "[%{NAME}\t%{FILENAMES}\n]"], what="rpm -qa (file lists)").stdout
    return parse_rpm_files(out)


def parse_rpm_files(text: str) -> list[tuple[str, str]]:
    """`NAME<TAB>PATH` lines (one per file) as (package, path); packages without files skipped."""
    pairs = []
    for line in text.splitlines():
        name, _, path = line.partition("\t")
        if name and path.startswith("/") and name != "gpg-pubkey":
            pairs.append((name, path))
    return pairs


def parse_diversions(text: str) -> tuple[Diversion, ...]:
    """/var/lib/dpkg/diversions: three lines per diversion (path, diverted to, by package)."""
    lines = text.splitlines()
    return tuple(Diversion(lines[i], lines[i + 1], lines[i + 2])
                 for i in range(0, len(lines) - 2, 3))


def apply_diversions(pairs: Iterable[tuple[str, str]], diversions: Iterable[Diversion]
                     ) -> list[tuple[str, str]]:
    """Where each listed file really is: diverted unless its package made the diversion."""
    by_path = {d.path: d for d in diversions}
    moved = []
    for package, path in pairs:
        diversion = by_path.get(path)
        if diversion is not None and diversion.by != package:
            path = diversion.to
        moved.append((package, path))
    return moved


def canonical_ownership(root: Path, pairs: Iterable[tuple[str, str]]) -> Ownership:
    """Group (package, path) by the path as it is in `root`; absent paths left out."""
    resolved: dict[str, str] = {}
    owners: dict[str, set[str]] = {}
    for package, path in pairs:
        normal = posixpath.normpath(path)
        if normal in ("/", "/."):
            continue
        parent, _, name = normal.rpartition("/")
        real = f"{resolve_dir(root, parent or '/', resolved).rstrip('/')}/{name}"
        if os.path.lexists(root / real.lstrip("/")):
            owners.setdefault(real, set()).add(package)
    return {path: tuple(sorted(names)) for path, names in sorted(owners.items())}


def resolve_dir(root: Path, path: str, memo: dict[str, str] | None = None) -> str:
    """`path` (a directory, absolute inside `root`) with every symlink resolved inside `root`
    (`tools/in_root.py`, the one resolver of image paths)."""
    return resolve_in_root(root, path, memo=memo)


def owned_bytes(root: Path, ownership: Mapping[str, tuple[str, ...]]) -> dict[str, int]:
    """Bytes of the regular files each package owns in `root` (a shared file counts for each)."""
    sizes: dict[str, int] = {}
    for path, names in ownership.items():
        info = os.lstat(root / path.lstrip("/"))
        if stat.S_ISREG(info.st_mode):
            for name in names:
                sizes[name] = sizes.get(name, 0) + info.st_size
    return sizes


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="surrogateescape")
    except FileNotFoundError:
        return ""
