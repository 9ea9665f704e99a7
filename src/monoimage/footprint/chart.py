"""An SVG bar chart of first-deploy and day-2 bytes per strategy (pure, hand-written SVG).

One panel per figure (first deploy, then day-2 when known), each with its own scale: a day-2
update is often a hundred times smaller than a first deploy and would vanish on a shared axis.
Within a panel the strategies stand side by side in the same colours, values printed on the bars.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from monoimage.footprint.figures import FootprintReport

COLOURS = ("#2b6cb0", "#dd6b20", "#718096", "#38a169", "#805ad5", "#d53f8c")
_WIDTH_PER_PANEL = 380
_HEIGHT = 360
_TOP, _BOTTOM, _LEFT, _RIGHT = 70, 60, 70, 20


def nice_step(maximum: float, ticks: int = 4) -> float:
    """A round tick step (1, 2 or 5 × 10^k) so that about `ticks` steps cover `maximum`."""
    if maximum <= 0:
        return 1.0
    raw = maximum / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _tick(mb: float) -> str:
    return f"{mb:,.0f}" if mb == int(mb) else f"{mb:g}"


def _value(mb: float) -> str:
    if mb >= 100 or mb == 0:
        return f"{mb:,.0f}"
    return f"{mb:,.1f}" if mb >= 1 else f"{mb:.2f}"


def _panel(x0: float, title: str, names: Sequence[str], values_mb: Sequence[float]) -> list[str]:
    plot_w = _WIDTH_PER_PANEL - _LEFT - _RIGHT
    plot_h = _HEIGHT - _TOP - _BOTTOM
    step = nice_step(max(values_mb, default=0))
    top = step * max(1, math.ceil(max(values_mb, default=0) / step))
    left, base_y = x0 + _LEFT, _TOP + plot_h
    out = [(f'<text x="{left + plot_w / 2:.1f}" y="{_TOP - 22}" text-anchor="middle" '
           f'font-weight="bold">{escape(title)}</text>')]
    tick = 0.0
    while tick <= top + step / 1000:
        y = base_y - tick / top * plot_h
        out.append(f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{left + plot_w:.1f}" y2="{y:.1f}" '
                   f'stroke="#e2e8f0"/>')
        out.append(f'<text x="{left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end" '
                   f'font-size="11">{_tick(tick)}</text>')
        tick += step
    out.append(f'<text transform="translate({x0 + 16:.1f},{_TOP + plot_h / 2:.1f}) rotate(-90)" '
               f'text-anchor="middle" font-size="12">MB pulled per site</text>')
    slot = plot_w / max(1, len(names))
    bar_w = slot * 0.6
    for index, (name, value) in enumerate(zip(names, values_mb, strict=True)):
        height = value / top * plot_h
        x = left + index * slot + (slot - bar_w) / 2
        centre = x + bar_w / 2
        colour = COLOURS[index % len(COLOURS)]
        out.append(f'<rect x="{x:.1f}" y="{base_y - height:.1f}" width="{bar_w:.1f}" '
                   f'height="{height:.1f}" fill="{colour}"><title>{escape(name)}: '
                   f'{_value(value)} MB</title></rect>')
        out.append(f'<text x="{centre:.1f}" y="{base_y - height - 5:.1f}" text-anchor="middle" '
                   f'font-size="12" font-weight="bold">{_value(value)} MB</text>')
        out.append(f'<text x="{centre:.1f}" y="{base_y + 18:.1f}" text-anchor="middle" '
                   f'font-size="12">{escape(name)}</text>')
    out.append(f'<line x1="{left:.1f}" y1="{base_y:.1f}" x2="{left + plot_w:.1f}" '
               f'y2="{base_y:.1f}" stroke="#2d3748"/>')
    return out


def footprint_chart(report: FootprintReport, title: str = "Bytes a site pulls, per strategy"
                    ) -> str:
    """The report's first-deploy and day-2 bytes as a standalone SVG document."""
    names = [s.name for s in report.strategies]
    panels = [("First deploy", [s.first_deploy.bytes / 1e6 for s in report.strategies])]
    if report.strategies and all(s.day2 is not None for s in report.strategies):
        panels.append(("Day-2 update",
                       [s.day2.bytes / 1e6 if s.day2 else 0.0 for s in report.strategies]))
    width = _WIDTH_PER_PANEL * len(panels)
    body = [(f'<text x="{width / 2:.1f}" y="24" text-anchor="middle" font-size="16" '
            f'font-weight="bold">{escape(title)}</text>'),
            (f'<text x="{width / 2:.1f}" y="{_HEIGHT - 12}" text-anchor="middle" font-size="11" '
            f'fill="#4a5568">compressed blob bytes, shared blobs counted once; '
            f'1 MB = 1,000,000 bytes</text>')]
    for index, (panel_title, values) in enumerate(panels):
        body += _panel(index * _WIDTH_PER_PANEL, panel_title, names, values)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{_HEIGHT}" '
            f'viewBox="0 0 {width} {_HEIGHT}" font-family={quoteattr("sans-serif")}>\n'
            f'<rect width="100%" height="100%" fill="white"/>\n'
            + "\n".join(body) + "\n</svg>\n")
