"""fleet: the rollout model, by hand-computed examples and by properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monoimage.footprint.figures import SitePull, StrategyFigures
from monoimage.footprint.fleet import (
    FleetParams,
    PullProtocol,
    poll_requests_per_second,
    pull_seconds,
    requests,
    rollout,
    round_trips,
    strategy_rollouts,
)

FIRST = SitePull(images=1, checks=0, manifests=1, blobs=3, bytes=100_000_000)


def test_round_trips_are_counted_request_by_request() -> None:
    # ping + token + manifest, then 3 blobs × (GET + redirect): 9 requests × (1 + TCP + TLS).
    assert requests(FIRST, PullProtocol()) == 9
    assert round_trips(FIRST, PullProtocol()) == 27
    # An open registry on a kept-alive connection serving blobs itself: 1 + 1 + 3 = 5.
    assert round_trips(FIRST, PullProtocol(connect_rtts=0, auth=0, blob_requests=1)) == 5
    # Three parallel downloads: the config first (the client reads it before the layers),
    # then both layers in one wave: (3 + 2 × 2) × 3.
    assert round_trips(FIRST, PullProtocol(parallel_blobs=3)) == 21


def test_day2_checks_every_image_even_when_only_one_changed() -> None:
    update = SitePull(images=4, checks=4, manifests=1, blobs=2, bytes=1_000)
    # 4 × (ping + token) + 4 HEADs + 1 manifest GET + 2 blobs × 2 = 17 requests × 3.
    assert round_trips(update, PullProtocol()) == 51


def test_direct_rollout_of_100_mb_to_10000_sites_is_bound_by_registry_egress() -> None:
    direct = rollout(FIRST).direct
    assert direct.wan_bytes == direct.site_link_bytes == 10_000 * 100_000_000
    assert direct.site_seconds == pytest.approx(2.7 + 80.0)  # 27 RTTs × 100 ms + 800 Mbit / 10 Mbit/s
    assert direct.rollout_seconds == pytest.approx(800.0)  # 8 Tbit / 10 Gbit/s
    assert direct.bottleneck == "registry egress"


def test_mirrored_rollout_carries_each_blob_once_per_region() -> None:
    mirrored = rollout(FIRST).mirrored
    assert mirrored.wan_bytes == 100 * 100_000_000  # 100 mirrors of 100 sites
    assert mirrored.site_link_bytes == 10_000 * 100_000_000
    bounds = {b.name: b.seconds for b in mirrored.bounds}
    assert bounds == pytest.approx({"site link": 82.7, "mirror fill": 2.7 + 0.8,
                                    "registry egress": 8.0, "mirror egress": 8.0})
    assert (mirrored.bottleneck, mirrored.rollout_seconds) == ("site link", pytest.approx(82.7))


def test_a_closer_mirror_shortens_the_round_trips() -> None:
    near = rollout(FIRST, FleetParams(mirror_rtt_s=0.010)).mirrored
    assert near.site_seconds == pytest.approx(27 * 0.010 + 80.0)


def test_a_fleet_smaller_than_one_region_needs_one_mirror() -> None:
    mirrored = rollout(FIRST, FleetParams(sites=7)).mirrored
    assert mirrored.wan_bytes == 100_000_000


@pytest.mark.parametrize("field", ["sites", "site_bandwidth_bps", "registry_egress_bps",
                                   "sites_per_mirror", "mirror_uplink_bps", "mirror_egress_bps"])
def test_fleet_parameters_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        FleetParams(**{field: 0})


pulls = st.builds(SitePull, images=st.integers(1, 20), checks=st.integers(0, 20),
                  manifests=st.integers(0, 20), blobs=st.integers(0, 200),
                  bytes=st.integers(0, 10**11))
fleets = st.builds(FleetParams, sites=st.integers(1, 10**6),
                   site_bandwidth_bps=st.floats(1e5, 1e10),
                   rtt_s=st.floats(0, 1), registry_egress_bps=st.floats(1e6, 1e12),
                   sites_per_mirror=st.integers(1, 10**4), mirror_uplink_bps=st.floats(1e6, 1e11),
                   mirror_egress_bps=st.floats(1e6, 1e12))
protocols = st.builds(PullProtocol, connect_rtts=st.integers(0, 3), ping=st.integers(0, 1),
                      auth=st.integers(0, 1), blob_requests=st.integers(1, 2),
                      parallel_blobs=st.integers(1, 8))


@given(pulls, fleets, protocols, st.integers(0, 10**10))
def test_more_bytes_never_roll_out_faster(pull: SitePull, fleet: FleetParams,
                                          protocol: PullProtocol, extra: int) -> None:
    bigger = SitePull(pull.images, pull.checks, pull.manifests, pull.blobs, pull.bytes + extra)
    for mode in ("direct", "mirrored"):
        small, big = (getattr(rollout(p, fleet, protocol), mode) for p in (pull, bigger))
        assert big.rollout_seconds >= small.rollout_seconds
        assert big.wan_bytes >= small.wan_bytes


@given(pulls, fleets, protocols, st.integers(1, 10**5))
def test_more_sites_never_roll_out_faster_nor_carry_fewer_bytes(
        pull: SitePull, fleet: FleetParams, protocol: PullProtocol, extra: int) -> None:
    grown = FleetParams(**{**fleet.__dict__, "sites": fleet.sites + extra})
    for mode in ("direct", "mirrored"):
        small, big = (getattr(rollout(pull, f, protocol), mode) for f in (fleet, grown))
        assert big.rollout_seconds >= small.rollout_seconds
        assert big.wan_bytes >= small.wan_bytes


@given(pulls, fleets, protocols, st.floats(1.0, 100.0))
def test_more_bandwidth_never_rolls_out_slower(pull: SitePull, fleet: FleetParams,
                                               protocol: PullProtocol, factor: float) -> None:
    faster = FleetParams(**{**fleet.__dict__,
                            "site_bandwidth_bps": fleet.site_bandwidth_bps * factor})
    for mode in ("direct", "mirrored"):
        fast, slow = (getattr(rollout(pull, f, protocol), mode) for f in (faster, fleet))
        assert fast.rollout_seconds <= slow.rollout_seconds


@given(pulls, fleets, protocols)
def test_a_mirror_never_adds_wan_bytes_and_rollout_is_the_slowest_bound(
        pull: SitePull, fleet: FleetParams, protocol: PullProtocol) -> None:
    result = rollout(pull, fleet, protocol)
    assert result.mirrored.wan_bytes <= result.direct.wan_bytes
    assert result.mirrored.site_link_bytes == result.direct.site_link_bytes
    for figures in (result.direct, result.mirrored):
        assert figures.rollout_seconds == max(b.seconds for b in figures.bounds)
        assert figures.rollout_seconds >= figures.site_seconds


@given(pulls, protocols, st.integers(1, 8))
def test_parallel_downloads_never_add_round_trips(pull: SitePull, protocol: PullProtocol,
                                                   more: int) -> None:
    wider = PullProtocol(**{**protocol.__dict__,
                            "parallel_blobs": protocol.parallel_blobs + more})
    assert round_trips(pull, wider) <= round_trips(pull, protocol)


def test_every_strategy_is_rolled_out_first_deploy_and_day2() -> None:
    def figures(name: str, day2: SitePull | None) -> StrategyFigures:
        return StrategyFigures(name, 1, 1, FIRST, 0, 0, 0, (), (), day2)

    update = SitePull(images=1, checks=1, manifests=1, blobs=1, bytes=5_000_000)
    mono, kolla = strategy_rollouts([figures("monoimage", update), figures("kolla-style", None)])
    assert (mono.name, kolla.name) == ("monoimage", "kolla-style")
    first = mono.first_deploy
    assert (first.direct.wan_bytes, first.direct.rollout_seconds) == \
        (10**12, pytest.approx(800.0))
    assert (first.mirrored.wan_bytes, first.mirrored.rollout_seconds) == \
        (10**10, pytest.approx(82.7))
    assert kolla.first_deploy == first
    assert mono.day2 is not None and kolla.day2 is None
    # 2 + 1 HEAD + 1 manifest + 1 blob × 2 = 6 requests × 3 RTTs × 100 ms, + 40 Mbit at 10 Mbit/s
    assert mono.day2.direct.site_seconds == pytest.approx(1.8 + 4.0)
    # 10,000 × 5 MB = 400 Gbit through 10 Gbit/s of registry egress; 100 mirrors fill 5 MB each
    assert (mono.day2.direct.wan_bytes, mono.day2.direct.rollout_seconds) == \
        (5 * 10**10, pytest.approx(40.0))
    assert (mono.day2.direct.bottleneck, mono.day2.mirrored.bottleneck) == \
        ("registry egress", "site link")
    assert (mono.day2.mirrored.wan_bytes, mono.day2.mirrored.rollout_seconds) == \
        (5 * 10**8, pytest.approx(5.8))


def test_a_mirror_that_fetches_twice_and_refetches_in_flight_costs_the_origin_more() -> None:
    # distribution 2.8: a miss is fetched twice (store, stream); every site of the first wave
    # beyond one per mirror asks while the blob is in flight and fetches it again.
    fleet = FleetParams(sites=8, sites_per_mirror=4, mirror_fetches_per_miss=2,
                        mirror_refetches_in_flight=True)
    assert rollout(FIRST, fleet).mirrored.wan_bytes == (2 * 2 + 6) * 100_000_000
    # A first wave of one site per mirror (4 waves of 2): no request finds a blob in flight.
    waves = FleetParams(**{**fleet.__dict__, "waves": 4})
    assert rollout(FIRST, waves).mirrored.wan_bytes == 2 * 2 * 100_000_000


def test_waves_pay_the_site_time_once_per_wave() -> None:
    one, four = rollout(FIRST, FleetParams(sites=8)), rollout(FIRST, FleetParams(sites=8, waves=4))
    assert four.direct.rollout_seconds == pytest.approx(4 * one.direct.site_seconds)


def test_polling_rate_at_the_origin_is_not_lowered_by_mirrors() -> None:
    fleet = FleetParams(sites=100, mirror_requests_per_check=2)
    kolla = SitePull(images=8, checks=8, manifests=0, blobs=0, bytes=0)
    assert poll_requests_per_second(kolla, fleet, 10.0) == 80.0
    assert poll_requests_per_second(kolla, fleet, 10.0, mirrored=True) == 160.0


def test_framing_and_client_time_add_to_the_site_time() -> None:
    protocol = PullProtocol(wire_overhead=1.05, image_seconds=2.0, check_seconds=0.5)
    update = SitePull(images=2, checks=2, manifests=1, blobs=1, bytes=1_000_000)
    bare = PullProtocol()
    assert pull_seconds(update, 1e6, 0.1, protocol) == pytest.approx(
        pull_seconds(update, 1e6, 0.1, bare) + 0.05 * 8 + 2.0 + 2 * 0.5)
