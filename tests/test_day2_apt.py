"""Day 2 on the apt path, for real: a stand-in security update of a library edge-lite's
services share (libtirpc3: chrony, mosquitto, nginx), re-versioned with dpkg-deb and published
in a local, signed apt-ftparchive repository beside the host's own sources.

Three of edge-lite's services (under a `monoimage-test-` name: chrony and nginx, which ship the
library, and redis, which does not) are only resolved, not built; their kolla-style comparator
is built for day 1 and day 2, both with the update repository configured (about a minute): the
base and redis must come out bit for bit the same (same digests, nothing to pull); the two that
ship it get a new layer each.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from buildsupport import opened
from footprint_support import apt_readable_folder, edge_lite_source, renamed_recipe_copy
from monoimage.footprint.changes import image_changes
from monoimage.footprint.figures import Strategy, day2, first_deploy
from monoimage.pipeline.build import resolve
from monoimage.pipeline.comparators import LayeredOptions, build_layered
from monoimage.pipeline.footprint import remove_images
from monoimage.plan.day2 import PackageUpdate, update_recipes, version_changes
from monoimage.plan.resolution import Resolution
from monoimage.recipe.load import load_recipe
from monoimage.recipe.model import Recipe
from monoimage.tools import buildah
from monoimage.tools.cache_dir import default_cache_dir
from monoimage.tools.packagers.apt import AptPackager
from monoimage.tools.packagers.apt_sources import host_repositories
from monoimage.tools.packagers.update_repository import UPDATE_SUFFIX, make_update_repository
from monoimage.tools.skopeo import load_image

pytestmark = [pytest.mark.build, pytest.mark.tools]
LIBRARY = "libtirpc3"
SERVICES = ("chrony", "redis", "nginx")   # two ship LIBRARY, one does not


@dataclass(frozen=True)
class Resolved:
    recipe: Recipe
    resolution: Resolution


@pytest.fixture()
def repo() -> Iterator[Path]:
    """Where the update repository goes: a folder apt's `_apt` sandbox can read."""
    with apt_readable_folder() as folder:
        yield folder / "repo"


@pytest.fixture(scope="module")
def edge_lite_resolved(tmp_path_factory: pytest.TempPathFactory) -> Resolved:
    """edge-lite's chrony, redis and nginx under a `monoimage-test-` name, resolved (seconds):
    no image is built."""
    path = renamed_recipe_copy(edge_lite_source(), tmp_path_factory.mktemp("edge-lite"),
                               f"monoimage-test-apt-day2-{secrets.token_hex(3)}")
    text = path.read_text()
    services = text[text.index("services:\n"):text.index("\n\n", text.index("services:\n"))]
    path.write_text(text.replace(services, "services:\n" + "".join(
        f"  - {name}\n" for name in SERVICES).rstrip("\n")))
    recipe = load_recipe(path)
    assert [s.name for s in recipe.services] == list(SERVICES)
    return Resolved(recipe, resolve(recipe, cache_dir=default_cache_dir()))


def test_update_repository_holds_the_re_versioned_library_and_apt_trusts_it(
        edge_lite_resolved: Resolved, repo: Path) -> None:
    recipe = edge_lite_resolved.recipe
    original = edge_lite_resolved.resolution.package(LIBRARY)
    made = make_update_repository(recipe, original, repo, cache_dir=default_cache_dir())
    assert made.version == original.version + UPDATE_SUFFIX
    deb = next((repo / "pool").glob("*.deb"))
    fields = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Version"],
                            capture_output=True, text=True, check=True).stdout
    assert fields == f"Package: {LIBRARY}\nVersion: {made.version}\n"
    assert (repo / "dists" / "monoimage-updates" / "InRelease").read_text() \
        .startswith("-----BEGIN PGP SIGNED MESSAGE-----")


def test_kolla_style_day2_rebuilds_only_the_children_that_ship_the_library(
        edge_lite_resolved: Resolved, repo: Path, tmp_path: Path) -> None:
    recipe, resolution = edge_lite_resolved.recipe, edge_lite_resolved.resolution
    cache = default_cache_dir()
    made = make_update_repository(recipe, resolution.package(LIBRARY), repo, cache_dir=cache)
    recipes = update_recipes(recipe, resolution, PackageUpdate(LIBRARY, made.version),
                             extra=(made.repository,), host_repositories=host_repositories())
    before, after = (resolve(r, cache_dir=cache) for r in (recipes.before, recipes.after))
    assert before.package(LIBRARY).version == resolution.package(LIBRARY).version
    assert [(c.name, c.after) for c in version_changes(before, after)] == \
        [(LIBRARY, made.version)]
    built = []
    try:
        for day, (day_recipe, resolution) in enumerate(((recipes.before, before),
                                                        (recipes.after, after)), 1):
            built.append(build_layered(day_recipe, resolution, "kolla-style",
                                       LayeredOptions(tag=f"apt-day{day}", cache_dir=cache)))
        day1, day2_images = built
        parts = ("base", *(s.name for s in recipe.services))
        same = {part for part, old, new in zip(parts, day1.references, day2_images.references,
                                               strict=True)
                if buildah.image_id(old) == buildah.image_id(new)}
        assert same == {"base", "redis"}

        with opened(dict(day2_images.children)["nginx"]) as (_container, root):
            installed = {p.name: p.version for p in AptPackager().list_installed(root)}
            library = next((root / "usr/lib/x86_64-linux-gnu").glob("libtirpc.so.3.*"))
            assert b"monoimage stand-in security update" in library.read_bytes()[-200:]
        assert installed[LIBRARY] == made.version

        oci = tmp_path / "oci"
        old = Strategy("kolla-style", tuple(load_image(r, oci) for r in day1.references))
        new = Strategy("kolla-style", tuple(load_image(r, oci) for r in day2_images.references))
        changed = [c for c in image_changes(old, new) if c.manifest_changed]
        assert [c.image for c in changed] == [dict(day2_images.children)[s]
                                              for s in ("chrony", "nginx")]
        assert all(len(c.new_layers) == 1 for c in changed)
        pull = day2(old.images, new.images)
        assert pull.manifests == 2 and pull.blobs == 4  # a config and a layer per child
        assert pull.bytes < 0.2 * first_deploy(old.images).bytes
    finally:
        for images in built:
            remove_images(images.references)
