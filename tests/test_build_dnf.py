"""A real build on the dnf path, from RPM repositories built here with rpmbuild and
createrepo_c (only Debian's mirror is reachable from this host, so no Fedora repository)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildsupport import leftovers, opened, remove_images, unique_tag
from monoimage import buildah
from monoimage.build import BuildOptions, BuildResult, build, default_cache_dir
from monoimage.errors import UserError
from monoimage.packagers.dnf import DBPATH
from monoimage.recipe_parse import load_recipe
from monoimage.sbom import MANIFEST_PATH
from recipe_files import write_recipe
from rpmrepo import EDGE_FIXTURE, make_rpm_repo

pytestmark = pytest.mark.build

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


def _recipe(folder: Path, repo: Path, alpha_constraint: str = ">= 1.0") -> Path:
    return write_recipe(folder, {"alpha": ALPHA.format(alpha_constraint=alpha_constraint),
                                 "beta": BETA}, image=IMAGE.format(repo=repo))


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
    result = build(load_recipe(_recipe(folder, rpm_repo)), _options(tag, folder / "out"))
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
