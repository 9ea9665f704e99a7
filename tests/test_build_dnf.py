"""A real build on the dnf path, from RPM repositories built here with rpmbuild and
createrepo_c (only Debian's mirror is reachable from this host, so no Fedora repository).

The fixture's packages are tiny and build in seconds, so the `packages` layering (one layer per
package group, day-2 updates) is proven here with several real builds.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildsupport import leftovers, opened, remove_images, unique_tag
from monoimage.errors import UserError
from monoimage.footprint.oci import Image
from monoimage.image import MANIFEST_PATH, SBOM_PATH
from monoimage.pipeline import layer_commit as layercommit
from monoimage.pipeline.build import BuildOptions, BuildResult, build
from monoimage.plan.layer_plan import INIT, METADATA
from monoimage.recipe.load import load_recipe
from monoimage.tools import buildah
from monoimage.tools.cache_dir import default_cache_dir
from monoimage.tools.packagers.dnf import DBPATH
from monoimage.tools.packagers.ownership import rpm_listed
from monoimage.tools.skopeo import load_image
from recipe_files import write_recipe
from rpmrepo import EDGE_FIXTURE, RpmSpec, make_rpm_repo

pytestmark = [pytest.mark.build, pytest.mark.tools]

IMAGE = """\
image:
  name: monoimage-test-rpm
  tag: t
distro:
  name: fedora
  release: "39"
  packager: dnf
  architecture: x86_64
  repositories:
    - id: fixture
      baseurl: file://{repo}
services:
  - alpha
  - beta
"""

ALPHA = """\
name: alpha
packages:
  - alpha-daemon
  - libshared {alpha_constraint}
run:
  argv: [/usr/bin/alpha-daemon]
"""

BETA = """\
name: beta
packages:
  - beta-tools
  - libshared >= 1.1
  - common-data
run:
  argv: [/usr/bin/beta-agent]
depends_on: [alpha]
"""


# Five at most: the fixture's four natural package groups must be squeezed into three.
LAYERED = "layering:\n  policy: packages\n  max_layers: 5\n"
SINGLE = "layering:\n  policy: single\n"  # packages is the default


def _recipe(folder: Path, repo: Path, alpha_constraint: str = ">= 1.0",
            layering: str = "") -> Path:
    return write_recipe(folder, {"alpha": ALPHA.format(alpha_constraint=alpha_constraint),
                                 "beta": BETA}, image=IMAGE.format(repo=repo) + layering)


def _options(tag: str, out: Path) -> BuildOptions:
    # The fixture repository has no python3: the init's interpreter is left out on purpose.
    return BuildOptions(tag=tag, cache_dir=default_cache_dir(), out_dir=out,
                        with_init_python=False)


@pytest.fixture(scope="module")
def rpm_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_rpm_repo(tmp_path_factory.mktemp("rpmrepo"), EDGE_FIXTURE)


@pytest.fixture(scope="module")
def rpm_image(rpm_repo, tmp_path_factory) -> Iterator[BuildResult]:
    folder = tmp_path_factory.mktemp("rpm-recipe")
    tag = unique_tag("rpm")
    result = build(load_recipe(_recipe(folder, rpm_repo, layering=SINGLE)),
                   _options(tag, folder / "out"))
    yield result
    remove_images(tag)


def _rpm_qa(root: Path) -> list[tuple[str, str, str, int]]:
    out = subprocess.run(["rpm", "--root", str(root), "--dbpath", DBPATH, "-qa", "--qf",
                          "%{NAME}\t%{VERSION}-%{RELEASE}\t%{ARCH}\t%{SIZE}\n"],
                         check=True, capture_output=True, text=True).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    return sorted((name, version, arch, int(size)) for name, version, arch, size in rows)


def test_rpm_qa_shows_each_shared_package_once_at_the_pinned_version(rpm_image):
    with opened(rpm_image.reference) as (_container, root):
        installed = _rpm_qa(root)
        assert [row[0] for row in installed] == ["alpha-daemon", "beta-agent", "beta-tools",
                                                 "common-data", "libshared"]
        assert ("libshared", "1.2-1", "noarch") == installed[-1][:3]
        assert (root / "usr/bin/alpha-daemon").is_file()
        assert (root / "usr/lib/monoimage/monoimage_init/__main__.py").is_file()


def test_rpm_manifest_matches_rpm_qa_inside_the_image(rpm_image):
    with opened(rpm_image.reference) as (_container, root):
        installed = _rpm_qa(root)
        manifest = json.loads((root / MANIFEST_PATH.lstrip("/")).read_text())
    assert [(p["name"], p["version"], p["arch"], p["installed_size"])
            for p in manifest["packages"]] == [tuple(row) for row in installed]
    why = {p["name"]: p for p in manifest["packages"]}
    assert why["libshared"]["requested_by"] == ["alpha", "beta"]
    assert why["beta-agent"]["why"] == "dependency of beta"
    assert manifest["distro"]["packager"] == "dnf"


def test_unsatisfiable_constraint_fails_before_anything_is_installed(rpm_repo, rpm_image,
                                                                       tmp_path):
    recipe = load_recipe(_recipe(tmp_path, rpm_repo, alpha_constraint=">= 1.3"))
    options = _options(rpm_image.reference, tmp_path / "out")
    with pytest.raises(UserError) as err:
        build(recipe, options)
    message = str(err.value)
    assert "'libshared'" in message and "alpha wants libshared >= 1.3" in message
    assert "beta wants libshared >= 1.1" in message and "available: 1.0-1, 1.2-1" in message
    assert buildah.image_id(rpm_image.reference) == rpm_image.image_id
    assert leftovers(options.build_id) == ([], [])
    assert not (tmp_path / "out").exists()  # nothing was installed or written


# ------------------------------------------------------------------ layering: packages


@pytest.fixture(scope="module")
def layered(rpm_repo, tmp_path_factory) -> Iterator[tuple[BuildResult, Image, Path]]:
    folder = tmp_path_factory.mktemp("rpm-layered")
    tag = unique_tag("rpm-layered")
    recipe_path = _recipe(folder, rpm_repo, layering=LAYERED)
    result = build(load_recipe(recipe_path), _options(tag, folder / "out"))
    yield result, load_image(result.reference), recipe_path
    remove_images(tag)


def _files(image: Image) -> list[dict[str, tuple[str, str | None]]]:
    """Each layer's entries other than directories: path → (kind, sha256)."""
    return [{f.path: (f.kind, f.sha256) for f in layer.files if f.kind != "dir"}
            for layer in image.layers]


def test_packages_layering_puts_every_file_in_the_layer_the_plan_says(layered):
    result, image, _ = layered
    assert len(image.layers) == len(result.layers) <= 5
    assert [x.name for x in result.layers][-2:] == [METADATA, INIT]
    layer_of = {name: i for i, x in enumerate(result.layers) for name in x.packages}
    assert sorted(layer_of) == ["alpha-daemon", "beta-agent", "beta-tools", "common-data",
                                "libshared"]
    files = _files(image)
    with opened(result.reference) as (_container, root):
        owned = [(name, path) for name, path in rpm_listed(root)
                 if not (root / path.lstrip("/")).is_dir()]
    assert owned
    for name, path in owned:
        holding = [i for i, layer in enumerate(files) if path in layer]
        assert holding == [layer_of[name]], f"{path} of {name}"
    assert f"{DBPATH}/rpmdb.sqlite" in files[-2] and MANIFEST_PATH in files[-2]
    assert "/usr/bin/monoimage-init" in files[-1]
    assert "/usr/lib/monoimage/monoimage_init/__main__.py" in files[-1]


def test_packages_layering_gives_the_same_layers_and_digest_twice(layered, tmp_path):
    first, first_image, recipe_path = layered
    tag = unique_tag("rpm-layered-again")
    try:
        again = build(load_recipe(recipe_path), _options(tag, tmp_path / "out"))
        assert again.image_id == first.image_id
        assert again.digest == first.digest
        assert [x.blob.digest for x in load_image(tag).layers] == \
            [x.blob.digest for x in first_image.layers]
    finally:
        remove_images(tag)


def test_packages_layering_holds_the_same_files_as_single(layered, rpm_image):
    _, image, _ = layered
    union: dict[str, tuple[str, str | None]] = {}
    for layer in _files(image):
        union.update(layer)
    single = _files(load_image(rpm_image.reference))[0]
    # The manifest and SBOM name the recipe's digest, and the recipes differ in `layering`.
    for generated in (MANIFEST_PATH, SBOM_PATH):
        assert union.pop(generated) != single.pop(generated)
    assert union == single


def test_day2_update_of_a_shared_package_changes_only_its_layer_and_the_metadata(
        layered, tmp_path):
    first, first_image, _ = layered
    # The repository now also holds libshared 1.3. (The recipe differs in its repository's
    # path: that shows in the labels and the manifest, which are in the config and the
    # metadata layer, changed anyway.)
    repo = make_rpm_repo(tmp_path / "repo", [
        *EDGE_FIXTURE, RpmSpec("libshared", "1.3", requires=("common-data",))])
    tag = unique_tag("rpm-layered-day2")
    try:
        update = build(load_recipe(_recipe(tmp_path, repo, layering=LAYERED)),
                       _options(tag, tmp_path / "out"))
        after = load_image(tag)
    finally:
        remove_images(tag)
    assert [x.name for x in update.layers] == [x.name for x in first.layers]
    changed = {i for i, (old, new) in enumerate(zip(first_image.layers, after.layers,
                                                    strict=True))
               if old.blob.digest != new.blob.digest}
    libshared = next(i for i, x in enumerate(first.layers) if "libshared" in x.packages)
    # The init layer holds nothing that depends on package versions: it stays too.
    assert changed == {libshared, len(first.layers) - 2}
    assert "/usr/share/libshared/VERSION" in _files(after)[libshared]


def test_a_failure_between_layer_commits_removes_every_temporary(layered, rpm_repo, tmp_path,
                                                                 monkeypatch):
    previous, _, _ = layered
    real_copy = layercommit.copy_paths
    copies = []

    def copy_then_fail(source: Path, target: Path, paths) -> None:
        # Injected: a real build that fails in its third layer, after two real commits.
        copies.append(paths)
        if len(copies) == 3:
            raise UserError("injected failure in the third layer")
        real_copy(source, target, paths)

    monkeypatch.setattr(layercommit, "copy_paths", copy_then_fail)
    recipe = load_recipe(_recipe(tmp_path, rpm_repo, layering=LAYERED))
    options = _options(previous.reference, tmp_path / "out")
    with pytest.raises(UserError, match="injected failure"):
        build(recipe, options)
    assert len(copies) == 3
    assert buildah.image_id(previous.reference) == previous.image_id
    assert leftovers(options.build_id) == ([], [])
