"""Fleet model: bytes over the WAN and time to roll a pull out to S edge sites (pure).

Input: one site's pull (`SitePull`: images resolved, manifests and blobs downloaded, bytes),
from footprint.py, for a first deploy or a day-2 update. Parameters (`FleetParams`): S sites,
each behind a link of B bit/s and round-trip time L to the registry; the central registry's
egress E bit/s; optionally a regional mirror (pull-through cache) per `sites_per_mirror` sites.

Time for one site to pull = round trips × L + bytes × 8 / B, where round trips are counted
request by request (`PullProtocol`), each request costing its own round trip plus the
connection set-up (TCP, TLS) when connections are not reused:

    requests = images × (ping + auth) + checks + manifests + blobs × requests_per_blob
    round trips = requests × (1 + connect_rtts), the blob requests split over
                  `parallel_blobs` concurrent downloads (their bytes still share one link)

`checks` are the manifest HEAD requests of an update check (one per image on day 2, none on a
first deploy, where the client GETs each manifest directly).

Without a mirror every site pulls from the central registry:
    WAN bytes = S × bytes
    rollout = max(site time, S × bytes × 8 / E)

With a mirror per M = ceil(S / sites_per_mirror) region, the pull-through cache fetches each
blob once from the central registry and serves its sites over their own links:
    WAN bytes = M × bytes (central registry to mirrors); site links still carry S × bytes
    rollout = max(site time (at the mirror's round-trip time),
                  mirror fill time = round trips × L + bytes × 8 / mirror uplink,
                  M × bytes × 8 / E,
                  sites_per_mirror × bytes × 8 / mirror egress)

Assumptions, stated once: every site starts at once; the registry, the mirrors and the links
share bandwidth fairly and are otherwise idle; a pull-through cache streams a blob to its sites
while it fetches it, so the mirror's phases overlap; no request fails or is retried; TCP slow
start and protocol overheads (HTTP headers, TLS records) are ignored. Under these assumptions the
rollout time is the slowest of the bottlenecks above: a lower bound that a real rollout
approaches when one bottleneck dominates. Bytes are exact; times are estimates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from monoimage.footprint.figures import SitePull, StrategyFigures


@dataclass(frozen=True)
class PullProtocol:
    """Requests and round trips a registry client spends (defaults: a TLS registry with tokens).

    connect_rtts: round trips to open a connection, paid per request: TCP (1) + TLS 1.3 (1).
        The containers/image library (podman, skopeo) opened a new connection for every request
        in the local registry's access log; set 0 for a client that keeps connections alive.
    ping: `GET /v2/` per image (the client probes the registry per image it resolves).
    auth: token requests per image (anonymous bearer token from the registry's auth server).
    blob_requests: requests per blob: the GET, and following its redirect to the blob store,
        as registries backed by object storage answer; 1 for a registry serving blobs itself.
    parallel_blobs: concurrent blob downloads (containers/image defaults to several).
    wire_overhead: link bytes per payload byte: TCP/IP and Ethernet framing (1514 bytes on the
        wire per 1448 of payload at MTU 1500, ≈ 1.046) and HTTP headers; 1: payload only.
    image_seconds: what the client spends per image pulled off the network: its start,
        unpacking, the storage commit (measured by `monoimage fleet` on one idle site).
    check_seconds: what the client spends per image checked for an update, off the network
        (reading its local copy's digest).
    """

    connect_rtts: int = 2
    ping: int = 1
    auth: int = 1
    blob_requests: int = 2
    parallel_blobs: int = 1
    wire_overhead: float = 1.0
    image_seconds: float = 0.0
    check_seconds: float = 0.0


@dataclass(frozen=True)
class FleetParams:
    """The fleet: S sites, their link, the registry's egress, the regional mirrors."""

    sites: int = 10_000
    site_bandwidth_bps: float = 10e6
    rtt_s: float = 0.100
    registry_egress_bps: float = 10e9
    sites_per_mirror: int = 100
    mirror_uplink_bps: float = 1e9
    mirror_egress_bps: float = 10e9
    mirror_rtt_s: float | None = None  # site to mirror; None: the same as rtt_s
    # How many times a mirror fetches a blob it misses: 1 for a cache that stores what it
    # streams; Debian's docker-registry (distribution 2.8) fetches it twice, once to store it
    # and once to stream it to the client (registry/proxy/proxyblobstore.go, and measured).
    mirror_fetches_per_miss: int = 1
    # A mirror that does not coalesce fetches again for every request that arrives while a
    # blob is still being fetched (distribution 2.8 does not): those requests are the sites
    # of the first wave asking at once, beyond the first. False: one fetch whatever comes.
    mirror_refetches_in_flight: bool = False
    # Requests a mirror sends the origin per manifest HEAD it answers: the HEAD, and for
    # distribution 2.8 in front of an open origin a `GET /v2/` ping too (no auth challenge is
    # ever cached, so it pings on every request).
    mirror_requests_per_check: int = 1
    waves: int = 1  # sites roll out in this many equal waves, each when the last has ended

    def __post_init__(self) -> None:
        positive = {
            "sites": self.sites, "site_bandwidth_bps": self.site_bandwidth_bps,
            "registry_egress_bps": self.registry_egress_bps,
            "sites_per_mirror": self.sites_per_mirror,
            "mirror_uplink_bps": self.mirror_uplink_bps,
            "mirror_egress_bps": self.mirror_egress_bps,
            "mirror_fetches_per_miss": self.mirror_fetches_per_miss, "waves": self.waves,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, not {value}")
        if self.rtt_s < 0 or (self.mirror_rtt_s is not None and self.mirror_rtt_s < 0):
            raise ValueError("round-trip times cannot be negative")


@dataclass(frozen=True)
class Bound:
    """One lower bound on the rollout time and what it is."""

    name: str
    seconds: float


@dataclass(frozen=True)
class FleetFigures:
    """One rollout: bytes over the WAN and over site links, the time, and what limits it."""

    mirror: bool
    wan_bytes: int
    site_link_bytes: int
    site_seconds: float
    rollout_seconds: float
    bottleneck: str
    bounds: tuple[Bound, ...]


@dataclass(frozen=True)
class Rollout:
    """The same pull rolled out directly from the registry and through regional mirrors."""

    direct: FleetFigures
    mirrored: FleetFigures


def requests(pull: SitePull, protocol: PullProtocol) -> int:
    """HTTP requests one site makes for this pull."""
    return (pull.images * (protocol.ping + protocol.auth) + pull.checks + pull.manifests
            + pull.blobs * protocol.blob_requests)


def round_trips(pull: SitePull, protocol: PullProtocol) -> int:
    """Sequential round trips of one pull (blob requests split over parallel downloads)."""
    per_request = 1 + protocol.connect_rtts
    serial = pull.images * (protocol.ping + protocol.auth) + pull.checks + pull.manifests
    blob_waves = pull.blobs
    if protocol.parallel_blobs > 1:  # each image's config first, then its layers side by side
        configs = min(pull.manifests, pull.blobs)
        blob_waves = configs + math.ceil((pull.blobs - configs) / protocol.parallel_blobs)
    return (serial + blob_waves * protocol.blob_requests) * per_request


def pull_seconds(pull: SitePull, bandwidth_bps: float, rtt_s: float,
                 protocol: PullProtocol) -> float:
    """Time for one client to pull: round trips × RTT + bytes over its link (with their
    framing) + the client's own time per image it pulls."""
    return (round_trips(pull, protocol) * rtt_s
            + pull.bytes * protocol.wire_overhead * 8 / bandwidth_bps
            + pull.manifests * protocol.image_seconds + pull.checks * protocol.check_seconds)


def wave_sizes(fleet: FleetParams) -> tuple[int, ...]:
    """Sites per wave: `waves` near-equal waves (never more waves than sites)."""
    waves = min(fleet.waves, fleet.sites)
    return tuple(fleet.sites // waves + (1 if i < fleet.sites % waves else 0)
                 for i in range(waves))


def poll_requests_per_second(pull: SitePull, fleet: FleetParams, interval_s: float,
                             mirrored: bool = False) -> float:
    """Requests per second at the origin while every site checks each image every
    `interval_s` with a manifest HEAD. A pull-through cache does not spare the origin: it asks
    the origin for a tag's digest on every request (distribution's proxy tag service looks a tag
    up remotely first), `mirror_requests_per_check` requests each."""
    per_check = fleet.mirror_requests_per_check if mirrored else 1
    return fleet.sites * pull.images * per_check / interval_s


def _slowest(mirror: bool, wan: int, links: int, site: float, bounds: list[Bound]
             ) -> FleetFigures:
    worst = max(bounds, key=lambda b: b.seconds)
    return FleetFigures(mirror, wan, links, site, worst.seconds, worst.name, tuple(bounds))


def rollout_direct(pull: SitePull, fleet: FleetParams, protocol: PullProtocol) -> FleetFigures:
    """Every site pulls from the central registry."""
    total = fleet.sites * pull.bytes
    site = pull_seconds(pull, fleet.site_bandwidth_bps, fleet.rtt_s, protocol)
    waves = wave_sizes(fleet)
    return _slowest(False, total, total, site, [
        Bound("site link", site * len(waves)),
        Bound("registry egress", total * 8 / fleet.registry_egress_bps),
    ])


def rollout_mirrored(pull: SitePull, fleet: FleetParams, protocol: PullProtocol) -> FleetFigures:
    """Sites pull through a regional pull-through cache that fetches each blob once."""
    mirrors = math.ceil(fleet.sites / fleet.sites_per_mirror)
    waves = wave_sizes(fleet)
    wan = mirrors * pull.bytes * fleet.mirror_fetches_per_miss
    if fleet.mirror_refetches_in_flight:  # the first wave's other sites ask while it fetches
        wan += max(0, waves[0] - mirrors) * pull.bytes
    mirror_rtt = fleet.rtt_s if fleet.mirror_rtt_s is None else fleet.mirror_rtt_s
    site = pull_seconds(pull, fleet.site_bandwidth_bps, mirror_rtt, protocol)
    fill = pull_seconds(pull, fleet.mirror_uplink_bps, fleet.rtt_s, protocol)
    per_mirror = min(fleet.sites, fleet.sites_per_mirror) * pull.bytes
    return _slowest(True, wan, fleet.sites * pull.bytes, site, [
        Bound("site link", site * len(waves)),
        Bound("mirror fill", fill),
        Bound("registry egress", wan * 8 / fleet.registry_egress_bps),
        Bound("mirror egress", per_mirror * 8 / fleet.mirror_egress_bps),
    ])


def rollout(pull: SitePull, fleet: FleetParams = FleetParams(),
            protocol: PullProtocol = PullProtocol()) -> Rollout:
    """The pull rolled out to the fleet, without and with regional mirrors."""
    return Rollout(rollout_direct(pull, fleet, protocol),
                   rollout_mirrored(pull, fleet, protocol))


@dataclass(frozen=True)
class StrategyRollout:
    """A strategy's first deploy and day-2 update, rolled out to the fleet."""

    name: str
    first_deploy: Rollout
    day2: Rollout | None


def strategy_rollouts(figures: Sequence[StrategyFigures], fleet: FleetParams = FleetParams(),
                      protocol: PullProtocol = PullProtocol()) -> tuple[StrategyRollout, ...]:
    """Every strategy of a footprint report rolled out, first deploy and day 2."""
    return tuple(StrategyRollout(f.name, rollout(f.first_deploy, fleet, protocol),
                                 rollout(f.day2, fleet, protocol) if f.day2 else None)
                 for f in figures)
