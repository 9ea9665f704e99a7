"""`monoimage footprint`, the imperative shell: build all three strategies, measure, verify.

1. resolve the recipe once, and on `update` derive the day-1 and day-2 recipes (plan/day2.py)
   and resolve each (`resolve_days`): the pinned closures every build of the run installs;
2. build monoimage's golden image (`build.build`, from that resolution) and the two layered
   comparators (`comparators.build_layered`) for each day, day 2 under the tag `<tag>-day2`;
3. export every image (tools/skopeo.py) and compute the footprint report, the fleet rollouts
   and, per strategy, which day-2 blobs a site must fetch;
4. with `verify`, push everything to a loopback docker-registry and count the bytes a real pull
   into an empty site storage serves (tools/registry.py), first deploy and day 2.

`estimate_footprint` resolves the same way and predicts the figures instead (footprint/estimate.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from monoimage.errors import UserError
from monoimage.footprint.changes import ImageChange, image_changes
from monoimage.footprint.estimate import APT_CALIBRATION, Calibration, Estimate, estimate_report
from monoimage.footprint.figures import (
    MONOIMAGE,
    MONOIMAGE_SINGLE,
    FootprintReport,
    PackageOwner,
    Strategy,
    footprint_report,
)
from monoimage.footprint.fleet import FleetParams, StrategyRollout, strategy_rollouts
from monoimage.footprint.pull_check import Deployment, PullCheck, check_pulls
from monoimage.footprint.report import FootprintFacts
from monoimage.pipeline.build import BuildOptions, build, resolve
from monoimage.pipeline.comparators import LayeredOptions, build_layered
from monoimage.pipeline.single_variant import single_reference, squash_image
from monoimage.pipeline.stages import Progress, Stages
from monoimage.plan.comparator_plan import STRATEGIES
from monoimage.plan.config_tools import config_tools
from monoimage.plan.day2 import (
    PackageUpdate,
    Repository,
    VersionChange,
    update_recipes,
    version_changes,
)
from monoimage.plan.delta import ChainCost, chain_cost
from monoimage.plan.resolution import Resolution
from monoimage.plan.update_impact import PackageImpact, facts_from_resolution, update_impact
from monoimage.recipe.model import Recipe
from monoimage.recipe.versions import Family
from monoimage.tools import buildah
from monoimage.tools.cache_dir import default_cache_dir
from monoimage.tools.packagers.ownership import read_ownership
from monoimage.tools.registry import measure_deployments
from monoimage.tools.skopeo import load_image

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
    comparators: bool = True  # False: the golden image alone (a bench's second layering)


@dataclass(frozen=True)
class StrategyImages:
    """The local images one strategy ships, base first."""

    name: str
    references: tuple[str, ...]
    delta_chain: ChainCost | None = None  # the golden image, built as a delta: its chain


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
    impacts: tuple[PackageImpact, ...] = ()
    changes: tuple[StrategyChanges, ...] = ()
    checks: tuple[PullCheck, ...] = ()

    @property
    def references(self) -> tuple[str, ...]:
        """Every image this run built (first deploy and day 2)."""
        return tuple(ref for s in (*self.images, *self.updated_images) for ref in s.references)

    @property
    def delta_chain(self) -> ChainCost | None:
        """Day 2's golden image as a delta: what its chain costs a site's disk."""
        return next((s.delta_chain for s in self.updated_images if s.delta_chain), None)

    def facts(self) -> FootprintFacts:
        """What the JSON report says of this run."""
        return FootprintFacts(
            recipe=self.recipe, packages=len(self.resolution.packages), report=self.report,
            rollouts=self.rollouts, update=self.update, version_changes=self.version_changes,
            impacts=self.impacts,
            images={s.name: s.references for s in self.images},
            updated_images={s.name: s.references for s in self.updated_images},
            changes={s.name: s.images for s in self.changes}, checks=self.checks,
            config_tools=config_tools(self.recipe, self.resolution),
            delta_chain=self.delta_chain)


def run_footprint(recipe: Recipe, options: FootprintOptions,
                  progress: Progress | None = None) -> FootprintRun:
    """Build all three strategies (and their day-2 rebuilds), measure them, verify on a pull."""
    stages = Stages(progress)
    days = resolve_days(recipe, options, stages)
    images = build_strategies(days.before, days.resolution, options, options.tag, stages)
    updated: tuple[StrategyImages, ...] = ()
    if days.after is not None and days.after_resolution is not None:
        updated = build_strategies(days.after, days.after_resolution, options,
                                   options.tag + DAY2_SUFFIX, stages,
                                   previous=images[0].references[0])
    with stages.stage("measure"):
        first = _load(images, options.oci_cache)
        second = _load(updated, options.oci_cache)
        owner = package_owners(images[0].references[0], recipe.distro.packager)
        report = footprint_report(first, second, owner=owner, baseline=MONOIMAGE)
        changes = tuple(StrategyChanges(b.name, image_changes(b, a))
                        for b, a in zip(first, second, strict=False))
    checks: tuple[PullCheck, ...] = ()
    if options.verify:
        with stages.stage("verify on a registry"):
            checks = verify_pulls(report, images, updated)
    return FootprintRun(
        recipe=recipe, resolution=days.resolution, images=images, report=report,
        rollouts=strategy_rollouts(report.strategies, options.fleet), update=options.update,
        updated_images=updated, version_changes=days.changes, impacts=days.impacts,
        changes=changes, checks=checks)


def estimate_footprint(recipe: Recipe, options: FootprintOptions,
                       progress: Progress | None = None,
                       calibration: Calibration = APT_CALIBRATION) -> Estimate:
    """Resolve (day 1, and day 2 on an update) and predict every figure; build nothing."""
    days = resolve_days(recipe, options, Stages(progress))
    report = estimate_report(recipe, days.resolution, days.after_resolution, calibration)
    return Estimate(recipe, days.resolution, report,
                    strategy_rollouts(report.strategies, options.fleet), calibration,
                    options.update, days.changes, days.impacts)


@dataclass(frozen=True)
class Days:
    """The recipe and its resolution as built on day 1, and on day 2 when there is an update."""

    before: Recipe
    resolution: Resolution
    after: Recipe | None = None
    after_resolution: Resolution | None = None
    changes: tuple[VersionChange, ...] = ()

    @property
    def impacts(self) -> tuple[PackageImpact, ...]:
        """The version changes, with the services whose runtime closures hold them."""
        if self.after_resolution is None:
            return ()
        return update_impact(facts_from_resolution(self.resolution),
                             facts_from_resolution(self.after_resolution),
                             [s.name for s in self.before.services])


def resolve_days(recipe: Recipe, options: FootprintOptions, stages: Stages) -> Days:
    """Resolve day 1 (and day 2 for `options.update`): every build of the run takes these."""
    with stages.stage("resolve"):
        resolution = resolve(recipe, cache_dir=options.cache_dir,
                             with_init_python=options.with_init_python)
    if options.update is None:
        return Days(recipe, resolution)
    recipes = update_recipes(recipe, resolution, options.update, options.extra_repositories,
                             options.host_repositories)
    with stages.stage("resolve day 2"):
        if recipes.before is not recipe:  # day 1 pinned below the update: resolved anew
            resolution = resolve(recipes.before, cache_dir=options.cache_dir,
                                 with_init_python=options.with_init_python)
        after = resolve_day2(recipes.after, options)
    changes = version_changes(resolution, after)
    if not changes:
        raise UserError(f"--update {options.update}: day 2 resolves the same versions as "
                        f"day 1")
    return Days(recipes.before, resolution, recipes.after, after, changes)


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
                     tag: str, stages: Stages, *, previous: str | None = None
                     ) -> tuple[StrategyImages, ...]:
    """monoimage's golden image, its single variant and both layered comparators, from one
    pinned closure; the golden image keeps the layers of `previous` (day 1's, on day 2) and
    otherwise plans from scratch, whatever an earlier run left under the tag."""
    golden = f"localhost/{recipe.name}:{tag}"
    with stages.stage(f"{MONOIMAGE} golden image"):
        result = build(recipe, BuildOptions(
            tag=golden, cache_dir=options.cache_dir, out_dir=options.out_dir,
            source_date_epoch=options.source_date_epoch,
            with_init_python=options.with_init_python, keep_tagged=False,
            **_day2_layers(recipe, previous)), resolution=resolution)
    chain = (None if result.delta is None else chain_cost(
        recipe.layering, result.delta.chain.deltas, result.delta.chain.shadowed_bytes,
        result.rootfs_bytes))
    strategies = [StrategyImages(MONOIMAGE, (golden,), chain)]
    if not options.comparators:
        return tuple(strategies)
    if recipe.layering.policy != "single":
        single = single_reference(golden)
        with stages.stage(f"{MONOIMAGE_SINGLE} (squashed)"):
            squash_image(golden, single, timestamp=options.source_date_epoch)
        strategies.append(StrategyImages(MONOIMAGE_SINGLE, (single,)))
    layered_options = LayeredOptions(tag=tag, cache_dir=options.cache_dir,
                                     source_date_epoch=options.source_date_epoch)
    for strategy in STRATEGIES:
        built = build_layered(recipe, resolution, strategy, layered_options, stages.progress)
        strategies.append(StrategyImages(strategy, built.references))
    return tuple(strategies)


def _day2_layers(recipe: Recipe, previous: str | None) -> dict[str, str]:
    """Day 2 keeps day 1's layers: as a delta over it when the recipe says so."""
    if previous is None:
        return {}
    return {"delta_from" if recipe.layering.updates == "delta" else "previous": previous}


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
    """path → owning package (the first by name), from the package database inside `image`."""
    container = buildah.from_image(f"monoimage-owners-{secrets.token_hex(6)}", image)
    try:
        owners = read_ownership(buildah.mount(container), family)
    finally:
        buildah.remove_container(container)

    def owner(path: str) -> str | None:
        names = owners.get(path)
        return names[0] if names else None
    return owner


def _load(images: Sequence[StrategyImages], cache: Path | None) -> list[Strategy]:
    return [Strategy(s.name, tuple(load_image(ref, cache) for ref in s.references))
            for s in images]
