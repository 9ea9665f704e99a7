"""The rootfs and strip stages: a resolution installed into an empty root, checked, stripped.

The golden image and the layered comparators' bases go through these same two functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from monoimage.errors import UserError
from monoimage.pipeline.strip import apply_strip, remove_build_cache
from monoimage.plan.resolution import InstalledPackage, Resolution, ResolvedPackage
from monoimage.plan.sbom import StripRecord
from monoimage.plan.strip_rules import StripRule, strip_rules
from monoimage.recipe.model import Recipe
from monoimage.tools.packagers import Packager
from monoimage.tools.packagers.cache import deb_file_names, private_cache


def install_root(recipe: Recipe, packager: Packager, resolution: Resolution, root: Path, *,
                 cache_dir: Path, token: str, source_date_epoch: int,
                 what: str = "the installed packages") -> tuple[InstalledPackage, ...]:
    """Install exactly `resolution` into the empty `root`; what its package database holds.

    The install works on a private copy of the shared package cache (concurrent builds never
    write one folder), merged back when it succeeds.
    """
    if resolution.packages:
        with private_cache(cache_dir, token,
                           deb_file_names(resolution.packages)) as cache:
            packager.install(recipe, resolution, root, cache_dir=cache,
                             source_date_epoch=source_date_epoch)
    installed = packager.list_installed(root) if resolution.packages else ()
    check_installed(resolution.packages, installed, what=what)
    return installed


def strip_root(recipe: Recipe, packager: Packager, root: Path,
               installed: Sequence[InstalledPackage], *, cache_dir: Path,
               before: tuple[StripRule, ...] = ()) -> tuple[StripRecord, ...]:
    """Remove the recipe's build-only packages, then what the strip rules match (after the
    installer-specific `before` rules), then what an installer left under the cache path."""
    present = {p.name for p in installed}
    build_only = tuple(name for name in recipe.strip.packages if name in present)
    if build_only:
        packager.remove(root, build_only)
    stripped = apply_strip(root, before + strip_rules(recipe))
    leaked = remove_build_cache(root, cache_dir)
    return stripped + ((leaked,) if leaked else ())


def check_installed(wanted: Sequence[ResolvedPackage], installed: Sequence[InstalledPackage],
                    *, what: str = "the installed packages") -> None:
    """A root must hold exactly what was resolved for it: same names, same versions."""
    want = {(p.name, p.version) for p in wanted}
    have = {(p.name, p.version) for p in installed}
    if want != have:
        extra = ", ".join(f"{n}={v}" for n, v in sorted(have - want)) or "none"
        lacking = ", ".join(f"{n}={v}" for n, v in sorted(want - have)) or "none"
        raise UserError(f"{what} differ from the resolution (did the repositories change "
                        f"during the build?): extra {extra}; missing {lacking}")
