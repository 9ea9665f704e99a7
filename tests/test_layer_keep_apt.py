"""Stable across rebuilds on the apt path, for real: a stand-in security update of libtirpc3
(re-versioned with dpkg-deb, in a local signed repository beside the host's sources) rebuilt
with `--previous` changes only the layer holding libtirpc3 and the metadata layer.

A tiny recipe (minbase, busybox, libtirpc3) keeps it to two builds of about a minute each.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from buildsupport import remove_images, unique_tag, write_tiny_recipe
from footprint_support import apt_readable_folder
from monoimage.pipeline.build import BuildOptions, build, resolve
from monoimage.pipeline.image_diff import diff_images
from monoimage.plan.day2 import PackageUpdate, update_recipes, version_changes
from monoimage.recipe.load import load_recipe
from monoimage.tools import buildah
from monoimage.tools.cache_dir import default_cache_dir
from monoimage.tools.packagers.apt_sources import host_repositories
from monoimage.tools.packagers.update_repository import make_update_repository
from recipe_files import write_recipe

pytestmark = pytest.mark.build
LIBRARY = "libtirpc3"
RPC = """\
name: rpc
packages: [libtirpc3]
run:
  argv: [busybox, sleep, infinity]
"""


def _diff_ids(reference: str) -> list[str]:
    return list(buildah.inspect_image(reference)["OCIv1"]["rootfs"]["diff_ids"])


@pytest.fixture
def repo_dir() -> Iterator[Path]:
    with apt_readable_folder() as folder:
        yield folder


def test_a_one_package_update_keeps_every_other_layer_digest(tmp_path: Path, repo_dir: Path
                                                              ) -> None:
    path = write_tiny_recipe(tmp_path / "recipe")
    text = path.read_text().replace("  - hello\n", "  - hello\n  - rpc\n")
    path.write_text(text)
    write_recipe(tmp_path / "recipe", {"rpc": RPC}, image=text)
    recipe = load_recipe(path)
    cache = default_cache_dir()
    resolution = resolve(recipe, cache_dir=cache)
    made = make_update_repository(recipe, resolution.package(LIBRARY), repo_dir / "repo",
                                  cache_dir=cache)
    recipes = update_recipes(recipe, resolution, PackageUpdate(LIBRARY, made.version),
                             extra=(made.repository,), host_repositories=host_repositories())
    before, after = (resolve(r, cache_dir=cache) for r in (recipes.before, recipes.after))
    assert [(c.name, c.after) for c in version_changes(before, after)] == \
        [(LIBRARY, made.version)]
    day1, day2, day2_delta = (unique_tag(f"apt-keep{n}") for n in ("", "-day2", "-delta"))
    try:
        first = build(recipes.before, BuildOptions(tag=day1, out_dir=tmp_path / "out1",
                                                   keep_tagged=False), resolution=before)
        second = build(recipes.after, BuildOptions(tag=day2, out_dir=tmp_path / "out2",
                                                   previous=day1), resolution=after)
        delta = build(recipes.after, BuildOptions(tag=day2_delta, out_dir=tmp_path / "out3",
                                                  delta_from=day1), resolution=after)
        old, new, over = _diff_ids(day1), _diff_ids(day2), _diff_ids(day2_delta)
        pulled = diff_images(day1, day2_delta).pull.bytes
    finally:
        remove_images(day1, day2, day2_delta)
    assert second.layer_note.startswith("kept")
    assert [x.name for x in second.layers] == [x.name for x in first.layers]
    holding = next(i for i, x in enumerate(first.layers) if LIBRARY in x.packages)
    changed = {i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b}
    assert changed == {holding, len(old) - 2}  # libtirpc3's layer and the metadata layer
    assert len(old) > 5
    # The delta: day 1's layers as they are, plus one layer a site pulls with its config and
    # manifest, within 1.5 times the updated .deb plus 64 KiB.
    assert delta.delta is not None and over[:-1] == old and len(over) == len(old) + 1
    assert pulled <= 1.5 * after.package(LIBRARY).download_size + 64 * 1024, pulled
