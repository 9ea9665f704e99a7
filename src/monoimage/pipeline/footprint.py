"""`monoimage footprint`, the imperative shell: build all three strategies, measure, verify.

1. resolve the recipe once (the pinned closure every strategy installs);
2. build monoimage's golden image (`build.build`) and the two layered comparators
   (`comparators.build_layered`) from that closure, and check the golden image holds exactly it;
3. on `update`, derive the day-1 and day-2 recipes (day2.py) and build all three strategies for
   each day, day 2 under the tag `<tag>-day2`;
4. export every image (oci.py) and compute the footprint report, the fleet rollouts and, per
   strategy, which day-2 blobs a site must fetch;
5. with `verify`, push everything to a loopback docker-registry and count the bytes a real pull
   into an empty site storage serves (registry.py), first deploy and day 2.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from monoimage.errors import UserError
from monoimage.footprint.figures import FootprintReport, PackageOwner, Strategy, footprint_report
from monoimage.footprint.fleet import FleetParams, StrategyRollout, strategy_rollouts
from monoimage.pipeline.build import BuildOptions, Progress, build, default_cache_dir, resolve
from monoimage.pipeline.comparators import LayeredOptions, build_layered, stage
from monoimage.plan.comparator_plan import STRATEGIES
from monoimage.plan.day2 import (
    ImageChange,
    PackageUpdate,
    Repository,
    VersionChange,
    image_changes,
    update_recipes,
    version_changes,
)
from monoimage.recipe.model import Recipe
from monoimage.recipe.versions import Family
from monoimage.tools import buildah
from monoimage.tools.packagers.base import Resolution
from monoimage.tools.registry import Deployment, PullCheck, check_pulls, measure_deployments
from monoimage.tools.skopeo import load_image

MONOIMAGE = "monoimage"
DAY2_SUFFIX = "-day2"


@dataclass(frozen=True)
class FootprintOptions:
    """How to run the comparison; the defaults build like `monoimage build`."""

    tag: str = "footprint"  # of every image; not the recipe's, so `monoimage build`'s stays
    cache_dir: Path = field(default_factory=default_cache_dir)
    out_dir: Path | None = None  # the golden build's manifest and SBOM (default ./out/NAME)
    source_date_epoch: int = 0
    with_init_python: bool = True
    update: PackageUpdate | None = None
    extra_repositories: tuple[Repository, ...] = ()
    host_repositories: tuple[Repository, ...] = ()  # apt: the host's, kept beside extra ones
    verify: bool = True
    fleet: FleetParams = field(default_factory=FleetParams)
    oci_cache: Path | None = None  # where images are exported (default ~/.cache/monoimage/oci)


@dataclass(frozen=True)
class StrategyImages:
    """The local images one strategy ships, base first."""

    name: str
    references: tuple[str, ...]


@dataclass(frozen=True)
class StrategyChanges:
    """Day 2 for one strategy: per image, which blobs a site must fetch."""

    name: str
    images: tuple[ImageChange, ...]


@dataclass(frozen=True)
class FootprintRun:
    """Everything `monoimage footprint` measured."""

    recipe: Recipe
    resolution: Resolution
    images: tuple[StrategyImages, ...]
    report: FootprintReport
    rollouts: tuple[StrategyRollout, ...]
    update: PackageUpdate | None = None
    updated_images: tuple[StrategyImages, ...] = ()
    version_changes: tuple[VersionChange, ...] = ()
    changes: tuple[StrategyChanges, ...] = ()
    checks: tuple[PullCheck, ...] = ()

    @property
    def references(self) -> tuple[str, ...]:
        """Every image this run built (first deploy and day 2)."""
        return tuple(ref for s in (*self.images, *self.updated_images) for ref in s.references)


def run_footprint(recipe: Recipe, options: FootprintOptions,
                  progress: Progress | None = None) -> FootprintRun:
    """Build all three strategies (and their day-2 rebuilds), measure them, verify on a pull."""
    report_event = progress or (lambda event: None)
    tag = options.tag
    with stage(report_event, "resolve"):
        resolution = resolve(recipe, cache_dir=options.cache_dir,
                             with_init_python=options.with_init_python)
    before_recipe, after_recipe = recipe, None
    if options.update is not None:
        recipes = update_recipes(recipe, resolution, options.update,
                                 options.extra_repositories, options.host_repositories)
        before_recipe, after_recipe = recipes.before, recipes.after
        if before_recipe is not recipe:
            resolution = resolve(before_recipe, cache_dir=options.cache_dir,
                                 with_init_python=options.with_init_python)
    images = build_strategies(before_recipe, resolution, options, tag, report_event)
    updated: tuple[StrategyImages, ...] = ()
    changed: tuple[VersionChange, ...] = ()
    after_resolution = None
    if after_recipe is not None:
        with stage(report_event, "resolve day 2"):
            after_resolution = resolve_day2(after_recipe, options)
        changed = version_changes(resolution, after_resolution)
        if not changed:
            raise UserError(f"--update {options.update}: day 2 resolves the same versions "
                            f"as day 1")
        updated = build_strategies(after_recipe, after_resolution, options, tag + DAY2_SUFFIX,
                                   report_event)
    with stage(report_event, "measure"):
        first = _load(images, options.oci_cache)
        second = _load(updated, options.oci_cache)
        owner = package_owners(images[0].references[0], recipe.distro.packager)
        report = footprint_report(first, second, owner=owner, baseline=MONOIMAGE)
        changes = tuple(StrategyChanges(b.name, image_changes(b, a))
                        for b, a in zip(first, second, strict=False))
    checks: tuple[PullCheck, ...] = ()
    if options.verify:
        with stage(report_event, "verify on a registry"):
            checks = verify_pulls(report, images, updated)
    return FootprintRun(
        recipe=recipe, resolution=resolution, images=images, report=report,
        rollouts=strategy_rollouts(report.strategies, options.fleet), update=options.update,
        updated_images=updated, version_changes=changed, changes=changes, checks=checks)


def resolve_day2(recipe: Recipe, options: FootprintOptions) -> Resolution:
    """The day-2 resolution; a failure says which update it was resolving."""
    try:
        return resolve(recipe, cache_dir=options.cache_dir,
                       with_init_python=options.with_init_python)
    except UserError as err:
        raise UserError(f"day 2 (--update {options.update}): {err}\n  (if other packages of "
                        f"the closure depend on exactly the old version, as packages built "
                        f"from one source often do, they need the update too)") from None


def build_strategies(recipe: Recipe, resolution: Resolution, options: FootprintOptions,
                     tag: str, progress: Progress) -> tuple[StrategyImages, ...]:
    """monoimage's golden image and both layered comparators, from one pinned closure."""
    golden = f"localhost/{recipe.name}:{tag}"
    with stage(progress, f"{MONOIMAGE} golden image"):
        result = build(recipe, BuildOptions(
            tag=golden, cache_dir=options.cache_dir, out_dir=options.out_dir,
            source_date_epoch=options.source_date_epoch,
            with_init_python=options.with_init_python))
    _check_same_pins(resolution, result.manifest_path)
    strategies = [StrategyImages(MONOIMAGE, (golden,))]
    layered_options = LayeredOptions(tag=tag, cache_dir=options.cache_dir,
                                     source_date_epoch=options.source_date_epoch)
    for strategy in STRATEGIES:
        built = build_layered(recipe, resolution, strategy, layered_options, progress)
        strategies.append(StrategyImages(strategy, built.references))
    return tuple(strategies)


def verify_pulls(report: FootprintReport, images: Sequence[StrategyImages],
                 updated: Sequence[StrategyImages] = ()) -> tuple[PullCheck, ...]:
    """Push to a loopback registry, pull into empty sites, compare served with computed bytes."""
    after = {s.name: s.references for s in updated}
    deployments = [Deployment(s.name, s.references, after.get(s.name, ())) for s in images]
    return check_pulls(report, measure_deployments(deployments))


def remove_images(references: Sequence[str]) -> None:
    """Remove images by name (children before their base); names already gone are skipped."""
    for ref in reversed(references):
        try:
            buildah.remove_image(ref)
        except buildah.BuildahError:
            pass


# ---------------------------------------------------------------- package ownership


def package_owners(image: str, family: Family) -> PackageOwner:
    """path → owning package, read from the package database inside `image`."""
    container = buildah.buildah("from", "--pull-never", image).strip()
    try:
        root = buildah.mount(container)
        owners = (_dpkg_owners(root) if family is Family.APT else _rpm_owners(root))
    finally:
        buildah.remove_container(container)
    return owners.get


def _dpkg_owners(root: Path) -> dict[str, str]:
    owners: dict[str, str] = {}
    for listing in sorted((root / "var/lib/dpkg/info").glob("*.list")):
        package = listing.stem.split(":")[0]
        for line in listing.read_text(errors="replace").splitlines():
            for path in _merged_usr(line):
                owners.setdefault(path, package)
    return owners


def _rpm_owners(root: Path) -> dict[str, str]:
    done = subprocess.run(["rpm", "--root", str(root), "--dbpath", "/usr/lib/sysimage/rpm",
                           "-qa", "--qf", "[%{FILENAMES}\t%{NAME}\n]"],
                          capture_output=True, text=True, check=False)
    owners: dict[str, str] = {}
    for line in done.stdout.splitlines():
        path, _, package = line.partition("\t")
        for alias in _merged_usr(path):
            owners.setdefault(alias, package)
    return owners


def _merged_usr(path: str) -> tuple[str, ...]:
    """A listed path and, for /bin, /sbin, /lib*, its /usr twin (Debian 12 merges /usr)."""
    top = path.split("/")[1] if path.count("/") > 1 else ""
    if top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        return (path, "/usr" + path)
    return (path,)


# ---------------------------------------------------------------- helpers


def _load(images: Sequence[StrategyImages], cache: Path | None) -> list[Strategy]:
    return [Strategy(s.name, tuple(load_image(ref, cache) for ref in s.references))
            for s in images]


def _check_same_pins(resolution: Resolution, manifest_path: Path) -> None:
    """The golden build resolved again: it must have installed the very same versions."""
    manifest = json.loads(manifest_path.read_text())
    golden = {p["name"]: p["version"] for p in manifest["packages"]}
    pinned = {p.name: p.version for p in resolution.packages}
    if golden != pinned:
        differ = sorted(set(golden.items()) ^ set(pinned.items()))[:5]
        raise UserError(f"the golden image and the comparators would install different "
                        f"versions (did the repositories change meanwhile?): {differ}")
