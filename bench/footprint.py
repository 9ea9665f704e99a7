"""Footprint bench: edge-lite and edge-compute, all three strategies built for real.

For each recipe: the golden image and both layered comparators; day 2 after a stand-in
security update (the pinned .deb of PACKAGE re-versioned with dpkg-deb in a local signed
repository, default libssl3); every figure checked against a real pull from a loopback
docker-registry; the estimate (repository metadata only) next to the measured figures; and
the estimate's constants as measured on this recipe's images.

Slow: edge-compute is about 750 MiB installed, built six times (three strategies, two days);
about 45 minutes on this 2-core host. Never run by the tests. Prints figures; asserts nothing.

    .venv/bin/python bench/footprint.py [RECIPE ...] [--update-package NAME] [--keep-images]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from monoimage.aptrepo import host_repositories, make_update_repository
from monoimage.build import StageEvent, default_cache_dir, resolve
from monoimage.chart import footprint_chart
from monoimage.cli.footprint import footprint_json, print_footprint
from monoimage.day2 import PackageUpdate, update_recipes
from monoimage.estimate import APT_CALIBRATION, calibrate, compare_reports, estimate_report
from monoimage.fleet import FleetParams
from monoimage.footprint import Strategy
from monoimage.footprint_run import FootprintOptions, FootprintRun, remove_images, run_footprint
from monoimage.oci import load_image
from monoimage.packagers.base import Resolution
from monoimage.recipe_parse import load_recipe

REPO = Path(__file__).resolve().parents[1]
RECIPES = ("recipes/edge-lite.yaml", "recipes/edge-compute.yaml")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipes", nargs="*", default=RECIPES)
    parser.add_argument("--update-package", default="libssl3")
    parser.add_argument("--keep-images", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "bench")
    args = parser.parse_args()
    console = Console(width=130)
    for path in args.recipes:
        bench(REPO / path, args.update_package, args.out, args.keep_images, console)
    return 0


def bench(path: Path, package: str, out: Path, keep: bool, console: Console) -> None:
    recipe = load_recipe(path)
    cache = default_cache_dir()
    started = time.monotonic()
    console.rule(f"{recipe.name}: {path.relative_to(REPO)}")

    def progress(event: StageEvent) -> None:
        if event.state == "done":
            console.print(f"  {time.monotonic() - started:7.1f}s  {event.stage} "
                          f"({event.elapsed:.1f}s)")

    with tempfile.TemporaryDirectory(prefix="monoimage-bench-") as scratch:
        resolution = resolve(recipe, cache_dir=cache)
        made = make_update_repository(recipe, resolution.package(package),
                                      Path(scratch) / "repo", cache_dir=cache)
        options = FootprintOptions(
            tag="bench", cache_dir=cache, out_dir=out / recipe.name,
            update=PackageUpdate(package, made.version),
            extra_repositories=(made.repository,), host_repositories=host_repositories(),
            verify=True)
        run = run_footprint(recipe, options, progress)
        try:
            after = resolve(update_recipes(recipe, resolution, options.update,
                                           options.extra_repositories,
                                           options.host_repositories).after, cache_dir=cache)
            report(run, after, options, out / recipe.name, console,
                   time.monotonic() - started)
        finally:
            if not keep:
                remove_images(run.references)


def report(run: FootprintRun, after_resolution: Resolution, options: FootprintOptions,
           out: Path, console: Console, seconds: float) -> None:
    fleet = FleetParams()
    print_footprint(console, run, fleet)
    out.mkdir(parents=True, exist_ok=True)
    (out / "footprint.json").write_text(json.dumps(footprint_json(run, fleet), indent=2))
    (out / "footprint.svg").write_text(footprint_chart(run.report,
                                                       f"{run.recipe.name}: bytes a site pulls"))
    services = [s.name for s in run.recipe.services]
    estimated = estimate_report(run.recipe, run.resolution, after_resolution, APT_CALIBRATION)
    table = Table(title=f"{run.recipe.name}: estimate (metadata only, "
                        f"{APT_CALIBRATION.source}) vs measured (MB = 10^6 bytes)")
    for column in ("strategy", "figure", "estimated MB", "measured MB", "error"):
        table.add_column(column, justify="left" if column in ("strategy", "figure")
                         else "right")
    for check in compare_reports(estimated, run.report):
        table.add_row(check.strategy, check.figure, f"{check.estimated / 1e6:,.1f}",
                      f"{check.measured / 1e6:,.1f}", f"{check.relative_error:+.1%}")
    console.print(table)
    images = [Strategy(s.name, tuple(load_image(ref, options.oci_cache)
                                     for ref in s.references)) for s in run.images]
    measured = calibrate(run.resolution, services, images, run.recipe.name)
    console.print(f"constants measured on {run.recipe.name}: K={measured.layer_per_download} "
                  f"U={measured.disk_per_installed} "
                  f"DB_GZ={measured.database_gz_per_package} B/package "
                  f"DB_DISK={measured.database_disk_per_package} B/package "
                  f"META={measured.image_metadata} B/image")
    console.print(f"{len(run.resolution.packages)} packages, "
                  f"{run.resolution.download_size / 1e6:,.1f} MB download, "
                  f"{run.resolution.installed_size / 2**20:,.1f} MiB installed; "
                  f"bench took {seconds / 60:.1f} min; figures in {out}")


if __name__ == "__main__":
    sys.exit(main())
