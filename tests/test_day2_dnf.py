"""Day 2 on the dnf path, for real: the fixture repository gets a new release of a shared
library; all three strategies are built for day 1 and rebuilt for day 2, measured from their
blobs and checked against a real pull from a loopback docker-registry (within 1%).

About 20 s here: the RPMs are small, and dnf installs into the buildah mounts from the host.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from footprint_support import make_dnf_repo, remove_images_named, write_dnf_recipe
from monoimage.pipeline.footprint import FootprintOptions, FootprintRun, run_footprint
from monoimage.plan.day2 import PackageUpdate
from monoimage.recipe.load import load_recipe
from monoimage.tools import buildah

pytestmark = [pytest.mark.build, pytest.mark.tools]


@pytest.fixture(scope="module")
def day2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FootprintRun]:
    folder = tmp_path_factory.mktemp("dnf-day2")
    name = f"monoimage-test-dnf-{secrets.token_hex(3)}"
    repo = make_dnf_repo(folder / "repo", with_update=True)  # holds libshared 1.0-1 and 1.0-2
    recipe = load_recipe(write_dnf_recipe(folder / "recipe", repo, name))
    try:
        yield run_footprint(recipe, FootprintOptions(
            tag="t", cache_dir=folder / "cache", out_dir=folder / "out",
            oci_cache=folder / "oci", with_init_python=False,
            update=PackageUpdate("libshared", "1.0-2"), verify=True))
    finally:
        remove_images_named(f"localhost/{name}")


def _changes(run: FootprintRun, strategy: str) -> dict[str, tuple[bool, int]]:
    """image part → (changed, new layer bytes) on day 2."""
    found = next(s for s in run.changes if s.name == strategy)
    return {c.image.rsplit("/", 1)[-1].split(":")[0].rsplit("-", 1)[-1]:
            (c.manifest_changed, c.new_bytes) for c in found.images}


def test_day_one_runs_the_older_release_and_day_two_the_new_one(day2: FootprintRun) -> None:
    assert [(c.name, c.before, c.after) for c in day2.version_changes] == \
        [("libshared", "1.0-1", "1.0-2")]
    assert day2.resolution.package("libshared").version == "1.0-1"


def test_registry_served_bytes_match_first_deploy_and_day2_within_one_percent(
        day2: FootprintRun) -> None:
    checks = {(c.name, c.figure): c for c in day2.checks}
    assert set(checks) == {(s, f) for s in ("monoimage", "monoimage-single", "kolla-style",
                                            "shared-base")
                           for f in ("first-deploy", "day-2")}
    for check in checks.values():
        assert check.computed > 0
        assert abs(check.served - check.computed) <= 0.01 * check.computed, check


def test_kolla_style_repulls_only_the_children_that_ship_the_library(
        day2: FootprintRun) -> None:
    changes = _changes(day2, "kolla-style")
    assert changes["base"] == (False, 0)
    assert changes["gamma"] == (False, 0)  # gamma-solo does not need libshared
    assert changes["alpha"][0] and changes["alpha"][1] > 200_000 / 3
    assert changes["beta"][0] and changes["beta"][1] > 200_000 / 3


def test_shared_base_repulls_its_base_and_every_child_built_on_it(day2: FootprintRun) -> None:
    changes = _changes(day2, "shared-base")
    assert all(changed for changed, _ in changes.values())
    assert changes["base"][1] > 200_000 / 3


def test_day2_figures_are_the_new_blobs_plus_changed_manifests(day2: FootprintRun) -> None:
    figures = {f.name: f for f in day2.report.strategies}
    for strategy in day2.changes:
        day2_pull = figures[strategy.name].day2
        assert day2_pull is not None
        layer_bytes = sum(c.new_bytes for c in strategy.images)
        assert layer_bytes < day2_pull.bytes < layer_bytes + 10_000 * len(strategy.images)
    single = figures["monoimage-single"]
    assert single.day2 is not None and single.day2.bytes >= 0.95 * single.first_deploy.bytes
    mono = figures["monoimage"]  # layers by package (the default): libshared's and metadata
    assert mono.day2 is not None and mono.day2.bytes < 0.5 * mono.first_deploy.bytes


def test_unchanged_images_keep_their_digests_across_the_rebuild(day2: FootprintRun) -> None:
    kolla = [next(s for s in images if s.name == "kolla-style")
             for images in (day2.images, day2.updated_images)]
    before, after = (dict(zip(("base", "alpha", "beta", "gamma"), s.references, strict=True))
                     for s in kolla)
    for part in ("base", "gamma"):
        assert buildah.image_id(before[part]) == buildah.image_id(after[part])
    assert buildah.image_id(before["alpha"]) != buildah.image_id(after["alpha"])


def test_shared_base_never_pulls_more_than_kolla_style(day2: FootprintRun) -> None:
    figures = {f.name: f for f in day2.report.strategies}
    assert figures["shared-base"].first_deploy.bytes <= figures["kolla-style"].first_deploy.bytes
    assert figures["shared-base"].disk_bytes <= figures["kolla-style"].disk_bytes
    # kolla-style ships libshared and common-data twice; shared-base once, in its base
    kolla = {p.package for p in figures["kolla-style"].top_packages}
    shared = {p.package for p in figures["shared-base"].top_packages}
    assert {"libshared", "common-data"} <= kolla and not {"libshared", "common-data"} & shared

