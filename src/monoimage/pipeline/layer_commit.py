"""Commit a finished image root as a stack of layers (layering: packages), with buildah.

The build installs, strips and completes the root in one working container as for `single`
(the staging root). This module reads who owns what (`ownership`), plans the layers and assigns
every path (`layers`), then builds the stack bottom up: for each layer a working container over
the previous layer's temporary image (the first over scratch), that layer's paths copied in from
the staging root by a tar pipe (owner, mode, xattrs such as file capabilities, and hard links
within the layer kept), and a commit with the reproducible flags, so a layer's digest depends on
its files alone. The last container is returned uncommitted: the build gives it the image
config and commits it under the temporary name, as for `single`.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from monoimage.errors import UserError
from monoimage.plan.layer_plan import LayerPlan, assign_paths, plan_layers
from monoimage.recipe.model import Recipe
from monoimage.tools import buildah
from monoimage.tools.packagers.base import InstalledPackage, Resolution, tail
from monoimage.tools.packagers.ownership import owned_bytes, read_ownership

_TAR_OPTIONS = ("--xattrs", "--xattrs-include=*", "--numeric-owner")


@dataclass(frozen=True)
class LayerFiles:
    """One planned layer with the paths it carries (ancestor directories included)."""

    name: str
    packages: tuple[str, ...]
    paths: tuple[str, ...]
    bytes: int  # regular files only


def split_root(root: Path, recipe: Recipe, resolution: Resolution,
               installed: Sequence[InstalledPackage], is_init: Callable[[str], bool]
               ) -> tuple[LayerPlan, tuple[LayerFiles, ...]]:
    """The layer plan for the staged `root` and each layer's paths; empty layers left out."""
    owners = read_ownership(root, recipe.distro.packager)
    present = {p.name for p in installed}
    packages = [p for p in resolution.packages if p.name in present]
    plan = plan_layers(recipe.layering, packages, sizes=owned_bytes(root, owners),
                       needed_by=resolution.needed_by())
    assigned = assign_paths(plan, owners, root_entries(root), is_init)
    layers = []
    for layer, paths in zip(plan.layers, assigned, strict=True):
        if paths:
            layers.append(LayerFiles(layer.name, layer.packages, paths,
                                     _regular_bytes(root, paths)))
    return plan, tuple(layers)


def root_entries(root: Path) -> list[str]:
    """Every entry under `root` as "/path" (directories too; symlinks never followed)."""
    found = []
    for dirpath, dirs, names in os.walk(root):
        relative = "/" + os.path.relpath(dirpath, root) if dirpath != str(root) else ""
        found += [f"{relative}/{name}" for name in (*dirs, *names)]
    return found


def commit_layers(staging: Path, layers: Sequence[LayerFiles], *, container: str, image: str,
                  timestamp: int, image_format: str, containers: list[str],
                  images: list[str]) -> str:
    """Build `layers` bottom up; returns the top layer's working container, uncommitted.

    Containers are named `container-NN`, the temporary images `image-NN`.

    Every container and image made is appended to `containers` / `images` at once, so the
    caller's cleanup finds them on any failure; finished containers are removed on the way.
    """
    parent = "scratch"
    for index, layer in enumerate(layers):
        working = buildah.from_image(f"{container}-{index:02d}", parent)
        containers.append(working)
        if index:
            buildah.forget_base(working)  # the temporary parent's name would show
        copy_paths(staging, buildah.mount(working), layer.paths)
        buildah.umount(working)
        if index == len(layers) - 1:
            return working
        parent = f"{image}-{index:02d}"
        images.append(parent)
        buildah.commit(working, parent, timestamp=timestamp, image_format=image_format,
                       squash=False)
        buildah.remove_container(working)
        containers.remove(working)
    raise ValueError("no layers to commit")


def copy_paths(source: Path, target: Path, paths: Sequence[str]) -> None:
    """Copy exactly `paths` (no recursion) from `source` to `target` with a tar pipe."""
    with tempfile.TemporaryDirectory(prefix="monoimage-layer-") as work:
        listing = Path(work) / "paths"
        listing.write_bytes(b"".join(p.lstrip("/").encode(errors="surrogateescape") + b"\0"
                                     for p in paths))
        errors = [Path(work) / "create.err", Path(work) / "extract.err"]
        with errors[0].open("wb") as create_err, errors[1].open("wb") as extract_err:
            create = subprocess.Popen(
                ["tar", "--create", "--format=posix", "--file", "-", *_TAR_OPTIONS,
                 "--directory", str(source),  # positional: before the names it applies to
                 "--no-recursion", "--null", "--verbatim-files-from",
                 f"--files-from={listing}"],
                stdout=subprocess.PIPE, stderr=create_err, stdin=subprocess.DEVNULL)
            assert create.stdout is not None
            extract = subprocess.Popen(
                ["tar", "--extract", "--same-owner", "--preserve-permissions", *_TAR_OPTIONS,
                 "--directory", str(target), "--file", "-"],
                stdin=create.stdout, stdout=subprocess.DEVNULL, stderr=extract_err)
            create.stdout.close()  # extract holds the pipe now: a failure ends both
            extract.wait()
            create.wait()
        for proc, err, what in ((create, errors[0], "reading the staged root"),
                                (extract, errors[1], "writing the layer")):
            if proc.returncode != 0:
                raise UserError(f"tar failed {what} (exit {proc.returncode}):\n"
                                + tail(err.read_text(errors="replace"), 10))


def _regular_bytes(root: Path, paths: Sequence[str]) -> int:
    total = 0
    for path in paths:
        info = os.lstat(root / path.lstrip("/"))
        if stat.S_ISREG(info.st_mode):
            total += info.st_size
    return total
