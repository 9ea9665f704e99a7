"""The footprint's JSON report: every figure of a measured run or an estimate as plain data
(bytes as integers, times in seconds), the document `monoimage footprint` writes as
footprint.json.

Pure: `FootprintFacts` holds what the document says, whichever run produced it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from monoimage.footprint.changes import ImageChange
from monoimage.footprint.figures import MONOIMAGE, MONOIMAGE_SINGLE, FootprintReport, SitePull
from monoimage.footprint.fleet import FleetFigures, FleetParams, StrategyRollout
from monoimage.footprint.pull_check import PullCheck
from monoimage.plan.config_tools import ConfigTools, cost_json
from monoimage.plan.day2 import PackageUpdate, VersionChange
from monoimage.plan.delta import ChainCost
from monoimage.plan.update_impact import PackageImpact
from monoimage.recipe.model import Recipe

TOLERANCE = 0.01  # how far (relative) a served figure may be from the computed one and agree


@dataclass(frozen=True)
class FootprintFacts:
    """What the report holds. A measured run fills the images, day-2 changes and pull checks,
    per strategy name; an estimate, which builds nothing, gives its calibration instead."""

    recipe: Recipe
    packages: int  # in the pinned closure
    report: FootprintReport
    rollouts: tuple[StrategyRollout, ...]
    update: PackageUpdate | None = None
    version_changes: tuple[VersionChange, ...] = ()
    images: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    updated_images: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    changes: Mapping[str, tuple[ImageChange, ...]] = field(default_factory=dict)
    checks: tuple[PullCheck, ...] = ()
    calibration: dict[str, object] | None = None  # an estimate's, as its as_json() gives
    impacts: tuple[PackageImpact, ...] = ()  # the version changes with who runs them
    config_tools: ConfigTools | None = None  # the recipe's config tools, per strategy
    delta_chain: ChainCost | None = None  # day 2's golden image as a delta: its disk cost

    @property
    def mode(self) -> Literal["measured", "estimated"]:
        return "measured" if self.calibration is None else "estimated"


def footprint_json(facts: FootprintFacts, fleet: FleetParams) -> dict[str, Any]:
    """Every figure as plain data (bytes as integers, times in seconds)."""
    rollouts = {r.name: r for r in facts.rollouts}
    doc: dict[str, Any] = {
        "recipe": facts.recipe.name,
        "packager": facts.recipe.distro.packager.value,
        "mode": facts.mode,
        "packages": facts.packages,
        "services": [s.name for s in facts.recipe.services],
        "baseline": facts.report.baseline,
        "verdict": facts.report.verdict,
        "fleet": {"sites": fleet.sites, "site_bandwidth_bps": fleet.site_bandwidth_bps,
                  "rtt_s": fleet.rtt_s, "sites_per_mirror": fleet.sites_per_mirror,
                  "registry_egress_bps": fleet.registry_egress_bps,
                  "mirror_uplink_bps": fleet.mirror_uplink_bps,
                  "mirror_egress_bps": fleet.mirror_egress_bps},
        "strategies": [],
        "config_tools": None if facts.config_tools is None else cost_json(
            facts.config_tools, [f.name for f in facts.report.strategies]),
        "update": None if facts.update is None else {
            "name": facts.update.name, "version": facts.update.version,
            "changes": ([i.as_json() for i in facts.impacts] if facts.impacts else
                        [{"name": c.name, "before": c.before, "after": c.after}
                         for c in facts.version_changes])},
        "delta_chain": _chain_json(facts),
    }
    for figures in facts.report.strategies:
        roll = rollouts[figures.name]
        doc["strategies"].append({
            "name": figures.name,
            "images": list(facts.images.get(figures.name, ())),
            "image_count": figures.images,
            "layers": figures.layers,
            "first_deploy": _pull_json(figures.first_deploy),
            "disk_bytes": figures.disk_bytes,
            "duplicated_bytes": figures.duplicated_bytes,
            "duplicated_files": figures.duplicated_files,
            "top_duplicated_packages": [
                {"package": p.package, "files": p.files, "bytes": p.bytes_wasted}
                for p in figures.top_packages],
            "day2": _pull_json(figures.day2) if figures.day2 else None,
            "day2_images": list(facts.updated_images.get(figures.name, ())),
            "day2_changes": [
                {"image": c.image, "changed": c.manifest_changed, "layers": c.layers,
                 "new_layers": [{"digest": d, "bytes": s} for d, s in c.new_layers]}
                for c in facts.changes.get(figures.name, ())],
            "fleet": {
                "first_deploy": _rollout_json(roll.first_deploy.direct,
                                              roll.first_deploy.mirrored),
                "day2": (_rollout_json(roll.day2.direct, roll.day2.mirrored)
                         if roll.day2 else None)},
        })
    if facts.calibration is None:
        doc["verification"] = [
            {"strategy": c.name, "figure": c.figure, "computed": c.computed,
             "served": c.served, "relative_error": c.relative_error,
             "agrees": c.agrees(TOLERANCE)} for c in facts.checks]
    else:
        doc["calibration"] = facts.calibration
    return doc


def _chain_json(facts: FootprintFacts) -> dict[str, Any] | None:
    """The delta chain's disk cost beside what it saves on the wire: day 2's bytes as a delta,
    and what the single variant (a full re-pull) would have cost."""
    chain = facts.delta_chain
    if chain is None:
        return None
    day2 = {f.name: f.day2.bytes for f in facts.report.strategies if f.day2}
    return {**chain.as_json(), "day2_bytes": day2.get(MONOIMAGE),
            "single_day2_bytes": day2.get(MONOIMAGE_SINGLE)}


def _pull_json(pull: SitePull) -> dict[str, int]:
    return {"bytes": pull.bytes, "images": pull.images, "manifests": pull.manifests,
            "blobs": pull.blobs, "checks": pull.checks}


def _rollout_json(direct: FleetFigures, mirrored: FleetFigures) -> dict[str, Any]:
    def one(figures: FleetFigures) -> dict[str, Any]:
        return {"wan_bytes": figures.wan_bytes, "site_link_bytes": figures.site_link_bytes,
                "site_seconds": figures.site_seconds,
                "rollout_seconds": figures.rollout_seconds, "bottleneck": figures.bottleneck}
    return {"direct": one(direct), "mirrored": one(mirrored)}
