"""Footprint bench: every strategy × layering × day-2 case, built for real and pulled for real.

Three day-2 cases (issue 10): (a) edge-lite, libtirpc3, a library three services share;
(b) edge-compute, libssl3, a base package: the real Debian security update when the build
host's apt sources carry an older libssl3 beside the one the recipe resolves (bookworm's point
release beside bookworm-security), else the stand-in; (c) edge-compute, ovmf, a large service
package (qemu's firmware, stand-in). A stand-in is the pinned .deb re-versioned with dpkg-deb in
a local signed repository. Per case, `run_footprint` builds day 1 and day 2 of monoimage
(`packages` layering, day 2 keeping day 1's layers), its `single` variant, kolla-style and
shared-base, then once more the golden image alone with `updates: delta`; every figure is
checked against a real pull from a loopback docker-registry (served = computed).

The matrix gives, per row, the first deploy, the day-2 bytes, the ratio to kolla-style's day 2
and to the .deb floor (the compressed .deb bytes of the packages that changed), and the
targets: delta ≤ 1.5× floor + 64 KiB; packages ≤ kolla-style / 5; first deploy with packages
≤ 1.01× single; layers ≤ 100.

Slow: edge-compute is about 750 MiB installed; one case is about 30 minutes on this 2-core
host. Never run by the tests.

    .venv/bin/python bench/footprint.py [--case a|b|c ...] [--keep-images] [--details]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tarfile
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from monoimage.cli.footprint import print_footprint
from monoimage.errors import UserError
from monoimage.footprint.chart import footprint_chart
from monoimage.footprint.estimate import (
    APT_CALIBRATION,
    Calibration,
    compare_reports,
    estimate_report,
    generates_byte_code,
)
from monoimage.footprint.figures import MONOIMAGE, MONOIMAGE_SINGLE, Strategy, StrategyFigures
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
from monoimage.plan.day2 import PackageUpdate, Repository, update_recipes, version_changes
from monoimage.plan.resolution import Resolution
from monoimage.recipe.load import load_recipe
from monoimage.recipe.model import Recipe
from monoimage.tools.cache_dir import default_cache_dir
from monoimage.tools.packagers.apt_sources import host_repositories
from monoimage.tools.packagers.update_repository import make_update_repository
from monoimage.tools.skopeo import EXPORTS as OCI_EXPORTS
from monoimage.tools.skopeo import load_image, open_layer_blob

REPO = Path(__file__).resolve().parents[1]
DELTA_SLACK = 64 * 1024
MAX_LAYERS = 100


@dataclass(frozen=True)
class Case:
    """One day-2 case: which recipe, which package the update brings."""

    key: str
    recipe: str
    package: str
    real_if_available: bool = False


CASES = (
    Case("a", "recipes/edge-lite.yaml", "libtirpc3"),
    Case("b", "recipes/edge-compute.yaml", "libssl3", real_if_available=True),
    # qemu-system-x86 alone cannot be a stand-in: qemu-block-extra wants exactly its version
    # or another emulator's, so day 2 would add qemu-system-arm; ovmf, qemu's 7.7 MB UEFI
    # firmware that nova-compute and nova-libvirt need, has no such sibling
    Case("c", "recipes/edge-compute.yaml", "ovmf"),
)


@dataclass(frozen=True)
class Row:
    """One line of the matrix."""

    case: str
    strategy: str
    layering: str
    figures: StrategyFigures
    served_ok: bool


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", choices=[c.key for c in CASES])
    parser.add_argument("--keep-images", action="store_true")
    parser.add_argument("--details", action="store_true",
                        help="also the full footprint tables, the estimate and its constants")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "bench")
    args = parser.parse_args()
    console = Console(width=140)
    for case in CASES:
        if args.case is None or case.key in args.case:
            bench(case, args.out, args.keep_images, args.details, console)
    return 0


def bench(case: Case, out: Path, keep: bool, details: bool, console: Console) -> None:
    recipe = load_recipe(REPO / case.recipe)
    cache = default_cache_dir()
    started = time.monotonic()
    console.rule(f"({case.key}) {recipe.name}: day 2 = {case.package}")

    def progress(event: StageEvent) -> None:
        if event.state == "done":
            console.print(f"  {time.monotonic() - started:7.1f}s  {event.stage} "
                          f"({event.elapsed:.1f}s)")

    with tempfile.TemporaryDirectory(prefix="monoimage-bench-") as scratch:
        Path(scratch).chmod(0o755)  # apt's sandbox user (_apt) reads the stand-in repository
        resolution = resolve(recipe, cache_dir=cache)
        hosts = host_repositories()
        update, extra, kind = choose_update(case, recipe, resolution, hosts, Path(scratch),
                                            cache)
        console.print(f"  update: {update} ({kind})")
        options = FootprintOptions(
            tag=f"bench-{case.key}", cache_dir=cache, out_dir=out / recipe.name,
            update=update, extra_repositories=extra, host_repositories=hosts, verify=True)
        layered = run_footprint(recipe, options, progress)
        print_footprint(console, layered, FleetParams())  # before the delta run's half hour
        delta_recipe = dataclasses.replace(
            recipe, layering=dataclasses.replace(recipe.layering, updates="delta"))
        delta = run_footprint(delta_recipe, dataclasses.replace(
            options, tag=f"bench-{case.key}-delta", comparators=False), progress)
        try:
            after = resolve(update_recipes(recipe, resolution, update, extra, hosts).after,
                            cache_dir=cache)
            floor = sum(after.package(c.name).download_size
                        for c in version_changes(layered.resolution, after)
                        if c.after is not None)
            print_matrix(console, case, kind, layered, delta, floor)
            if details:
                report(layered, after, options, out / recipe.name, console,
                       time.monotonic() - started)
            console.print(f"  case ({case.key}) took {(time.monotonic() - started) / 60:.1f} "
                          f"min")
        finally:
            if not keep:
                remove_images(layered.references + delta.references)


def choose_update(case: Case, recipe: Recipe, resolution: Resolution,
                  hosts: tuple[Repository, ...], scratch: Path, cache: Path
                  ) -> tuple[PackageUpdate, tuple[Repository, ...], str]:
    """The real update when the sources carry an older version to start from, else a stand-in."""
    current = resolution.package(case.package)
    if case.real_if_available:
        real = PackageUpdate(case.package, current.version)
        try:
            before = update_recipes(recipe, resolution, real, (), hosts).before
            old = resolve(before, cache_dir=cache).package(case.package).version
            return real, (), f"real Debian update, {old} → {current.version}"
        except UserError as err:
            print(f"  no real update of {case.package} in the sources ({err}); stand-in")
    made = make_update_repository(recipe, current, scratch / "repo", cache_dir=cache)
    return PackageUpdate(case.package, made.version), (made.repository,), "stand-in"


def matrix_rows(case: Case, layered: FootprintRun, delta: FootprintRun) -> list[Row]:
    """Every strategy × layering of one case, from the two runs."""
    def served_ok(run: FootprintRun, name: str) -> bool:
        return all(c.agrees() for c in run.checks if c.name == name)

    layering = {MONOIMAGE: "packages", MONOIMAGE_SINGLE: "single"}
    rows = [Row(case.key, f.name, layering.get(f.name, "per image"), f,
                served_ok(layered, f.name)) for f in layered.report.strategies]
    golden = next(f for f in delta.report.strategies if f.name == MONOIMAGE)
    rows.insert(1, Row(case.key, MONOIMAGE, "delta", golden, served_ok(delta, MONOIMAGE)))
    return rows


def print_matrix(console: Console, case: Case, kind: str, layered: FootprintRun,
                 delta: FootprintRun, floor: int) -> None:
    """The case's matrix and its targets."""
    rows = matrix_rows(case, layered, delta)
    kolla = next(r.figures for r in rows if r.strategy == "kolla-style")
    kolla_day2 = kolla.day2.bytes if kolla.day2 else 0
    table = Table(title=f"({case.key}) {layered.recipe.name}, day 2 {case.package} ({kind}); "
                        f".deb floor {floor:,} B")
    for column in ("strategy", "layering", "layers", "first deploy B", "day-2 B",
                   "× kolla day 2", "× .deb floor", "served = computed"):
        table.add_column(column, justify="left" if column in ("strategy", "layering")
                         else "right")
    for row in rows:
        day2 = row.figures.day2.bytes if row.figures.day2 else 0
        table.add_row(row.strategy, row.layering, str(row.figures.layers),
                      f"{row.figures.first_deploy.bytes:,}", f"{day2:,}",
                      f"{day2 / kolla_day2:.4f}", f"{day2 / floor:.2f}",
                      "yes" if row.served_ok else "NO")
    console.print(table)
    for line in target_lines(rows, kolla_day2, floor):
        console.print(f"  {line}")
    if delta.delta_chain is not None:  # what the delta's wire savings cost the site's disk
        console.print(f"  delta chain: {delta.delta_chain.line()}")


def target_lines(rows: list[Row], kolla_day2: int, floor: int) -> list[str]:
    """Issue 10's targets, each with its figure and whether it holds."""
    def of(layering: str) -> StrategyFigures:
        return next(r.figures for r in rows if r.strategy.startswith(MONOIMAGE)
                    and r.layering == layering)

    packages, single, delta = of("packages"), of("single"), of("delta")
    delta_day2 = delta.day2.bytes if delta.day2 else 0
    packages_day2 = packages.day2.bytes if packages.day2 else 0
    checks = [
        ((f"delta {delta_day2:,} B ≤ 1.5 × {floor:,} + 64 KiB = "
         f"{1.5 * floor + DELTA_SLACK:,.0f} B"), delta_day2 <= 1.5 * floor + DELTA_SLACK),
        (f"packages {packages_day2:,} B ≤ kolla-style / 5 = {kolla_day2 / 5:,.0f} B",
         packages_day2 <= kolla_day2 / 5),
        ((f"first deploy packages {packages.first_deploy.bytes:,} B ≤ 1.01 × single "
         f"{single.first_deploy.bytes:,} B "
         f"({packages.first_deploy.bytes / single.first_deploy.bytes:.4f}×)"),
         packages.first_deploy.bytes <= 1.01 * single.first_deploy.bytes),
        (f"layers: packages {packages.layers}, delta {delta.layers} ≤ {MAX_LAYERS}",
         max(packages.layers, delta.layers) <= MAX_LAYERS),
    ]
    return [f"{'met ' if ok else 'MISSED'} {text}" for text, ok in checks]


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
