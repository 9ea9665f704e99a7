"""`monoimage fleet`, the imperative shell: roll the footprint's images out to simulated sites.

1. find the images `monoimage footprint` built and tagged (`fleet_images`): every strategy's,
   day 1 under TAG and day 2 under TAG-day2 when it exists; nothing is built;
2. make the fleet network (pipeline/fleet_net.py): an origin docker-registry, R pull-through
   mirrors, S sites behind shaped, delayed links;
3. calibrate the client's own time per image on one idle site (`calibrate`);
4. per strategy: push day 1 to the origin; every site pulls it directly, then day 2 (pushed
   under the same tags) as `podman auto-update` does, then the sites poll; the same again
   through the mirrors from empty sites (pipeline/fleet_rollout.py runs each rollout);
5. compare every figure with the fleet model (footprint/rollout.py) and extrapolate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from monoimage.errors import UserError
from monoimage.footprint.figures import MONOIMAGE, SitePull, day2, first_deploy
from monoimage.footprint.fleet import FleetParams, PullProtocol
from monoimage.footprint.pull_check import Deployment, repo_tags
from monoimage.footprint.rollout import (
    DAY2,
    FIRST_DEPLOY,
    Check,
    Extrapolation,
    MeasuredRollout,
    PollMeasure,
    SimHost,
    compare,
    compare_poll,
    extrapolate,
    model_fleet,
)
from monoimage.pipeline.comparators import image_reference
from monoimage.pipeline.fleet_net import FleetNetwork, fleet_network
from monoimage.pipeline.fleet_rollout import calibrate, poll, roll_out
from monoimage.pipeline.footprint import DAY2_SUFFIX, StrategyImages
from monoimage.pipeline.single_variant import single_reference
from monoimage.pipeline.stages import Progress, Stages
from monoimage.plan.comparator_plan import STRATEGIES
from monoimage.plan.image_config import BASE_PART
from monoimage.recipe.model import Recipe
from monoimage.tools import buildah
from monoimage.tools.registry import push
from monoimage.tools.skopeo import load_image

# The pull client here: skopeo over plain HTTP to an open registry (no token), a registry that
# serves blobs itself (no redirect), one new connection per request (the relay adds its
# handshake's round trip), up to 6 blobs at once after the image's config (containers/image).
SIM_PROTOCOL = PullProtocol(connect_rtts=1, ping=1, auth=0, blob_requests=1, parallel_blobs=6,
                            wire_overhead=1514 / 1448)


@dataclass(frozen=True)
class FleetOptions:
    """The simulated fleet: sites, mirrors, their link, how they roll out and poll."""

    sites: int = 50
    mirrors: int = 2
    bandwidth_bps: float = 10e6
    rtt_s: float = 0.100
    waves: int = 1
    poll_interval_s: float = 5.0
    poll_seconds: float = 15.0  # 0: no polling phase
    strategies: tuple[str, ...] = ()  # () = every strategy footprint built
    oci_cache: Path | None = None

    def fleet(self) -> FleetParams:
        """The model's parameters for this simulation (origin and mirrors share a fast,
        unshaped core, so their links never bind)."""
        return FleetParams(
            sites=self.sites, site_bandwidth_bps=self.bandwidth_bps, rtt_s=self.rtt_s,
            registry_egress_bps=10e9, sites_per_mirror=math.ceil(self.sites / self.mirrors),
            mirror_uplink_bps=10e9, mirror_egress_bps=10e9, mirror_fetches_per_miss=2,
            mirror_refetches_in_flight=True, mirror_requests_per_check=2, waves=self.waves)


@dataclass(frozen=True)
class StrategyPulls:
    """One strategy's images (day 1, and day 2 if built) and what a site pulls of them."""

    images: StrategyImages
    updated: tuple[str, ...]
    first: SitePull
    day2: SitePull | None


@dataclass(frozen=True)
class FleetSimulation:
    """Everything `monoimage fleet` measured and what the model said of it."""

    name: str  # the recipe's
    options: FleetOptions
    protocol: PullProtocol
    host: SimHost
    strategies: tuple[StrategyPulls, ...]
    rollouts: tuple[MeasuredRollout, ...]
    polls: tuple[PollMeasure, ...]
    checks: dict[tuple[str, str, bool], tuple[Check, ...]] = field(default_factory=dict)
    poll_checks: dict[tuple[str, bool], Check] = field(default_factory=dict)
    extrapolations: tuple[Extrapolation, ...] = ()

    def pulls(self) -> dict[tuple[str, str], SitePull]:
        """What one site pulls, per (strategy, day)."""
        found = {(s.images.name, FIRST_DEPLOY): s.first for s in self.strategies}
        return found | {(s.images.name, DAY2): s.day2 for s in self.strategies
                        if s.day2 is not None}

    @property
    def agrees(self) -> bool:
        return (all(c.agrees for cs in self.checks.values() for c in cs)
                and all(c.agrees for c in self.poll_checks.values()))


def fleet_images(recipe: Recipe, tag: str, only: Sequence[str] = ()) -> tuple[
        tuple[StrategyImages, tuple[str, ...]], ...]:
    """The images `monoimage footprint --tag TAG` tagged, per strategy, with their day-2
    rebuilds (empty when footprint ran without an update); a missing one is a UserError."""
    golden = f"localhost/{recipe.name}:{tag}"
    names = {name: [golden] if name == MONOIMAGE else [single_reference(golden)]
             for name in (MONOIMAGE, "monoimage-single")}
    if recipe.layering.policy == "single":
        del names["monoimage-single"]
    for strategy in STRATEGIES:
        names[strategy] = [image_reference(recipe, strategy, part, tag)
                           for part in (BASE_PART, *(s.name for s in recipe.services))]
    unknown = set(only) - names.keys()
    if unknown:
        raise UserError(f"--strategy {min(unknown)}: not a strategy "
                        f"({', '.join(names)})")
    present = {n for image in buildah.images() for n in image.get("names") or ()}
    found = []
    for name, refs in names.items():
        if only and name not in only:
            continue
        missing = [ref for ref in refs if ref not in present]
        if missing:
            raise UserError(f"{missing[0]}: no such image; `monoimage footprint "
                            f"{recipe.name} --tag {tag}` builds it (add --simulate-update "
                            f"NAME for day 2)")
        day2_refs = tuple(ref.rsplit(":", 1)[0] + f":{tag}{DAY2_SUFFIX}" for ref in refs)
        found.append((StrategyImages(name, tuple(refs)),
                      day2_refs if all(r in present for r in day2_refs) else ()))
    return tuple(found)


def simulate_fleet(name: str, images: Sequence[tuple[StrategyImages, tuple[str, ...]]],
                   options: FleetOptions, progress: Progress | None = None
                   ) -> FleetSimulation:
    """Every strategy's first deploy and day 2, direct and mirrored, measured and modelled."""
    stages = Stages(progress)
    with stages.stage("measure the images"):
        pulls = tuple(_pulls(s, updated, options.oci_cache) for s, updated in images)
    fleet = options.fleet()
    rollouts: list[MeasuredRollout] = []
    polls: list[PollMeasure] = []
    with ExitStack() as stack:
        with stages.stage("make the fleet network") as say:
            net = stack.enter_context(fleet_network(
                options.sites, options.mirrors, options.bandwidth_bps, options.rtt_s))
            say(f"{options.sites} sites, {options.mirrors} mirrors")
        protocol, host = _calibrated(net, pulls[0], options, stages)
        for strategy in pulls:
            for mirrored in (False, True):
                how = "through mirrors" if mirrored else "direct"
                with stages.stage(f"{strategy.images.name} {how}") as say:
                    got, polled = _strategy(net, strategy, mirrored, options, fleet,
                                            protocol, host)
                    say(", ".join(f"{r.day} {r.percentile(100):.1f} s" for r in got))
                rollouts += got
                polls += polled
    pulls_by_name = {s.images.name: s for s in pulls}
    checks = {(r.strategy, r.day, r.mirrored): compare(
        r, _day_pull(pulls_by_name[r.strategy], r.day), fleet, protocol, host)
        for r in rollouts}
    poll_checks = {(p.strategy, p.mirrored): compare_poll(
        p, pulls_by_name[p.strategy].first, FleetParams(**{**fleet.__dict__,
                                                           "sites": p.sites}))
        for p in polls}
    days = [(s.images.name, FIRST_DEPLOY, s.first) for s in pulls]
    days += [(s.images.name, DAY2, s.day2) for s in pulls if s.day2 is not None]
    return FleetSimulation(name, options, protocol, host, pulls, tuple(rollouts), tuple(polls),
                           checks, poll_checks, extrapolate(days, fleet, protocol))


def _day_pull(strategy: StrategyPulls, day: str) -> SitePull:
    pull = strategy.first if day == FIRST_DEPLOY else strategy.day2
    assert pull is not None
    return pull


def _pulls(images: StrategyImages, updated: tuple[str, ...], cache: Path | None
           ) -> StrategyPulls:
    before = [load_image(ref, cache) for ref in images.references]
    after = [load_image(ref, cache) for ref in updated]
    return StrategyPulls(images, updated, first_deploy(before),
                         day2(before, after) if after else None)


def _calibrated(net: FleetNetwork, strategy: StrategyPulls, options: FleetOptions,
                stages: Stages) -> tuple[PullProtocol, SimHost]:
    with stages.stage("calibrate the client") as say:
        tags = repo_tags(Deployment("calibration", strategy.images.references[:1]))
        push(net.origin, strategy.images.references[0], tags[0], namespace=net.core)
        protocol, host = calibrate(net, tags, SIM_PROTOCOL, options.fleet())
        net.reset_storage()
        say(f"{protocol.image_seconds:.2f} s per image pulled ({host.cpu_per_image:.2f} s CPU), "
            f"{protocol.check_seconds:.2f} s per image checked")
    return protocol, host


def _strategy(net: FleetNetwork, strategy: StrategyPulls, mirrored: bool,
              options: FleetOptions, fleet: FleetParams, protocol: PullProtocol,
              host: SimHost) -> tuple[list[MeasuredRollout], list[PollMeasure]]:
    name = strategy.images.name
    deployment = Deployment(f"{name}-{'mirrored' if mirrored else 'direct'}",
                            strategy.images.references)
    tags = repo_tags(deployment)
    for ref, tag in zip(strategy.images.references, tags, strict=True):
        push(net.origin, ref, tag, namespace=net.core)
    net.reset_storage()
    deadline = _deadline(strategy.first, fleet, protocol, host, mirrored)
    rollouts = [roll_out(net, name, FIRST_DEPLOY, tags, mirrored, options.waves, deadline)]
    if strategy.day2 is not None:
        for ref, tag in zip(strategy.updated, tags, strict=True):
            push(net.origin, ref, tag, namespace=net.core)
        deadline = _deadline(strategy.day2, fleet, protocol, host, mirrored)
        rollouts.append(roll_out(net, name, DAY2, tags, mirrored, options.waves, deadline))
    polls = []
    if options.poll_seconds > 0:
        polls.append(poll(net, name, tags, mirrored, options.poll_interval_s,
                          options.poll_seconds))
    return rollouts, polls


def _deadline(pull: SitePull, fleet: FleetParams, protocol: PullProtocol, host: SimHost,
              mirrored: bool) -> float:
    """How long a rollout may take before it is stopped: three times the model, plus a minute."""
    return 3 * model_fleet(fleet, mirrored, pull, protocol, host).rollout_seconds + 60
