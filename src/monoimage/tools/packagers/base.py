"""One small interface over package managers: resolve, install, list what is installed, remove.

A packager turns the merged package set into exact versions and the full dependency closure
(a `Resolution`, from repository metadata, without building), installs exactly that closure into
an empty root directory, and reads back what an image holds from its own package database.
Packagers register themselves by family (`register`), so this module names no concrete one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from monoimage.plan.merge import PackageSet
from monoimage.plan.resolution import InstalledPackage, Resolution
from monoimage.recipe.model import Recipe
from monoimage.recipe.versions import Family


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


_REGISTERED: dict[Family, type[Packager]] = {}


def register(cls: type[Packager]) -> type[Packager]:
    """Class decorator: the packager of its `family` (tools/packagers/__init__.py imports them)."""
    _REGISTERED[cls.family] = cls
    return cls


def packager_for(family: Family) -> Packager:
    """The packager adapter for a packager family."""
    return _REGISTERED[Family(family)]()
