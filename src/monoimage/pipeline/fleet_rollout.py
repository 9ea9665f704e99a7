"""One rollout on the fleet network: every site's pull client started, timed and counted.

Each site's client (tools/site_agent.py) starts ahead of time inside the site's namespace and
waits for a common start, so the rollout's clock starts for every site at once; waves start one
after the other. What each site was served comes from the serving registry's own access log
(by the site's address: the relay connects from the site's veth), what crossed its link from
the veth's counters, and what left the origin from the origin's log.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Self

from monoimage.errors import UserError
from monoimage.footprint.figures import SitePull
from monoimage.footprint.fleet import FleetParams, PullProtocol, pull_seconds
from monoimage.footprint.pull_check import PullMeasure, Served
from monoimage.footprint.rollout import (
    FIRST_DEPLOY,
    MeasuredRollout,
    PollMeasure,
    SimHost,
    SiteOutcome,
)
from monoimage.pipeline.fleet_net import FleetNetwork, SiteLink
from monoimage.tools import netns
from monoimage.tools.registry import Registry
from monoimage.tools.run import Running, finish, is_running, spawn, stop_group

AGENT = [sys.executable, "-m", "monoimage.tools.site_agent"]


def _start_timeout(sites: int) -> float:
    """Time for `sites` Python clients to start on this host."""
    return 30.0 + 1.0 * sites


class _Agents:
    """Site clients of one phase, started together; stopped, whatever happens, at its end."""

    def __init__(self, net: FleetNetwork) -> None:
        self.net = net
        self.phase = time.monotonic_ns()
        self.go = net.scratch / f"go-{self.phase}"
        self.running: list[tuple[SiteLink, list[str], Running]] = []
        self.logs: dict[int, Path] = {}

    def start(self, site: SiteLink, *args: str) -> None:
        argv = netns.in_namespace(site.namespace, [*AGENT, *args[:3], str(self.go), *args[3:]])
        log = self.net.scratch / f"agent-{site.index}-{self.phase}.log"
        self.logs[site.index] = log
        self.running.append((site, argv, spawn(argv, stdout=log)))

    def go_now(self) -> float:
        """Once every client waits: the common start, on CLOCK_MONOTONIC."""
        deadline = time.monotonic() + _start_timeout(len(self.running))
        for site, _, process in self.running:
            while "waiting" not in self.logs[site.index].read_text(errors="replace"):
                if not is_running(process) or time.monotonic() > deadline:
                    self.stop()
                    raise UserError(f"site {site.index}'s client did not start: "
                                    f"{self.logs[site.index].read_text(errors='replace')[-300:]}")
                time.sleep(0.02)
        start = time.monotonic()
        self.go.touch()
        return start

    def stop(self) -> None:
        for _, _, process in self.running:
            stop_group(process, (2.0, 2.0))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()  # whatever ended the phase (an interrupt while they wait, say)

    def results(self, timeout: float) -> dict[int, dict[str, object]]:
        """Each site's JSON line; a failed or late client is a UserError (all are stopped)."""
        deadline = time.monotonic() + timeout
        try:
            for site, argv, process in self.running:
                done = finish(process, argv, check=False,
                              timeout=max(1.0, deadline - time.monotonic()))
                if not done.ok:
                    said = self.logs[site.index].read_text(errors="replace").strip()
                    raise UserError(f"site {site.index}'s client failed (exit "
                                    f"{done.exit_code}): {said[-500:] or 'no output'}")
        finally:
            self.stop()
        out = {}
        for site, _, _ in self.running:
            lines = self.logs[site.index].read_text(errors="replace").strip().splitlines()
            try:
                out[site.index] = json.loads(lines[-1])
            except (IndexError, json.JSONDecodeError):
                raise UserError(f"site {site.index}: its client said "
                                f"{' | '.join(lines[-3:]) or 'nothing'}") from None
        self.running = []
        return out


def _settled(registries: Sequence[Registry]) -> None:
    """Wait until the registries' logs stop growing (a handler logs after its last write)."""
    sizes: list[int] = []
    for _ in range(50):
        now = [r.log.stat().st_size for r in registries]
        if now == sizes:
            return
        sizes = now
        time.sleep(0.2)


def _wave_slices(sites: Sequence[SiteLink], waves: int) -> list[Sequence[SiteLink]]:
    count = min(waves, len(sites))
    sizes = [len(sites) // count + (1 if i < len(sites) % count else 0) for i in range(count)]
    out, start = [], 0
    for size in sizes:
        out.append(sites[start:start + size])
        start += size
    return out


def roll_out(net: FleetNetwork, strategy: str, day: str, tags: Sequence[str], mirrored: bool,
             waves: int, timeout: float) -> MeasuredRollout:
    """Every site pulls `tags` (first deploy) or updates them (day 2), wave after wave."""
    mode = "pull" if day == FIRST_DEPLOY else "update"
    registries = (net.origin, *net.mirrors)
    marks = [len(r.access_log()) for r in registries]
    before = netns.counters(net.core)
    ends: dict[int, float] = {}
    offset = 0.0
    cpu = 0.0
    for wave in _wave_slices(net.sites, waves):
        with _Agents(net) as agents:
            for site in wave:
                host = site.via_mirror if mirrored else site.origin
                agents.start(site, mode, str(net.storage_root(site)), host, *tags)
            start_at = agents.go_now()
            results = agents.results(timeout)
        wave_ends = {i: float(str(r["end"])) - start_at for i, r in results.items()}
        cpu += sum(float(str(r["cpu"])) for r in results.values())
        ends |= {i: offset + t for i, t in wave_ends.items()}
        offset += max(wave_ends.values())
    _settled(registries)
    after = netns.counters(net.core)
    logs = [r.access_log()[mark:] for r, mark in zip(registries, marks, strict=True)]
    origin, mirror_logs = logs[0], logs[1:]
    outcomes = []
    for site in net.sites:
        served = [s for s in (mirror_logs[site.mirror] if mirrored else origin)
                  if s.client == site.address]
        wire = after[site.core_device].tx_bytes - before[site.core_device].tx_bytes
        outcomes.append(SiteOutcome(site.index, ends[site.index],
                                    PullMeasure(tuple(served)).blob_bytes, len(served), wire))
    return MeasuredRollout(
        strategy, day, mirrored, waves, tuple(outcomes), PullMeasure(tuple(origin)).blob_bytes,
        len(origin),
        tuple(PullMeasure(tuple(log)).blob_bytes for log in mirror_logs) if mirrored else (),
        client_cpu=cpu)


def poll(net: FleetNetwork, strategy: str, tags: Sequence[str], mirrored: bool,
         interval: float, seconds: float) -> PollMeasure:
    """Every site checks each image every `interval` for `seconds`; requests at the origin."""
    with _Agents(net) as agents:
        for site in net.sites:
            host = site.via_mirror if mirrored else site.origin
            agents.start(site, "poll", "-", host, str(interval), str(seconds), *tags)
        mark = len(net.origin.access_log())
        agents.go_now()
        agents.results(seconds + 60)
    _settled((net.origin, *net.mirrors))
    return PollMeasure(strategy, mirrored, len(net.sites), interval, seconds,
                       len(net.origin.access_log()[mark:]))


def calibrate(net: FleetNetwork, tags: Sequence[str], protocol: PullProtocol,
              fleet: FleetParams) -> tuple[PullProtocol, SimHost]:
    """The client's own time per image pulled and per image checked, and the link's framing,
    from one site alone: its time minus the model's network time, its link's frames over the
    bytes it was served; and the client's CPU seconds per image, which the simulated sites
    share this host's cores for."""
    site = net.sites[0]
    alone = replace(net, sites=(site,))
    pulled = roll_out(alone, "calibration", FIRST_DEPLOY, tags, False, 1, 600)
    served = _site_served(net.origin, site)
    one = SitePull(images=len(tags), checks=0, manifests=served.count("GET", "manifests"),
                   blobs=served.count("GET", "blobs"), bytes=served.blob_bytes)
    outcome = pulled.sites[0]
    wire = outcome.wire_bytes / max(1, outcome.bytes)
    network = replace(protocol, wire_overhead=wire)
    image = (outcome.seconds - pull_seconds(one, fleet.site_bandwidth_bps, fleet.rtt_s,
                                            network)) / max(1, one.manifests)
    check_run = roll_out(alone, "calibration", "day 2", tags, False, 1, 600)
    checked = check_run.sites[0]
    check = SitePull(images=len(tags), checks=len(tags), manifests=0, blobs=0, bytes=0)
    check_time = (checked.seconds - pull_seconds(check, fleet.site_bandwidth_bps,
                                                 fleet.rtt_s, network)) / len(tags)
    host = SimHost(float(os.cpu_count() or 1), pulled.client_cpu / max(1, one.manifests),
                   check_run.client_cpu / len(tags))
    return (replace(network, image_seconds=max(0.0, image),
                    check_seconds=max(0.0, check_time)), host)


def _site_served(origin: Registry, site: SiteLink) -> PullMeasure:
    return PullMeasure(tuple(s for s in origin.access_log() if s.client == site.address
                             and isinstance(s, Served)))
