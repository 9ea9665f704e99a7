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
import statistics
import sys
import tarfile
import tempfile
import time
import zlib
from pathlib import Path

from rich.console import Console
from rich.table import Table

from monoimage.cli.footprint import print_footprint
from monoimage.footprint.chart import footprint_chart
from monoimage.footprint.estimate import (
    APT_CALIBRATION,
    Calibration,
    compare_reports,
    estimate_report,
    generates_byte_code,
)
from monoimage.footprint.figures import Strategy
from monoimage.footprint.fleet import FleetParams
from monoimage.footprint.oci import entry_from_tarinfo
from monoimage.footprint.report import footprint_json
from monoimage.pipeline.build import resolve
from monoimage.pipeline.footprint import (
    FootprintOptions,
    FootprintRun,
    package_owners,
    remove_images,
    run_footprint,
)
from monoimage.pipeline.stages import StageEvent
from monoimage.plan.comparator_plan import plan_layered
from monoimage.plan.day2 import PackageUpdate, update_recipes
from monoimage.plan.resolution import Resolution
from monoimage.recipe.load import load_recipe
from monoimage.tools.cache_dir import default_cache_dir
from monoimage.tools.packagers.apt_sources import host_repositories
from monoimage.tools.packagers.update_repository import make_update_repository
from monoimage.tools.skopeo import EXPORTS as OCI_EXPORTS
from monoimage.tools.skopeo import load_image, open_layer_blob

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
        update = PackageUpdate(package, made.version)
        options = FootprintOptions(
            tag="bench", cache_dir=cache, out_dir=out / recipe.name, update=update,
            extra_repositories=(made.repository,), host_repositories=host_repositories(),
            verify=True)
        run = run_footprint(recipe, options, progress)
        try:
            after = resolve(update_recipes(recipe, resolution, update,
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
    (out / "footprint.json").write_text(json.dumps(footprint_json(run.facts(), fleet), indent=2))
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
    measured = measure_calibration(run, services, images, options.oci_cache)
    console.print(f"estimate constants measured on {run.recipe.name}: "
                  + ", ".join(f"{k}={v}" for k, v in measured.as_json().items()
                              if k != "source"))
    console.print(f"{len(run.resolution.packages)} packages, "
                  f"{run.resolution.download_size / 1e6:,.1f} MB download, "
                  f"{run.resolution.installed_size / 2**20:,.1f} MiB installed; "
                  f"bench took {seconds / 60:.1f} min; figures in {out}")


def measure_calibration(run: FootprintRun, services: list[str], images: list[Strategy],
                        oci_cache: Path | None) -> Calibration:
    """The estimate's constants, measured on this run's images (how APT_CALIBRATION was made).

    The golden image's one layer is read file by file and split by owner (dpkg's file lists):
    files of Python packages and the byte code compiled at install (`__pycache__`), files of
    other packages, and files of no package (the package database, ld.so.cache, …). Each
    class is gzipped on its own and the three compressed sizes scaled to add up to the real
    blob. K, U per class: those bytes over the packages' ΣD, ΣI; ROOT_DB per package. DB_DISK:
    the files of no package (byte code aside) in a child's layer, per package the image holds,
    the median over the children that install something (a median: a few children also ship
    files a trigger generated, such as udev's 13 MB hwdb.bin); DB_GZ: DB_DISK compressed as the
    golden image's files of no package compress. META: mean manifest + config bytes.
    """
    family = run.recipe.distro.packager
    golden_ref = run.images[0].references[0]
    layer = images[0].images[0].layers[0]
    owner = package_owners(golden_ref, family)
    python = {p.name for p in run.resolution.packages if generates_byte_code(p, family)}
    raw = {k: 0 for k in ("python", "other", "none")}
    packed = {k: zlib.compressobj(6, zlib.DEFLATED, 31) for k in raw}
    gz = {k: 0 for k in raw}
    blob = (oci_cache or default_cache_dir() / OCI_EXPORTS) / "layout" / "blobs" / "sha256"
    with open_layer_blob(blob / layer.blob.digest.removeprefix("sha256:"),
                         layer.blob.media_type) as stream, tarfile.open(fileobj=stream,
                                                                         mode="r|") as tar:
        for member in tar:
            if not member.isreg():
                continue
            path = entry_from_tarinfo(member).path
            who = owner(path)
            kind = ("python" if who in python or (who is None and "/__pycache__/" in path)
                    else "none" if who is None else "other")
            content = tar.extractfile(member)
            data = content.read() if content else b""
            raw[kind] += len(data)
            gz[kind] += len(packed[kind].compress(data))
    for kind in raw:
        gz[kind] += len(packed[kind].flush())
    scale = layer.blob.size / sum(gz.values())
    packages = run.resolution.packages
    py = [p for p in packages if p.name in python]
    other = [p for p in packages if p.name not in python]

    def ratio(value: float, total: int) -> float:
        return round(value / total, 3) if total else 0.0

    k = ratio(gz["other"] * scale, sum(p.download_size for p in other))
    u = ratio(raw["other"], sum(p.installed_size for p in other))
    k_py = ratio(gz["python"] * scale, sum(p.download_size for p in py))
    u_py = ratio(raw["python"], sum(p.installed_size for p in py))
    root_gz, root_disk = gz["none"] * scale, raw["none"]
    per_held = []
    for strategy in images[1:]:
        plan = plan_layered(run.resolution, services, strategy.name)  # type: ignore[arg-type]
        for child, image in zip(plan.children, strategy.images[1:], strict=True):
            if child.packages:
                database = sum(f.size for f in image.layers[-1].files
                               if f.kind == "file" and owner(f.path) is None
                               and "/__pycache__/" not in f.path)
                per_held.append(database / (len(plan.base) + len(child.packages)))
    child_disk = statistics.median(per_held)
    every = [image for strategy in images for image in strategy.images]
    return Calibration(
        k, u, k_py, u_py, round(root_gz / len(packages)), round(root_disk / len(packages)),
        database_gz_per_package=round(child_disk * root_gz / root_disk),
        database_disk_per_package=round(child_disk),
        image_metadata=round(sum(i.manifest.size + i.config.size for i in every) / len(every)),
        source=run.recipe.name)

if __name__ == "__main__":
    sys.exit(main())
