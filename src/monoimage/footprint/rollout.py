"""A simulated rollout as measured, next to the fleet model's prediction for it (pure).

pipeline/fleet_sim.py runs the rollouts on real parts (docker-registry as origin and as
pull-through mirrors, skopeo into each site's containers-storage, tc-shaped links with a
delaying relay) and hands over what it measured; this module compares each figure with
footprint/fleet.py's model for the same sites, mirrors, link and strategy, and extrapolates
the calibrated model to larger fleets.

Tolerances: 10 % for bytes and request rates, 20 % for times (issue 13). A figure outside them
means the model is wrong there, and the model is what changes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from monoimage.footprint.figures import SitePull
from monoimage.footprint.fleet import (
    Bound,
    FleetFigures,
    FleetParams,
    PullProtocol,
    poll_requests_per_second,
    rollout_direct,
    rollout_mirrored,
    wave_sizes,
)

BYTES_TOLERANCE = 0.10
TIME_TOLERANCE = 0.20
FIRST_DEPLOY, DAY2 = "first deploy", "day 2"


@dataclass(frozen=True)
class SiteOutcome:
    """One site's rollout: when it ended (from the rollout's start) and what it was served."""

    index: int
    seconds: float
    bytes: int  # manifest and blob bytes the registry served it (the registry's access log)
    requests: int
    wire_bytes: int  # frames on its link, headers included (the veth's counter)


@dataclass(frozen=True)
class MeasuredRollout:
    """One strategy's first deploy or day 2 to every site, directly or through mirrors."""

    strategy: str
    day: str
    mirrored: bool
    waves: int
    sites: tuple[SiteOutcome, ...]
    origin_bytes: int  # manifest and blob bytes the origin served (to sites or mirrors)
    origin_requests: int
    mirror_bytes: tuple[int, ...]  # per mirror, what it served its sites
    client_cpu: float = 0.0  # CPU seconds every site's pull client (skopeo) used

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile of the sites' completion times."""
        times = sorted(s.seconds for s in self.sites)
        return times[max(0, math.ceil(q / 100 * len(times)) - 1)] if times else 0.0

    @property
    def mean_site_bytes(self) -> float:
        return sum(s.bytes for s in self.sites) / max(1, len(self.sites))

    def curve(self) -> tuple[float, ...]:
        """Completion times, sorted: site k+1 of S has finished at curve[k]."""
        return tuple(sorted(s.seconds for s in self.sites))


@dataclass(frozen=True)
class PollMeasure:
    """Requests at the origin while every site checked each image every `interval` seconds."""

    strategy: str
    mirrored: bool
    sites: int
    interval: float
    seconds: float
    origin_requests: int

    @property
    def rate(self) -> float:
        return self.origin_requests / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Check:
    """One measured figure next to the model's."""

    figure: str
    measured: float
    model: float
    tolerance: float

    @property
    def relative_error(self) -> float:
        if self.model == 0:
            return 0.0 if self.measured == 0 else math.inf
        return abs(self.measured - self.model) / self.model

    @property
    def agrees(self) -> bool:
        return self.relative_error <= self.tolerance


@dataclass(frozen=True)
class SimHost:
    """The simulation's host: every site's client shares its cores, where a real site has a
    CPU of its own. `cpu_per_image`, `cpu_per_check`: client CPU seconds (calibrated)."""

    cores: float
    cpu_per_image: float = 0.0
    cpu_per_check: float = 0.0

    def cpu_seconds(self, pull: SitePull, clients: int) -> float:
        """How long `clients` pulling at once keep this host's cores busy: a floor under the
        wave's time (the client unpacks while it downloads, so it is a bound, not a sum)."""
        work = pull.manifests * self.cpu_per_image + pull.checks * self.cpu_per_check
        return clients * work / self.cores


def model_fleet(fleet: FleetParams, mirrored: bool, pull: SitePull,
                protocol: PullProtocol, host: SimHost | None = None) -> FleetFigures:
    """The model's figures for this rollout (on the simulation's host, if given)."""
    figures = (rollout_mirrored if mirrored else rollout_direct)(pull, fleet, protocol)
    if host is None:
        return figures
    waves = wave_sizes(fleet)
    cpu = host.cpu_seconds(pull, waves[0])
    bounds = (*figures.bounds, Bound("simulation host CPU", cpu * len(waves)))
    worst = max(bounds, key=lambda b: b.seconds)
    return replace(figures, site_seconds=max(figures.site_seconds, cpu),
                   rollout_seconds=worst.seconds, bottleneck=worst.name, bounds=bounds)


def compare(measured: MeasuredRollout, pull: SitePull, fleet: FleetParams,
            protocol: PullProtocol, host: SimHost | None = None) -> tuple[Check, ...]:
    """Bytes per site, origin egress, mirror egress, p50 and last-site time, against the model."""
    model = model_fleet(fleet, measured.mirrored, pull, protocol, host)
    checks = [Check("bytes per site", measured.mean_site_bytes, pull.bytes, BYTES_TOLERANCE),
              Check("origin egress", measured.origin_bytes, model.wan_bytes, BYTES_TOLERANCE)]
    if measured.mirrored:
        checks.append(Check("mirror egress", sum(measured.mirror_bytes),
                            model.site_link_bytes, BYTES_TOLERANCE))
    per_wave = model.site_seconds
    checks += [Check("site time p50", _wave_median(measured, fleet), per_wave, TIME_TOLERANCE),
               Check("rollout time", measured.percentile(100), model.rollout_seconds,
                     TIME_TOLERANCE)]
    return tuple(checks)


def _wave_median(measured: MeasuredRollout, fleet: FleetParams) -> float:
    """The median site's time within its own wave (waves start one after the other)."""
    first = wave_sizes(fleet)[0]
    times = sorted(s.seconds for s in measured.sites)[:first]
    return times[max(0, math.ceil(len(times) / 2) - 1)] if times else 0.0


def compare_poll(measured: PollMeasure, pull: SitePull, fleet: FleetParams) -> Check:
    """The origin's request rate while the fleet polls, against the model."""
    return Check("origin requests/s", measured.rate,
                 poll_requests_per_second(pull, fleet, measured.interval, measured.mirrored),
                 BYTES_TOLERANCE)


@dataclass(frozen=True)
class Extrapolation:
    """The calibrated model for a larger fleet: WAN bytes and rollout time, both ways."""

    sites: int
    strategy: str
    day: str
    direct: FleetFigures
    mirrored: FleetFigures


def extrapolate(pulls: Sequence[tuple[str, str, SitePull]], fleet: FleetParams,
                protocol: PullProtocol, sizes: Sequence[int] = (10_000, 50_000),
                sites_per_mirror: int = 100) -> tuple[Extrapolation, ...]:
    """Each (strategy, day, pull) rolled out to each fleet size, all sites at once."""
    out = []
    for size in sizes:
        grown = FleetParams(**{**fleet.__dict__, "sites": size, "waves": 1,
                               "sites_per_mirror": sites_per_mirror})
        for strategy, day, pull in pulls:
            out.append(Extrapolation(size, strategy, day, rollout_direct(pull, grown, protocol),
                                     rollout_mirrored(pull, grown, protocol)))
    return tuple(out)
