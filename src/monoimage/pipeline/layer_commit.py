"""Commit a finished image root as a stack of layers (layering: packages), with buildah.

The build installs, strips and completes the root in one working container as for `single`
(the staging root). This module reads who owns what (`ownership`), plans the layers and assigns
every path (`plan/layer_plan.py`), then builds the stack bottom up: for each layer a working container over
the previous layer's temporary image (the first over scratch), that layer's paths copied in from
the staging root by a tar pipe (`tools/tar.py`: owner, mode, xattrs such as file capabilities, and hard links
within the layer kept), and a commit with the reproducible flags, so a layer's digest depends on
its files alone. The last container is returned uncommitted: the build gives it the image
config and commits it under the temporary name, as for `single`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from monoimage.pipeline.workspace import Workspace
from monoimage.plan.layer_plan import LayerPlan, assign_paths, plan_layers
from monoimage.plan.resolution import InstalledPackage, Resolution
from monoimage.recipe.model import Recipe
from monoimage.tools import buildah
from monoimage.tools.packagers.ownership import owned_bytes, read_ownership
from monoimage.tools.tar import copy_paths


@dataclass(frozen=True)
class LayerFiles:
    """One planned layer with the paths it carries (ancestor directories included)."""

    name: str
    packages: tuple[str, ...]
    paths: tuple[str, ...]
    bytes: int  # regular files only


def split_root(root: Path, recipe: Recipe, resolution: Resolution,
               installed: Sequence[InstalledPackage], is_init: Callable[[str], bool], *,
               previous: LayerPlan | None = None) -> tuple[LayerPlan, tuple[LayerFiles, ...]]:
    """The layer plan for the staged `root` (keeping `previous`) and each layer's paths;
    empty layers left out."""
    owners = read_ownership(root, recipe.distro.packager)
    plan = _plan(root, owners, recipe, resolution, installed, previous)
    assigned = assign_paths(plan, owners, root_entries(root), is_init)
    layers = []
    for layer, paths in zip(plan.layers, assigned, strict=True):
        if paths:
            layers.append(LayerFiles(layer.name, layer.packages, paths,
                                     _regular_bytes(root, paths)))
    return plan, tuple(layers)


def plan_root(root: Path, recipe: Recipe, resolution: Resolution,
              installed: Sequence[InstalledPackage], *, previous: LayerPlan | None = None
              ) -> LayerPlan:
    """The layer plan for the staged `root` alone (what a delta image records)."""
    owners = read_ownership(root, recipe.distro.packager)
    return _plan(root, owners, recipe, resolution, installed, previous)


def _plan(root: Path, owners: Mapping[str, tuple[str, ...]], recipe: Recipe,
          resolution: Resolution, installed: Sequence[InstalledPackage],
          previous: LayerPlan | None) -> LayerPlan:
    present = {p.name for p in installed}
    packages = [p for p in resolution.packages if p.name in present]
    return plan_layers(recipe.layering, packages, sizes=owned_bytes(root, owners),
                       needed_by=resolution.needed_by(), previous=previous)


def root_entries(root: Path) -> list[str]:
    """Every entry under `root` as "/path" (directories too; symlinks never followed)."""
    found = []
    for dirpath, dirs, names in os.walk(root):
        relative = "/" + os.path.relpath(dirpath, root) if dirpath != str(root) else ""
        found += [f"{relative}/{name}" for name in (*dirs, *names)]
    return found


def commit_layers(staging: Path, layers: Sequence[LayerFiles], work: Workspace, *,
                  timestamp: int, image_format: str) -> str:
    """Build `layers` bottom up in `work`; returns the top layer's working container,
    uncommitted. Finished containers are removed on the way; the workspace removes the rest
    (and every temporary image) whatever happens."""
    parent = "scratch"
    for index, layer in enumerate(layers):
        suffix = f"-layer-{index:02d}"
        working = work.container(parent, suffix=suffix)
        if index:
            buildah.forget_base(working)  # the temporary parent's name would show
        copy_paths(staging, buildah.mount(working), layer.paths)
        buildah.umount(working)
        if index == len(layers) - 1:
            return working
        parent = work.commit(working, timestamp=timestamp, image_format=image_format,
                             suffix=suffix)
        work.drop(working)
    raise ValueError("no layers to commit")


def _regular_bytes(root: Path, paths: Sequence[str]) -> int:
    total = 0
    for path in paths:
        info = os.lstat(root / path.lstrip("/"))
        if stat.S_ISREG(info.st_mode):
            total += info.st_size
    return total
