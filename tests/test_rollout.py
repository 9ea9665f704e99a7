"""rollout: measured rollouts against the fleet model, the JSON and the rollout chart (pure)."""

from __future__ import annotations

import pytest

from monoimage.footprint.figures import SitePull
from monoimage.footprint.fleet import FleetParams, PullProtocol
from monoimage.footprint.rollout import (
    FIRST_DEPLOY,
    MeasuredRollout,
    PollMeasure,
    SimHost,
    SiteOutcome,
    compare,
    compare_poll,
    extrapolate,
)
from monoimage.footprint.rollout_report import rollout_chart, simulation_json

PULL = SitePull(images=1, checks=0, manifests=1, blobs=2, bytes=1_000_000)
FLEET = FleetParams(sites=4, site_bandwidth_bps=1e6, rtt_s=0.1, sites_per_mirror=2,
                    mirror_fetches_per_miss=2, mirror_refetches_in_flight=True)
PROTOCOL = PullProtocol(connect_rtts=1, auth=0, blob_requests=1)


def measured(seconds: list[float], origin: int, mirrored: bool = True) -> MeasuredRollout:
    sites = tuple(SiteOutcome(i, s, 1_000_000, 4, 1_046_000) for i, s in enumerate(seconds))
    return MeasuredRollout("monoimage", FIRST_DEPLOY, mirrored, 1, sites, origin, 30,
                           (2_000_000, 2_000_000) if mirrored else ())


def test_percentiles_are_nearest_rank_over_the_sites() -> None:
    rollout = measured([1.0, 4.0, 2.0, 3.0], 0)
    assert (rollout.percentile(50), rollout.percentile(95), rollout.percentile(100)) == \
        (2.0, 4.0, 4.0)
    assert rollout.curve() == (1.0, 2.0, 3.0, 4.0)


def test_a_rollout_that_matches_the_model_agrees_and_one_that_does_not_is_named() -> None:
    # model: 8 Mbit at 1 Mbit/s + (1 ping + 1 manifest + 2 blobs) × 2 RTTs × 0.1 s = 8.8 s;
    # origin: 2 mirrors × 2 fetches + 2 sites refetching in flight = 6 copies
    good = compare(measured([8.5, 8.8, 8.9, 9.0], 6_000_000), PULL, FLEET, PROTOCOL)
    assert {c.figure: c.agrees for c in good} == {
        "bytes per site": True, "origin egress": True, "mirror egress": True,
        "site time p50": True, "rollout time": True}
    assert {c.figure: c.model for c in good}["rollout time"] == pytest.approx(8.8)
    bad = compare(measured([8.5, 8.8, 8.9, 20.0], 2_000_000), PULL, FLEET, PROTOCOL)
    assert [c.figure for c in bad if not c.agrees] == ["origin egress", "rollout time"]


def test_the_simulation_hosts_cores_bound_the_rollout_when_the_sites_share_them() -> None:
    def model(cpu: float) -> float:
        checks = compare(measured([1.0] * 4, 0, False), PULL, FLEET, PROTOCOL,
                         SimHost(cores=2, cpu_per_image=cpu))
        return {c.figure: c.model for c in checks}["rollout time"]
    assert model(1.0) == pytest.approx(8.8)  # 4 × 1 s / 2 cores: unpacking keeps up
    assert model(5.0) == pytest.approx(4 * 5.0 / 2)  # 10 s of CPU: the host is the bound


def test_polling_is_checked_against_the_origin_rate() -> None:
    poll = PollMeasure("monoimage", True, 4, 2.0, 10.0, 40)
    check = compare_poll(poll, PULL, FleetParams(**{**FLEET.__dict__,
                                                    "mirror_requests_per_check": 2}))
    assert (check.measured, check.model, check.agrees) == (4.0, 4.0, True)


def test_json_and_chart_hold_every_rollout() -> None:
    rollouts = [measured([1.0, 2.0, 3.0, 4.0], 6_000_000, m) for m in (False, True)]
    checks = {(r.strategy, r.day, r.mirrored): compare(r, PULL, FLEET, PROTOCOL)
              for r in rollouts}
    extra = extrapolate([("monoimage", FIRST_DEPLOY, PULL)], FLEET, PROTOCOL)
    doc = simulation_json("edge", FLEET.__dict__, PROTOCOL, SimHost(2), rollouts, checks, (),
                          {}, extra)
    assert [r["seconds"]["max"] for r in doc["rollouts"]] == [4.0, 4.0]
    assert [e["sites"] for e in doc["extrapolations"]] == [10_000, 50_000]
    # 50,000 sites, a mirror per 100: 500 mirrors × 2 fetches + 49,500 in-flight refetches
    assert doc["extrapolations"][1]["mirrored"]["wan_bytes"] == (1000 + 49_500) * 1_000_000
    chart = rollout_chart(rollouts, "edge")
    assert chart.count("<polyline") == 2 and "first deploy, through mirrors" in chart
