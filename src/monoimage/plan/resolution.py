"""The resolved closure (pure): exact versions of every package an image installs, and why.

A packager (`tools/packagers/`) turns the merged package set into a `Resolution` from
repository metadata, without building; every build of a run takes that one value (the golden
image, the layered comparators, day 2), so they install exactly what `plan --resolve` printed.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from monoimage.errors import UserError
from monoimage.plan.merge import PackageEntry
from monoimage.recipe.version_ranges import pick_best
from monoimage.recipe.versions import Family, compare


@dataclass(frozen=True)
class ResolvedPackage:
    """One package of the closure, pinned to an exact version."""

    name: str
    version: str
    arch: str
    download_size: int  # bytes
    installed_size: int  # bytes
    requested_by: tuple[str, ...] = ()  # requesters that named it; empty for a dependency
    depends: tuple[str, ...] = ()  # closure members it needs directly (names, sorted)
    base: bool = False  # part of the distro's minimal set (apt: minbase)


@dataclass(frozen=True)
class Resolution:
    """Exact versions and the full dependency closure of a merged package set."""

    family: Family
    release: str
    arch: str
    packages: tuple[ResolvedPackage, ...]  # sorted by name

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.packages)

    @property
    def download_size(self) -> int:
        return sum(p.download_size for p in self.packages)

    @property
    def installed_size(self) -> int:
        return sum(p.installed_size for p in self.packages)

    @property
    def requested(self) -> tuple[ResolvedPackage, ...]:
        return tuple(p for p in self.packages if p.requested_by)

    def package(self, name: str) -> ResolvedPackage:
        for pkg in self.packages:
            if pkg.name == name:
                return pkg
        raise KeyError(name)

    def needed_by(self) -> dict[str, tuple[str, ...]]:
        """For every package, the requesters whose requests reach it through dependencies."""
        graph = {p.name: p.depends for p in self.packages}
        reached: dict[str, set[str]] = {p.name: set() for p in self.packages}
        for pkg in self.packages:
            for requester in pkg.requested_by:
                stack, seen = [pkg.name], set()
                while stack:
                    name = stack.pop()
                    if name in seen or name not in graph:
                        continue
                    seen.add(name)
                    reached[name].add(requester)
                    stack.extend(graph[name])
        return {name: tuple(sorted(who)) for name, who in reached.items()}


@dataclass(frozen=True)
class InstalledPackage:
    """One package as the image's own package database records it."""

    name: str
    version: str
    arch: str
    installed_size: int  # bytes


def choose_version(family: Family, name: str, entry: PackageEntry, available: Sequence[str],
                   *, where: str) -> str:
    """The best available version inside the merged range, or one clear error before any build."""
    best = pick_best(family, available, entry.constraints)
    if best is None:
        wants = "; ".join(f"{r.requester} wants {name} {r.constraint}"
                          for r in entry.requirements if r.constraint is not None)
        ordered = sorted(set(available), key=functools.cmp_to_key(partial(compare, family)))
        have = ", ".join(ordered) or "none"
        raise UserError(f"package '{name}': no version in {where} satisfies the constraints "
                        f"({wants}); available: {have}")
    return best
