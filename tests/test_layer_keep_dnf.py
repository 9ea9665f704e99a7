"""Stable across rebuilds on the dnf path, for real: a build given the image a site runs today
(`--previous`) keeps every unchanged package in its layer, so a site keeps those layers.

The fixture's packages are tiny (seconds per build). Each case is one a plan from scratch
would get wrong: an update that grows a package past the solo size (it would move to a layer
of its own), and a new service that makes a package shared (it would move tier).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from buildsupport import leftovers, opened, remove_images, unique_tag
from monoimage.cli import main
from monoimage.errors import UserError
from monoimage.footprint.figures import day2
from monoimage.image import LABEL_LAYER_PLAN, MANIFEST_PATH
from monoimage.pipeline.build import BuildOptions, BuildResult, build
from monoimage.pipeline.delta_commit import read_tree
from monoimage.pipeline.single_variant import single_reference, squash_image
from monoimage.plan.delta import Entry, diff_trees
from monoimage.plan.layer_record import parse_record
from monoimage.recipe.load import load_recipe
from monoimage.tools import buildah
from monoimage.tools.cache_dir import default_cache_dir
from monoimage.tools.packagers.dnf import DBPATH
from monoimage.tools.skopeo import load_image
from recipe_files import write_recipe
from rpmrepo import EDGE_FIXTURE, RpmSpec, make_rpm_repo

pytestmark = pytest.mark.build

IMAGE = """\
image: {{name: monoimage-test-rpm-keep, tag: t}}
distro: {{name: fedora, release: "39", packager: dnf, architecture: x86_64,
         repositories: [{{id: fixture, baseurl: "file://{repo}"}}]}}
services: [{services}]
"""
SERVICES = {
    "alpha": "name: alpha\npackages: [alpha-daemon, libshared]\n"
             "run:\n  argv: [/usr/bin/alpha-daemon]\n",
    "beta": "name: beta\npackages: [beta-tools]\nrun:\n  argv: [/usr/bin/beta-agent]\n",
    # gamma needs beta-agent too: from scratch, beta-agent would move from dedicated to shared
    "gamma": "name: gamma\npackages: [beta-agent]\nrun:\n  argv: [/usr/bin/beta-agent]\n",
}
# libshared 1.3 grows past the solo size (1 MiB): from scratch it would get a layer of its own.
BIG_LIBSHARED = RpmSpec("libshared", "1.3", requires=("common-data",), files=(
    ("/usr/lib/libshared.so.1", random.Random("libshared-1.3").randbytes(800_000).hex()),))


def _recipe(folder: Path, repo: Path, services: tuple[str, ...] = ("alpha", "beta")) -> Path:
    return write_recipe(folder, {s: SERVICES[s] for s in services},
                        image=IMAGE.format(repo=repo, services=", ".join(services)))


def _build(recipe: Path, tag: str, out: Path, **options: object) -> BuildResult:
    return build(load_recipe(recipe), BuildOptions(
        tag=tag, cache_dir=default_cache_dir(), out_dir=out, with_init_python=False,
        **options))  # type: ignore[arg-type]


def _diff_ids(reference: str) -> list[str]:
    return list(buildah.inspect_image(reference)["OCIv1"]["rootfs"]["diff_ids"])


@dataclass(frozen=True)
class Day1:
    result: BuildResult
    repo: Path
    folder: Path


@pytest.fixture(scope="module")
def day1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Day1]:
    folder = tmp_path_factory.mktemp("rpm-keep")
    repo = make_rpm_repo(folder / "repo", EDGE_FIXTURE)
    tag = unique_tag("rpm-keep")
    result = _build(_recipe(folder / "recipe", repo), tag, folder / "out", keep_tagged=False)
    yield Day1(result, repo, folder)
    remove_images(tag)


def test_the_image_records_which_package_is_in_which_layer(day1: Day1) -> None:
    labels = buildah.inspect_image(day1.result.reference)["OCIv1"]["config"]["Labels"]
    record = parse_record(labels[LABEL_LAYER_PLAN])
    assert [(x.name, x.packages) for x in record.plan.package_layers] == \
        [(x.name, x.packages) for x in day1.result.layers[:-2]]
    assert record.version_of["libshared"] == "1.2-1"
    annotations = buildah.inspect_image(day1.result.reference).get("ImageAnnotations") or {}
    assert LABEL_LAYER_PLAN not in annotations  # the manifest stays small


def test_a_one_package_update_keeps_every_other_layer_digest(day1: Day1, tmp_path: Path
                                                             ) -> None:
    repo = make_rpm_repo(tmp_path / "repo", [*EDGE_FIXTURE, BIG_LIBSHARED])
    recipe = _recipe(tmp_path / "recipe", repo)
    tag, fresh = unique_tag("rpm-keep-update"), unique_tag("rpm-keep-fresh")
    try:
        kept = _build(recipe, tag, tmp_path / "out", previous=day1.result.reference)
        scratch = _build(recipe, fresh, tmp_path / "out2", keep_tagged=False)
        before, after = _diff_ids(day1.result.reference), _diff_ids(tag)
        from_scratch = [x.name for x in scratch.layers]
    finally:
        remove_images(tag, fresh)
    assert kept.previous == day1.result.reference and kept.layer_note.startswith("kept")
    assert [x.name for x in kept.layers] == [x.name for x in day1.result.layers]
    libshared = next(i for i, x in enumerate(kept.layers) if "libshared" in x.packages)
    changed = {i for i, (old, new) in enumerate(zip(before, after, strict=True)) if old != new}
    assert changed == {libshared, len(before) - 2}  # its layer and the metadata layer
    assert "dedicated/libshared" in from_scratch or "shared/libshared" in from_scratch


def test_adding_a_service_moves_no_package(day1: Day1, tmp_path: Path) -> None:
    recipe = _recipe(tmp_path / "recipe", day1.repo, ("alpha", "beta", "gamma"))
    tag, fresh = unique_tag("rpm-keep-service"), unique_tag("rpm-keep-service-fresh")
    try:
        kept = _build(recipe, tag, tmp_path / "out", previous=day1.result.reference)
        _build(recipe, fresh, tmp_path / "out2", keep_tagged=False)
        before, after, scratch = (_diff_ids(r) for r in (day1.result.reference, tag, fresh))
    finally:
        remove_images(tag, fresh)
    packages = len(day1.result.layers) - 2
    assert after[:packages] == before[:packages]  # every package layer, byte for byte
    assert after[packages:] != before[packages:]  # the metadata and init layers change
    assert not set(before[:packages]) <= set(scratch)  # from scratch, beta-agent moved
    assert [x.name for x in kept.layers] == [x.name for x in day1.result.layers]


def test_a_rebuild_under_the_same_tag_keeps_the_tagged_image_s_layers(day1: Day1,
                                                                      tmp_path: Path) -> None:
    recipe = _recipe(tmp_path / "recipe", day1.repo, ("alpha", "beta", "gamma"))
    tag = unique_tag("rpm-keep-tagged")
    try:
        buildah.tag(day1.result.reference, tag)
        again = _build(recipe, tag, tmp_path / "out")
        assert again.previous == tag
        assert _diff_ids(tag)[:-2] == _diff_ids(day1.result.reference)[:-2]
    finally:
        remove_images(tag)


@pytest.mark.parametrize("option", ["--previous", "--delta-from"])
@pytest.mark.parametrize("case", ["missing", "not-monoimage", "single", "other-recipe",
                                  "other-distro", "bad-reference"])
def test_a_previous_image_that_cannot_serve_stops_the_build_before_any_work(
        day1: Day1, tmp_path: Path, case: str, option: str) -> None:
    tag = unique_tag("rpm-keep-bad")
    made: list[str] = []
    previous = {"missing": "localhost/monoimage-test-no-such-image:x",
                "bad-reference": "Not An Image"}.get(case, "")
    if case == "not-monoimage":
        previous = unique_tag("rpm-keep-scratch")
        container = buildah.from_scratch(f"monoimage-test-{previous[-8:]}")
        buildah.commit(container, previous, timestamp=0)
        buildah.remove_container(container)
    elif case == "single":
        previous = single_reference(day1.result.reference)
        squash_image(day1.result.reference, previous, timestamp=0)
    elif case == "other-distro":  # this recipe's image, its record saying another distro
        labels = buildah.inspect_image(day1.result.reference)["OCIv1"]["config"]["Labels"]
        record = json.loads(labels[LABEL_LAYER_PLAN])
        record["distro"] = "debian bookworm amd64 apt"
        previous = unique_tag("rpm-keep-debian")
        container = buildah.from_image(f"monoimage-test-{previous[-8:]}",
                                       day1.result.reference)
        buildah.buildah("config", "--label", f"{LABEL_LAYER_PLAN}={json.dumps(record)}",
                        container)
        buildah.commit(container, previous, timestamp=0)
        buildah.remove_container(container)
    elif case == "other-recipe":
        other = tmp_path / "other"
        text = _recipe(other, day1.repo).read_text()
        (other / "image.yaml").write_text(text.replace("rpm-keep,", "rpm-other,"))
        previous = unique_tag("rpm-other")
        _build(other / "image.yaml", previous, tmp_path / "out-other", keep_tagged=False)
    made.append(previous)
    options = BuildOptions(tag=tag, cache_dir=default_cache_dir(), out_dir=tmp_path / "out",
                           with_init_python=False,
                           **{option.removeprefix("--").replace("-", "_"): previous})
    expected = {"missing": "no such image in local storage",
                "not-monoimage": "the image was not built by monoimage",
                "single": "without layers by package (layering: single)",
                "other-recipe": "built from recipe 'monoimage-test-rpm-other', not "
                                "'monoimage-test-rpm-keep'",
                "other-distro": "built for debian bookworm amd64 apt, the recipe builds "
                                "for fedora 39 x86_64 dnf",
                "bad-reference": "is not an image reference"}[case]
    try:
        with pytest.raises(UserError) as error:
            build(load_recipe(_recipe(tmp_path / "recipe", day1.repo)), options)
        assert str(error.value).startswith(f"{option} ") and expected in str(error.value)
        assert "\n" not in str(error.value)
        assert buildah.image_id(tag) is None and leftovers(options.build_id) == ([], [])
        assert not (tmp_path / "out").exists()
        result = CliRunner().invoke(main, ["build", str(tmp_path / "recipe" / "image.yaml"),
                                           "-t", tag, option, previous, "-q"])
        assert result.exit_code == 2
        assert result.stderr.strip().splitlines() == [f"monoimage: {error.value}"]
        assert buildah.image_id(tag) is None
    finally:
        remove_images(tag, *(m for m in made if m.startswith("localhost/monoimage-test-")))


# ------------------------------------------------------------------ delta updates


def _tree(reference: str) -> dict[str, Entry]:
    with opened(reference) as (_container, root):
        return read_tree(root)


@pytest.mark.parametrize("case", ["update", "service-removed"])
def test_a_delta_is_the_previous_layers_plus_one_layer_of_exactly_what_changed(
        day1: Day1, tmp_path: Path, case: str) -> None:
    if case == "update":
        repo = make_rpm_repo(tmp_path / "repo", [*EDGE_FIXTURE, BIG_LIBSHARED])
        recipe = _recipe(tmp_path / "recipe", repo)
    else:  # beta's files are most of this tiny image: let the delta hide them all
        recipe = _recipe(tmp_path / "recipe", day1.repo, ("alpha",))
        recipe.write_text(recipe.read_text() + "layering: {max_shadowed: 1}\n")
    tag, again, plain = (unique_tag(f"rpm-delta-{n}") for n in ("a", "b", "plain"))
    try:
        delta = _build(recipe, tag, tmp_path / "out", delta_from=day1.result.reference)
        twice = _build(recipe, again, tmp_path / "out2", delta_from=day1.result.reference)
        _build(recipe, plain, tmp_path / "out3", previous=day1.result.reference)
        before, after = _diff_ids(day1.result.reference), _diff_ids(tag)
        rebuilt = _tree(plain)
        expected = diff_trees(_tree(day1.result.reference), rebuilt)
        assert _tree(tag) == rebuilt  # the delta image holds what a rebuild holds
        top = load_image(tag).layers[-1]
    finally:
        remove_images(tag, again, plain)
    assert delta.delta is not None, delta.layer_note
    assert after[:-1] == before and len(after) == len(before) + 1  # byte for byte, plus one
    assert twice.digest == delta.digest  # reproducible
    assert delta.delta is not None and delta.delta.chain.deltas == 1
    entries = {"/" + f.path.strip("/"): f.kind for f in top.files}
    whiteouts = {p for p, kind in entries.items() if kind == "whiteout"}
    assert whiteouts == set(expected.removed)
    copied = {p for p, kind in entries.items() if kind not in ("dir", "whiteout")}
    assert copied == {p for p in expected.changed if rebuilt[p].kind != "dir"}
    assert f"{DBPATH}/rpmdb.sqlite" in copied and MANIFEST_PATH in copied
    if case == "update":
        assert "/usr/lib/libshared.so.1" in copied
        assert whiteouts == {"/usr/share/libshared"}  # 1.2's VERSION file is gone in 1.3
        assert delta.layers[0].packages == ("libshared",)
    else:
        assert "/usr/bin/beta-agent" in whiteouts
        assert set(delta.layers[0].packages) == {"beta-agent", "beta-tools"}


def test_the_delta_chain_compacts_at_its_length_and_says_so(day1: Day1, tmp_path: Path
                                                             ) -> None:
    repo = make_rpm_repo(tmp_path / "repo", [*EDGE_FIXTURE, BIG_LIBSHARED])
    recipe = _recipe(tmp_path / "recipe", repo)
    text = recipe.read_text() + "layering: {policy: packages, updates: delta, max_deltas: 1}\n"
    recipe.write_text(text)
    first, second = unique_tag("rpm-chain-1"), unique_tag("rpm-chain-2")
    try:
        one = _build(recipe, first, tmp_path / "out", previous=day1.result.reference)
        gamma = _recipe(tmp_path / "recipe2", repo, ("alpha", "beta", "gamma"))
        gamma.write_text(gamma.read_text() + text.split("services: [alpha, beta]\n")[1])
        two = _build(gamma, second, tmp_path / "out2", previous=first)
        base, chained, compacted = (_diff_ids(r) for r in (day1.result.reference, first,
                                                              second))
    finally:
        remove_images(first, second)
    assert one.delta is not None and chained[:-1] == base  # updates: delta, from the recipe
    assert two.delta is None and "compacted the delta chain" in two.layer_note
    assert "2 delta layers would pass layering.max_deltas (1)" in two.layer_note
    assert len(compacted) == len(base)  # layers by package again, the same plan
    libshared = next(i for i, x in enumerate(two.layers) if "libshared" in x.packages)
    assert {i for i, (a, b) in enumerate(zip(base, compacted, strict=True)) if a != b} <= \
        {libshared, len(base) - 2, len(base) - 1}


def test_the_delta_chain_compacts_past_its_shadowed_share_and_says_so(day1: Day1,
                                                                      tmp_path: Path) -> None:
    repo = make_rpm_repo(tmp_path / "repo", [*EDGE_FIXTURE, BIG_LIBSHARED])
    recipe = _recipe(tmp_path / "recipe", repo)
    # libshared 1.3's delta hides 1.2's library and the rpm database: far past 0.1 % of the image
    recipe.write_text(recipe.read_text()
                      + "layering: {policy: packages, updates: delta, max_shadowed: 0.001}\n")
    tag = unique_tag("rpm-shadow")
    try:
        built = _build(recipe, tag, tmp_path / "out", previous=day1.result.reference)
        base, compacted = _diff_ids(day1.result.reference), _diff_ids(tag)
    finally:
        remove_images(tag)
    assert built.delta is None and "compacted the delta chain" in built.layer_note
    assert "past layering.max_shadowed (0.001)" in built.layer_note
    assert len(compacted) == len(base)  # layers by package again, with day 1's plan
    libshared = next(i for i, x in enumerate(built.layers) if "libshared" in x.packages)
    assert {i for i, (a, b) in enumerate(zip(base, compacted, strict=True)) if a != b} <= \
        {libshared, len(base) - 2, len(base) - 1}


# ------------------------------------------------------------------ what an update touches


def test_a_day2_build_and_monoimage_diff_say_what_changed_and_who_runs_it(
        day1: Day1, tmp_path: Path) -> None:
    repo = make_rpm_repo(tmp_path / "repo", [*EDGE_FIXTURE, BIG_LIBSHARED])
    tag = unique_tag("rpm-keep-diff")
    try:
        result = _build(_recipe(tmp_path / "recipe", repo), tag, tmp_path / "out",
                        previous=day1.result.reference)
        assert [c.as_json() for c in result.changes] == [
            {"name": "libshared", "before": "1.2-1", "after": "1.3-1",
             "services": ["alpha", "beta"], "base": False, "config_only": False}]
        shown = CliRunner().invoke(main, ["diff", day1.result.reference, tag])
        as_json = CliRunner().invoke(main, ["diff", day1.result.reference, tag, "--json"])
        bad = CliRunner().invoke(main, ["diff", day1.result.reference,
                                        "localhost/monoimage-test-none:x"])
        old, new = load_image(day1.result.reference), load_image(tag)
    finally:
        remove_images(tag)
    assert shown.exit_code == 0, shown.output
    assert "libshared: 1.2-1 → 1.3-1, in alpha, beta" in shown.stdout
    doc = json.loads(as_json.stdout)
    assert doc["changes"] == [c.as_json() for c in result.changes]
    assert doc["pull"]["bytes"] == day2([old], [new]).bytes
    assert doc["kept_layers"] == doc["layers"] - 2  # libshared's layer and the metadata layer
    assert bad.exit_code == 2 and "NEW localhost/monoimage-test-none:x: no such image" in \
        bad.stderr
