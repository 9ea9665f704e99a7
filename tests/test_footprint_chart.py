"""chart: the footprint SVG is well-formed and says what it shows."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from monoimage.footprint.chart import footprint_chart, nice_step
from monoimage.footprint.figures import FootprintReport, SitePull, StrategyFigures

SVG = "{http://www.w3.org/2000/svg}"


def figures(name: str, first: int, day2: int | None) -> StrategyFigures:
    def pull(size: int) -> SitePull:
        return SitePull(1, 0, 1, 2, size)

    return StrategyFigures(name, 1, 2, pull(first), first * 2, 0, 0, (), (),
                           pull(day2) if day2 is not None else None)


def texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_chart_shows_both_figures_per_strategy_with_values_in_mb() -> None:
    report = FootprintReport((figures("monoimage", 312_400_000, 12_100_000),
                              figures("kolla-style", 1_203_000_000, 1_100_000_000),
                              figures("shared-base <&>", 845_100_000, 640_000)),
                             "monoimage", "verdict")
    svg = footprint_chart(report)
    root = ET.fromstring(svg)
    labels = texts(svg)
    assert "Bytes a site pulls, per strategy" in labels
    assert {"First deploy", "Day-2 update"} <= set(labels)
    assert {"312 MB", "1,203 MB", "845 MB", "12.1 MB", "1,100 MB", "0.64 MB"} <= set(labels)
    assert labels.count("shared-base <&>") == 2  # escaped in the file, intact when parsed
    assert labels.count("MB pulled per site") == 2
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert len(bars) == 6
    heights = [float(r.get("height", "0")) for r in bars]
    assert heights[1] > heights[2] > heights[0]  # first-deploy bars in proportion


def test_without_day2_the_chart_has_one_panel() -> None:
    report = FootprintReport((figures("monoimage", 5_000_000, None),), "monoimage", "")
    labels = texts(footprint_chart(report))
    assert "Day-2 update" not in labels
    assert "5.0 MB" in labels


def test_zero_bytes_draw_an_empty_bar_not_a_division_by_zero() -> None:
    report = FootprintReport((figures("monoimage", 0, 0),), "monoimage", "")
    assert "0 MB" in texts(footprint_chart(report))


@pytest.mark.parametrize(("maximum", "step"), [(312.4, 100), (1203, 500), (0.64, 0.2),
                                               (8, 2), (0, 1)])
def test_axis_steps_are_round(maximum: float, step: float) -> None:
    assert nice_step(maximum) == pytest.approx(step)
