"""`monoimage footprint`'s tables and exit code, from hand-made figures (pure; nothing built).

A real registry serves what it stores, so a pull that disagrees with the computed figures
cannot be made here with real tools: `test_a_pull_disagreement_exits_1` hands the command a
run whose check disagrees, in place of the pipeline (the one stand-in in this file).
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

import monoimage.cli.footprint as footprint_cli
from footprint_support import write_dnf_recipe
from monoimage.cli import main
from monoimage.cli.footprint import print_footprint
from monoimage.footprint.changes import ImageChange
from monoimage.footprint.figures import (
    FootprintReport,
    PackageDuplication,
    SitePull,
    StrategyFigures,
)
from monoimage.footprint.fleet import FleetParams, strategy_rollouts
from monoimage.footprint.pull_check import PullCheck
from monoimage.footprint.report import footprint_json
from monoimage.pipeline.footprint import (
    FootprintOptions,
    FootprintRun,
    StrategyChanges,
    StrategyImages,
)
from monoimage.plan.day2 import PackageUpdate, VersionChange
from monoimage.plan.delta import chain_cost
from monoimage.plan.resolution import Resolution, ResolvedPackage
from monoimage.recipe.load import load_recipe
from monoimage.recipe.model import Layering, Recipe
from monoimage.recipe.versions import Family

MB = 1_000_000


def strategy(name: str, images: int, first: int, disk: int, duplicated: int,
             day2: int, top: tuple[PackageDuplication, ...] = ()) -> StrategyFigures:
    return StrategyFigures(name, images, images + 1, SitePull(images, 0, images, 2 * images,
                                                              first),
                           disk, duplicated, len(top), (), top,
                           SitePull(images, images, 1, 2, day2))


REPORT = FootprintReport((
    strategy("monoimage", 1, 120 * MB, 300 * MB, 0, 4 * MB),
    strategy("kolla-style", 4, 300 * MB, 700 * MB, 90 * MB, 12_500_000,
             (PackageDuplication("libssl3", 3, 60 * MB), PackageDuplication(None, 4, 30 * MB))),
), "monoimage", "monoimage pulls 120.0 MB, kolla-style 300.0 MB (2.5× more)")
FLEET = FleetParams(sites=1000, sites_per_mirror=50)


def hand_made_run(recipe: Recipe, checks: tuple[PullCheck, ...] = ()) -> FootprintRun:
    resolution = Resolution(Family.DNF, "39", "x86_64", tuple(
        ResolvedPackage(n, "1.0-1", "noarch", 1, 1) for n in ("alpha-daemon", "libshared")))
    kolla = (f"localhost/{recipe.name}-kolla-style-base:t-day2",
             f"localhost/{recipe.name}-kolla-style-alpha:t-day2")
    return FootprintRun(
        recipe=recipe, resolution=resolution,
        images=(StrategyImages("monoimage", (f"localhost/{recipe.name}:t",)),),
        report=REPORT, rollouts=strategy_rollouts(REPORT.strategies, FLEET),
        update=PackageUpdate("libshared", "1.0-2"),
        version_changes=(VersionChange("libshared", "1.0-1", "1.0-2"),),
        changes=(StrategyChanges("kolla-style", (
            ImageChange(kolla[0], False, 1, ()),
            ImageChange(kolla[1], True, 2, (("sha256:a", 12_000_000),)))),),
        checks=checks)


@pytest.fixture
def recipe_path(tmp_path: Path) -> Path:
    return write_dnf_recipe(tmp_path, tmp_path / "repo", name="monoimage-test-print")


def printed(run: FootprintRun) -> list[str]:
    out = io.StringIO()
    print_footprint(Console(file=out, width=200, color_system=None), run, FLEET)
    return [line.rstrip() for line in out.getvalue().splitlines()]


def title(lines: list[str], starting: str) -> str:
    """A table's title, which rich wraps to the table's width, as one line."""
    first = next(i for i, x in enumerate(lines) if x.strip().startswith(starting))
    end = next(i for i in range(first, len(lines)) if lines[i].startswith("┏"))
    return " ".join(x.strip() for x in lines[first:end])


def row(lines: list[str], first_cell: str, table: int = 0) -> list[str]:
    """The cells of the row that starts with `first_cell` in the `table`-th table."""
    line = [x for x in lines if x[:1] in "│┃" and x[2:].startswith(f"{first_cell} ")][table]
    return [cell.strip() for cell in line.replace("┃", "│").strip("│").split("│")]


def test_the_site_table_has_one_row_per_strategy_in_mb(recipe_path: Path) -> None:
    lines = printed(hand_made_run(load_recipe(recipe_path)))
    assert title(lines, "monoimage-test-print") == ("monoimage-test-print: 2 packages, 3 services — per site, "
                                "measured from OCI blobs (MB = 10^6 bytes)")
    assert row(lines, "strategy") == ["strategy", "images", "blobs", "first deploy MB",
                                      "disk MB", "duplicated MB", "day-2 MB"]
    assert row(lines, "monoimage")[:7] == ["monoimage", "1", "2", "120.0", "300.0", "0.0",
                                          "4.0"]
    assert row(lines, "kolla-style")[:7] == ["kolla-style", "4", "8", "300.0", "700.0",
                                            "90.0", "12.5"]


def test_the_fleet_table_and_what_day2_changed(recipe_path: Path) -> None:
    lines = printed(hand_made_run(load_recipe(recipe_path)))
    assert title(lines, "fleet:") == ("fleet: 1,000 sites at 10 Mbit/s, 100 ms; a regional mirror per 50 sites "
                     "— bytes over the WAN, rollout time (GB = 10^9 bytes)")
    # 1,000 × 120 MB = 120 GB direct, 20 mirrors × 120 MB = 2.4 GB; a site's link is the
    # bound: 7 requests × 3 RTTs of 100 ms + 960 Mbit at 10 Mbit/s = 98.1 s. Day 2: 1,000 ×
    # 4 MB, 20 × 4 MB; 8 requests × 0.3 s + 32 Mbit at 10 Mbit/s = 5.6 s.
    assert row(lines, "monoimage", table=1) == ["monoimage", "120.0 GB, 1 min 38 s",
                                                "2.4 GB, 1 min 38 s", "4.0 GB, 6 s",
                                                "0.1 GB, 6 s"]
    assert "monoimage pulls 120.0 MB, kolla-style 300.0 MB (2.5× more)" in lines
    assert ("duplicated in kolla-style: libssl3 60.0 MB, (files of no package: package "
            "database) 30.0 MB") in lines
    assert "day 2 (libshared=1.0-2): libshared 1.0-1 → 1.0-2" in lines
    assert "  kolla-style: 1 of 2 images changed, 1 new layers: alpha 12.0 MB" in lines


def test_a_pull_that_agrees_is_one_tick_line(recipe_path: Path) -> None:
    checks = (PullCheck("monoimage", "first-deploy", 120 * MB, 120 * MB),
              PullCheck("monoimage", "day-2", 4 * MB, 4_000_400))
    lines = printed(hand_made_run(load_recipe(recipe_path), checks))
    assert lines[-1] == ("✓ real pull from a loopback registry: served bytes match the computed "
                         "first-deploy and day-2 figures of every strategy (largest difference "
                         "0.010%)")


def test_a_pull_disagreement_exits_1(recipe_path: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    disagreeing = (PullCheck("monoimage", "first-deploy", 120 * MB, 120 * MB),
                   PullCheck("kolla-style", "day-2", 12_500_000, 13_000_000))

    def run_footprint(recipe: Recipe, options: FootprintOptions, progress: object
                      ) -> FootprintRun:
        return hand_made_run(recipe, disagreeing)

    monkeypatch.setattr(footprint_cli, "run_footprint", run_footprint)
    out = tmp_path / "out"
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        main, ["footprint", str(recipe_path), "--json", "--out-dir", str(out)])
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[-1] == ("the bytes a real registry served differ from "
                                              "the computed figures by more than 1%")
    doc = json.loads(result.stdout)
    assert [v["agrees"] for v in doc["verification"]] == [True, False]
    assert json.loads((out / "footprint.json").read_text()) == doc   # written all the same


def test_a_delta_day2_shows_the_chain_s_disk_cost_beside_the_wire(recipe_path: Path) -> None:
    run = hand_made_run(load_recipe(recipe_path))
    chain = chain_cost(Layering("packages", max_deltas=8, max_shadowed=0.25), 1, 2_000_000,
                       300 * MB)
    run = dataclasses.replace(run, updated_images=(
        StrategyImages("monoimage", ("localhost/x:t-day2",), chain),))
    text = " ".join(printed(run))  # rich wraps the long line at the console's width
    assert ("delta chain of monoimage: day 2 pulls 4.0 MB; 1 delta layer (compacts past 8); "
            "they hide 2.0 MB of older files on the site's disk (0.7% of the image; compacts "
            "past 25%); next compaction: the build after 7 more deltas, or sooner once the "
            "chain hides 73.0 MB more") in text
    doc = footprint_json(run.facts(), FLEET)
    assert doc["delta_chain"] == {**chain.as_json(), "day2_bytes": 4 * MB,
                                  "single_day2_bytes": None}
    assert footprint_json(hand_made_run(load_recipe(recipe_path)).facts(),
                          FLEET)["delta_chain"] is None
