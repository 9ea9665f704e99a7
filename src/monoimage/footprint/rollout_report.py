"""`monoimage fleet`'s report (pure): the JSON document and the rollout-curve chart.

The chart has one panel per rollout (first deploy and day 2, direct and through mirrors); in
each, a step line per strategy: how many sites have finished, over time since the start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from monoimage.footprint.chart import COLOURS, nice_step
from monoimage.footprint.figures import SitePull
from monoimage.footprint.fleet import FleetFigures, PullProtocol
from monoimage.footprint.rollout import (
    Check,
    Extrapolation,
    MeasuredRollout,
    PollMeasure,
    SimHost,
)

RolloutKey = tuple[str, str, bool]  # strategy, day, mirrored


def _check(check: Check) -> dict[str, Any]:
    return {"figure": check.figure, "measured": check.measured, "model": check.model,
            "relative_error": check.relative_error, "tolerance": check.tolerance,
            "agrees": check.agrees}


def _figures(figures: FleetFigures) -> dict[str, Any]:
    return {"wan_bytes": figures.wan_bytes, "site_link_bytes": figures.site_link_bytes,
            "site_seconds": figures.site_seconds, "rollout_seconds": figures.rollout_seconds,
            "bottleneck": figures.bottleneck}


def simulation_json(name: str, params: Mapping[str, Any], protocol: PullProtocol,
                    host: SimHost, rollouts: Sequence[MeasuredRollout],
                    checks: Mapping[RolloutKey, Sequence[Check]], polls: Sequence[PollMeasure],
                    poll_checks: Mapping[tuple[str, bool], Check],
                    extrapolations: Sequence[Extrapolation],
                    pulls: Mapping[tuple[str, str], SitePull] | None = None) -> dict[str, Any]:
    """Every measured figure, the model's next to it, and the extrapolations, as plain data;
    `pulls`: what one site pulls per (strategy, day), the footprint's figures."""
    return {
        "recipe": name,
        "pulls": [{"strategy": s, "day": d, **asdict(p)} for (s, d), p in (pulls or {}).items()],
        "fleet": dict(params),
        "protocol": asdict(protocol),
        "host": asdict(host),
        "rollouts": [{
            "strategy": r.strategy, "day": r.day, "mirrored": r.mirrored, "waves": r.waves,
            "origin_bytes": r.origin_bytes, "origin_requests": r.origin_requests,
            "mirror_bytes": list(r.mirror_bytes),
            "seconds": {"p50": r.percentile(50), "p95": r.percentile(95),
                        "max": r.percentile(100)},
            "client_cpu_seconds": r.client_cpu,
            "sites": [asdict(s) for s in r.sites],
            "checks": [_check(c) for c in checks[(r.strategy, r.day, r.mirrored)]],
        } for r in rollouts],
        "polls": [{
            "strategy": p.strategy, "mirrored": p.mirrored, "sites": p.sites,
            "interval_seconds": p.interval, "seconds": p.seconds,
            "origin_requests": p.origin_requests, "origin_requests_per_second": p.rate,
            "check": _check(poll_checks[(p.strategy, p.mirrored)]),
        } for p in polls],
        "extrapolations": [{
            "sites": e.sites, "strategy": e.strategy, "day": e.day,
            "direct": _figures(e.direct), "mirrored": _figures(e.mirrored),
        } for e in extrapolations],
    }


_PANEL_W, _PANEL_H = 360, 300
_TOP, _BOTTOM, _LEFT, _RIGHT = 50, 50, 55, 15


def _panel(x0: float, y0: float, title: str, curves: Sequence[tuple[str, Sequence[float]]],
           sites: int) -> list[str]:
    plot_w, plot_h = _PANEL_W - _LEFT - _RIGHT, _PANEL_H - _TOP - _BOTTOM
    longest = max((c[-1] for _, c in curves if c), default=1.0) or 1.0
    step = nice_step(longest)
    right = step * max(1, -(-longest // step))
    left, base = x0 + _LEFT, y0 + _TOP + plot_h

    def x(t: float) -> float:
        return left + t / right * plot_w

    def y(n: float) -> float:
        return base - n / max(1, sites) * plot_h

    out = [(f'<text x="{left + plot_w / 2:.1f}" y="{y0 + _TOP - 18}" text-anchor="middle" '
            f'font-weight="bold">{escape(title)}</text>'),
           f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" stroke="#2d3748"/>',
           f'<line x1="{left}" y1="{base}" x2="{left}" y2="{y(sites):.1f}" stroke="#2d3748"/>',
           (f'<text x="{left - 6}" y="{y(sites) + 4:.1f}" text-anchor="end" '
            f'font-size="11">{sites}</text>'),
           f'<text x="{left - 6}" y="{base + 4}" text-anchor="end" font-size="11">0</text>',
           (f'<text x="{left + plot_w / 2:.1f}" y="{base + 34}" text-anchor="middle" '
            f'font-size="11">seconds since the rollout started</text>')]
    tick = 0.0
    while tick <= right + step / 1000:
        out.append(f'<text x="{x(tick):.1f}" y="{base + 16}" text-anchor="middle" '
                   f'font-size="11">{tick:g}</text>')
        tick += step
    for index, (name, curve) in enumerate(curves):
        points = [f"{x(0):.1f},{y(0):.1f}"]
        for done, t in enumerate(curve, 1):
            points += [f"{x(t):.1f},{y(done - 1):.1f}", f"{x(t):.1f},{y(done):.1f}"]
        colour = COLOURS[index % len(COLOURS)]
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                   f'points="{" ".join(points)}"><title>{escape(name)}</title></polyline>')
    return out


def rollout_chart(rollouts: Sequence[MeasuredRollout], title: str) -> str:
    """Sites completed over time, per strategy, one panel per rollout, as standalone SVG."""
    panels: dict[tuple[str, bool], list[tuple[str, Sequence[float]]]] = {}
    for r in rollouts:
        panels.setdefault((r.day, r.mirrored), []).append((r.strategy, r.curve()))
    sites = max((len(r.sites) for r in rollouts), default=1)
    names = list(dict.fromkeys(r.strategy for r in rollouts))
    width = _PANEL_W * max(1, min(2, len(panels)))
    rows = -(-len(panels) // 2) or 1
    height = _PANEL_H * rows + 60
    body = [(f'<text x="{width / 2:.1f}" y="22" text-anchor="middle" font-size="15" '
             f'font-weight="bold">{escape(title)}</text>')]
    for k, ((day, mirrored), curves) in enumerate(panels.items()):
        label = f"{day}, {'through mirrors' if mirrored else 'direct'}"
        body += _panel((k % 2) * _PANEL_W, 30 + (k // 2) * _PANEL_H, label, curves, sites)
    for index, name in enumerate(names):
        lx = 20 + index * (width - 40) / max(1, len(names))
        body.append(f'<rect x="{lx:.1f}" y="{height - 22}" width="12" height="12" '
                    f'fill="{COLOURS[index % len(COLOURS)]}"/>')
        body.append(f'<text x="{lx + 16:.1f}" y="{height - 12}" font-size="12">'
                    f'{escape(name)}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family={quoteattr("sans-serif")}>\n'
            f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(body) + "\n</svg>\n")
