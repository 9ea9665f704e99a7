"""Computed figures against a real pull: buildah images, docker-registry on loopback, skopeo.

Three toy strategies (tests/test_footprint_images.py) are built, measured from their OCI blobs,
pushed to a fresh registry and pulled into empty site storage roots; the bytes the registry
served must match the computed first-deploy and day-2 bytes within 1% (they match exactly).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from monoimage.footprint.chart import footprint_chart
from monoimage.footprint.figures import FootprintReport, Strategy, footprint_report
from monoimage.footprint.pull_check import Deployment, MeasuredPull, check_pulls
from monoimage.tools.registry import measure_deployments
from monoimage.tools.skopeo import load_image
from test_footprint_images import ToyStrategies, build_strategies, image_builder, owner

pytestmark = [pytest.mark.build, pytest.mark.tools]


@dataclass(frozen=True)
class Measured:
    before: ToyStrategies
    after: ToyStrategies
    report: FootprintReport
    pulls: dict[str, MeasuredPull]


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Measured]:
    cache = tmp_path_factory.mktemp("oci-cache")
    with image_builder("pull") as builder:
        before = build_strategies(builder, {}, "v1")
        after = build_strategies(builder, {"libshared": 2}, "v2")  # one package updated

        def strategies(toys: ToyStrategies) -> list[Strategy]:
            return [Strategy(name, tuple(load_image(ref, cache) for ref in refs))
                    for name, refs in toys.by_name().items()]

        report = footprint_report(strategies(before), strategies(after), owner=owner)
        deployments = [Deployment(name, refs, after.by_name()[name])
                       for name, refs in before.by_name().items()]
        pulls = {m.name: m for m in measure_deployments(deployments)}
        yield Measured(before, after, report, pulls)


# Counted by hand from the toy images (tests/test_footprint_images.py): what a site GETs.
# first deploy: monoimage 1 image of 4 layers; kolla-style a base and 3 children of one layer
# each; shared-base a base, libshared on it, 3 children on that. Day 2 (libshared 2): the
# libshared and package-database layers of monoimage; kolla-style's two children that ship
# libshared; every shared-base image (its libshared layer is below all of them).
EXPECTED = {  # name: (first-deploy manifests, blobs; day-2 checks, manifests, blobs)
    "monoimage": (1, 4 + 1, 1, 1, 2 + 1),
    "kolla-style": (4, 4 + 4, 4, 2, 2 + 2),
    "shared-base": (4, 5 + 4, 4, 4, 4 + 4),
}


def test_first_deploy_bytes_served_match_the_computed_figure(measured: Measured) -> None:
    for figures in measured.report.strategies:
        pull = measured.pulls[figures.name].first_deploy
        manifests, blobs, *_ = EXPECTED[figures.name]
        # Not only within the 1% the design asks: the same blobs, byte for byte.
        assert pull.blob_bytes == figures.first_deploy.bytes, figures.name
        assert pull.count("GET", "manifests") == figures.first_deploy.manifests == manifests
        assert pull.count("GET", "blobs") == figures.first_deploy.blobs == blobs


def test_day2_bytes_served_match_the_computed_figure(measured: Measured) -> None:
    for figures in measured.report.strategies:
        assert figures.day2 is not None
        pull = measured.pulls[figures.name].day2
        assert pull is not None
        _, _, checks, manifests, blobs = EXPECTED[figures.name]
        assert pull.blob_bytes == figures.day2.bytes, figures.name
        assert pull.count("HEAD", "manifests") == figures.day2.checks == checks
        assert pull.count("GET", "manifests") == figures.day2.manifests == manifests
        assert pull.count("GET", "blobs") == figures.day2.blobs == blobs


def test_the_toy_strategies_rank_as_the_design_says(measured: Measured) -> None:
    by_name = {f.name: f for f in measured.report.strategies}
    mono, kolla, shared = by_name["monoimage"], by_name["kolla-style"], by_name["shared-base"]
    assert mono.first_deploy.bytes < shared.first_deploy.bytes < kolla.first_deploy.bytes
    assert mono.disk_bytes < kolla.disk_bytes
    # kolla ships libshared in two children; shared-base and monoimage hold it once.
    assert [p.package for p in kolla.top_packages][:1] == ["libshared"]
    assert kolla.top_packages[0].bytes_wasted == 790_000
    assert "libshared" not in {p.package for p in shared.top_packages}
    assert "libshared" not in {p.package for p in mono.top_packages}
    # The package database is rewritten in every layer that installs something.
    assert "/var/lib/dpkg/status" in {f.path for f in kolla.top_files}
    assert measured.report.verdict.startswith("monoimage pulls ")
    assert "kolla-style" in measured.report.verdict and "× more" in measured.report.verdict


def test_monoimage_day2_re_pulls_only_the_changed_package_layer(measured: Measured) -> None:
    mono = next(f for f in measured.report.strategies if f.name == "monoimage")
    assert mono.day2 is not None
    # libshared's layer, the package-database layer, a config and a manifest.
    assert mono.day2.blobs == 3 and mono.day2.manifests == 1
    assert mono.day2.bytes < mono.first_deploy.bytes / 3


def test_check_pulls_reports_every_figure_as_agreeing(measured: Measured) -> None:
    checks = check_pulls(measured.report, list(measured.pulls.values()))
    assert [(c.name, c.figure) for c in checks] == [
        (name, figure) for name in ("monoimage", "kolla-style", "shared-base")
        for figure in ("first-deploy", "day-2")]
    assert all(c.agrees() and c.relative_error == 0 for c in checks)


def test_chart_of_the_measured_report_is_written(measured: Measured, tmp_path: Path) -> None:
    chart = tmp_path / "footprint.svg"
    chart.write_text(footprint_chart(measured.report))
    assert "kolla-style" in chart.read_text()
