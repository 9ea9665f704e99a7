"""One small interface over package managers: resolve, install, list what is installed.

A packager turns the merged package set into exact versions and the full dependency closure
(from repository metadata, without building), installs exactly that closure into an empty
root directory, and reads back what an image holds from its own package database.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

from monoimage.errors import MissingToolError, UserError
from monoimage.plan.merge import PackageEntry, PackageSet
from monoimage.recipe.model import Recipe
from monoimage.recipe.versions import Family, compare, pick_best

DEPENDENCY = "dependency"


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


class Packager(Protocol):
    family: Family

    def resolve(self, recipe: Recipe, packages: PackageSet, *, cache_dir: Path) -> Resolution:
        """Pin exact versions and compute the full closure from repository metadata."""
        ...

    def install(self, recipe: Recipe, resolution: Resolution, root: Path, *, cache_dir: Path,
                source_date_epoch: int) -> None:
        """Install exactly the resolution's closure, in one transaction, into empty `root`."""
        ...

    def list_installed(self, root: Path) -> tuple[InstalledPackage, ...]:
        """What the package database under `root` says is installed, sorted by name."""
        ...

    def remove(self, root: Path, names: tuple[str, ...]) -> None:
        """Remove build-only packages (the recipe's strip.packages) from an installed root."""
        ...


def packager_for(family: Family) -> Packager:
    """The packager adapter for a packager family."""
    from monoimage.tools.packagers.apt import AptPackager
    from monoimage.tools.packagers.dnf import DnfPackager

    return AptPackager() if family is Family.APT else DnfPackager()


class ToolFailed(UserError):
    """A packager tool exited non-zero: its own last lines are the message."""


def run_tool(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
             package: str | None = None, what: str = "") -> str:
    """Run a packager tool, return its stdout; on failure raise ToolFailed with its stderr.

    On Ctrl-C the tool gets SIGTERM and time to clean up (mmdebstrap unmounts /proc and /sys
    from the chroot on SIGTERM; a SIGKILL would leave them mounted), then the interrupt goes on.
    """
    full_env = {**os.environ, **(env or {})}
    try:
        proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=full_env, text=True,
                                start_new_session=True)
    except FileNotFoundError:
        raise MissingToolError(argv[0], package or argv[0]) from None
    try:
        out, err = proc.communicate()
    except BaseException:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    if proc.returncode != 0:
        raise ToolFailed(f"{what or argv[0]} failed (exit {proc.returncode}):\n"
                         + tail(err or out, 15))
    return out


def tail(text: str, lines: int) -> str:
    """The last `lines` non-empty lines of a tool's output, indented for a message."""
    kept = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(f"  {line}" for line in kept)


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
