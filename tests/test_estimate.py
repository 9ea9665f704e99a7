"""Estimate mode: the footprint predicted from repository metadata, checked by hand on a toy
closure, and against edge-lite's real images (within 10%; the constants were measured on
edge-compute, not on edge-lite)."""

from __future__ import annotations

import pytest

from monoimage.footprint.estimate import (
    APT_CALIBRATION,
    Calibration,
    compare_reports,
    estimate_report,
    predicted_strategies,
)
from monoimage.footprint.figures import FootprintReport, Strategy, StrategyFigures
from monoimage.pipeline.footprint import FootprintRun
from monoimage.plan.resolution import Resolution, ResolvedPackage
from monoimage.recipe.model import Distro, FamilyPackages, PackageRequest, Recipe, Service
from monoimage.recipe.versions import Family

# Round constants so that every figure can be worked out by hand.
CAL = Calibration(layer_per_download=2.0, disk_per_installed=0.5,
                  python_layer_per_download=4.0, python_disk_per_installed=1.0,
                  root_database_gz_per_package=5, root_database_disk_per_package=50,
                  database_gz_per_package=10, database_disk_per_package=100,
                  image_metadata=1_000, source="test")


def pkg(name: str, version: str = "1", *depends: str, by: tuple[str, ...] = (),
        base: bool = False, download: int = 1_000, installed: int = 4_000) -> ResolvedPackage:
    return ResolvedPackage(name, version, "amd64", download, installed, by, tuple(depends),
                           base)


def resolution(*packages: ResolvedPackage) -> Resolution:
    return Resolution(Family.APT, "bookworm", "amd64",
                      tuple(sorted(packages, key=lambda p: p.name)))


# libc in the minimal set; libshared needed by web and mqtt; dns on its own.
DAY1 = resolution(
    pkg("libc", base=True, download=10_000, installed=40_000),
    pkg("libshared", "1", "libc", download=2_000, installed=8_000),
    pkg("web", "1", "libshared", by=("web",)),
    pkg("mqtt", "1", "libshared", by=("mqtt",)),
    pkg("dns", "1", "libc", by=("dns",)),
)
SERVICES = ("web", "mqtt", "dns")
RECIPE = Recipe(name="toy", tag="1", source="toy.yaml", digest="sha256:0",
                distro=Distro("debian", "bookworm", Family.APT),
                services=tuple(Service(name=s, source=f"{s}.yaml", packages=FamilyPackages(
                    common=(PackageRequest(s),))) for s in SERVICES))


def figures(report: FootprintReport, name: str) -> StrategyFigures:
    return next(f for f in report.strategies if f.name == name)


def _single(strategies: list[Strategy]) -> Strategy:
    return next(s for s in strategies if s.name == "monoimage-single")


def test_golden_image_is_one_layer_of_every_package() -> None:
    golden = _single(predicted_strategies(DAY1, SERVICES, CAL))
    assert len(golden.images) == 1 and len(golden.images[0].layers) == 1
    layer = golden.images[0].layers[0]
    assert layer.blob.size == 2 * 15_000 + 5 * 5  # K × ΣD + ROOT_DB_GZ × N
    assert layer.uncompressed_size == 0.5 * 60_000 + 50 * 5  # U × ΣI + ROOT_DB_DISK × N


def test_kolla_style_ships_the_shared_library_in_each_child_that_needs_it() -> None:
    report = estimate_report(RECIPE, DAY1, None, CAL)
    kolla = figures(report, "kolla-style")
    # base: libc (20,000 + 5); web, mqtt: libshared + own = 6,000 + 10 × 3 held packages;
    # dns: 2,000 + 10 × 2; four images' metadata
    assert kolla.first_deploy.bytes == 20_005 + 2 * (6_000 + 30) + (2_000 + 20) + 4 * 1_000
    # duplicated: libshared's files once too many (4,000), the rewritten database in each
    # child beside the base's: copies of 50 (base), 300, 300, 200 → all but the largest
    assert kolla.duplicated_bytes == 4_000 + (50 + 300 + 200)
    shared = figures(report, "shared-base")
    assert shared.first_deploy.bytes < kolla.first_deploy.bytes
    assert shared.duplicated_bytes == 100 + 300 + 300  # databases only (base holds 2 pkgs)
    assert figures(report, "monoimage").duplicated_bytes == 0


def test_a_child_that_installs_nothing_ships_no_database_copy() -> None:
    # both services need only libshared: shared-base puts it in the base, children are empty
    both = resolution(pkg("libc", base=True), pkg("libshared", "1", "libc", by=("a", "b")))
    shared = next(s for s in predicted_strategies(both, ("a", "b"), CAL)
                  if s.name == "shared-base")
    for child in shared.images[1:]:
        assert child.layers[-1].blob.size == 0 and child.layers[-1].files == ()


def test_python_packages_count_their_byte_code_on_apt_only() -> None:
    python = resolution(pkg("python3-yaml", download=1_000, installed=4_000))
    layer = _single(predicted_strategies(python, (), CAL)).images[0].layers[0]
    assert layer.blob.size == 4 * 1_000 + 5 and layer.uncompressed_size == 4_000 + 50
    rpm = Resolution(Family.DNF, "39", "x86_64", python.packages)
    layer = _single(predicted_strategies(rpm, (), CAL)).images[0].layers[0]
    assert layer.blob.size == 2 * 1_000 + 5  # rpm ships its byte code in the package


def test_day2_of_a_child_library_changes_the_children_that_ship_it() -> None:
    day2 = resolution(*(p if p.name != "libshared" else pkg("libshared", "2", "libc",
                                                            download=2_000, installed=8_000)
                        for p in DAY1.packages))
    report = estimate_report(RECIPE, DAY1, day2, CAL)
    kolla = figures(report, "kolla-style").day2
    assert kolla is not None
    assert kolla.bytes == 2 * (6_000 + 30 + 1_000)  # web and mqtt: new layer and metadata
    assert kolla.manifests == 2
    shared = figures(report, "shared-base").day2
    assert shared is not None and shared.manifests == 4  # the base changed: all rebuilt
    single = figures(report, "monoimage-single")
    assert single.day2 is not None and single.day2.bytes == single.first_deploy.bytes
    mono = figures(report, "monoimage")  # layers by package: libshared's layer, metadata
    assert mono.day2 is not None and mono.day2.bytes < 0.5 * mono.first_deploy.bytes


def test_day2_of_a_base_package_changes_every_layered_image() -> None:
    day2 = resolution(*(p if p.name != "libc" else pkg("libc", "2", base=True,
                                                       download=10_000, installed=40_000)
                        for p in DAY1.packages))
    report = estimate_report(RECIPE, DAY1, day2, CAL)
    for name in ("kolla-style", "shared-base"):
        pulled = figures(report, name).day2
        assert pulled is not None and pulled.manifests == 4
        assert pulled.bytes == figures(report, name).first_deploy.bytes


# ---------------------------------------------------------------- against real images


@pytest.mark.build
@pytest.mark.tools
def test_estimate_is_within_ten_percent_of_measured_on_edge_lite(
        edge_lite_strategies: FootprintRun) -> None:
    run = edge_lite_strategies
    assert "edge-lite" not in APT_CALIBRATION.source  # measured elsewhere: a real check
    estimated = estimate_report(run.recipe, run.resolution, None, APT_CALIBRATION)
    checks = {(c.strategy, c.figure): c for c in compare_reports(estimated, run.report)}
    for strategy in ("monoimage", "kolla-style", "shared-base"):
        for figure in ("first deploy", "disk"):
            check = checks[(strategy, figure)]
            assert abs(check.relative_error) <= 0.10, check
    # duplicated bytes are smaller figures, built from the package database's copies: 25%
    for strategy in ("kolla-style", "shared-base"):
        check = checks[(strategy, "duplicated")]
        assert abs(check.relative_error) <= 0.25, check
