"""Delta day 2 measured for real (dnf fixture): the golden image's day-2 build is a delta over
day 1 (`layering: {updates: delta}`), a real pull from a loopback registry serves exactly the
computed bytes, and a site fetches about the updated package's own size."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from footprint_support import make_dnf_repo, remove_images_named, write_dnf_recipe
from monoimage.footprint.fleet import FleetParams
from monoimage.footprint.report import footprint_json
from monoimage.image import LABEL_LAYER_PLAN
from monoimage.pipeline.footprint import FootprintOptions, FootprintRun, run_footprint
from monoimage.plan.day2 import PackageUpdate
from monoimage.plan.layer_record import parse_record
from monoimage.recipe.load import load_recipe
from monoimage.tools import buildah

pytestmark = pytest.mark.build
# The fixture's image is about 1.3 MB: the updated library and the rewritten rpm database are a
# third of it, past the default compaction share (0.25) that suits real images.
DELTA = "layering: {policy: packages, updates: delta, max_shadowed: 0.5}\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FootprintRun]:
    folder = tmp_path_factory.mktemp("dnf-delta")
    name = f"monoimage-test-dnf-delta-{secrets.token_hex(3)}"
    repo = make_dnf_repo(folder / "repo", with_update=True)
    path = write_dnf_recipe(folder / "recipe", repo, name)
    path.write_text(path.read_text() + DELTA)
    try:
        yield run_footprint(load_recipe(path), FootprintOptions(
            tag="t", cache_dir=folder / "cache", out_dir=folder / "out",
            oci_cache=folder / "oci", with_init_python=False,
            update=PackageUpdate("libshared", "1.0-2"), verify=True))
    finally:
        remove_images_named(f"localhost/{name}")


def _diff_ids(reference: str) -> list[str]:
    return list(buildah.inspect_image(reference)["OCIv1"]["rootfs"]["diff_ids"])


def test_day2_golden_image_is_day1_plus_one_layer(run: FootprintRun) -> None:
    day1, day2 = run.images[0].references[0], run.updated_images[0].references[0]
    assert _diff_ids(day2)[:-1] == _diff_ids(day1)


def test_served_bytes_equal_computed_bytes_for_delta_day2(run: FootprintRun) -> None:
    checks = {(c.name, c.figure): c for c in run.checks}
    check = checks[("monoimage", "day-2")]
    assert check.served == check.computed > 0


def test_a_site_pulls_about_the_updated_package_and_far_less_than_kolla_style(
        run: FootprintRun) -> None:
    figures = {f.name: f for f in run.report.strategies}
    mono, kolla = figures["monoimage"].day2, figures["kolla-style"].day2
    assert mono is not None and kolla is not None
    package = run.resolution.package("libshared").download_size
    assert mono.blobs == 2 and mono.manifests == 1  # the delta layer and the config
    assert mono.bytes <= 1.5 * package + 64 * 1024, (mono.bytes, package)
    # kolla-style re-pulls the library in both children that ship it, each with its database
    assert mono.bytes * 3 <= kolla.bytes


def test_footprint_shows_the_disk_cost_of_the_delta_chain(run: FootprintRun) -> None:
    chain = run.delta_chain
    labels = buildah.inspect_image(run.updated_images[0].references[0])["OCIv1"]["config"][
        "Labels"]
    record = parse_record(labels[LABEL_LAYER_PLAN]).chain
    assert chain is not None and (chain.deltas, chain.shadowed_bytes) == \
        (record.deltas, record.shadowed_bytes) == (1, chain.shadowed_bytes)
    assert chain.shadowed_bytes > 0  # day 1's libshared and rpm database, hidden below
    assert (chain.max_deltas, chain.max_shadowed, chain.deltas_left) == (8, 0.5, 7)
    figures = {f.name: f.day2 for f in run.report.strategies}
    doc = footprint_json(run.facts(), FleetParams())["delta_chain"]
    assert doc["shadowed_bytes"] == chain.shadowed_bytes
    assert doc["day2_bytes"] == figures["monoimage"].bytes  # type: ignore[union-attr]
    assert doc["single_day2_bytes"] == figures["monoimage-single"].bytes  # type: ignore[union-attr]
