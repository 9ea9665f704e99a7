"""Recipe keys and what they do: per-packager package lists, a template read from a file, the
apt variant and recommends (resolved for real), dnf's gpgcheck and strip.packages (built on the
RPM fixture)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from buildsupport import opened, remove_images, unique_tag
from footprint_support import make_dnf_repo, write_dnf_recipe
from monoimage.errors import UserError
from monoimage.image import MANIFEST_PATH
from monoimage.pipeline.build import BuildOptions, build, resolve
from monoimage.plan.merge import plan
from monoimage.recipe.load import load_recipe
from monoimage.tools.cache_dir import default_cache_dir
from monoimage.tools.packagers.dnf import DnfPackager
from recipe_files import write_recipe

APT_IMAGE = """\
image: {{name: monoimage-test-keys}}
distro: {{name: debian, release: bookworm, packager: apt{distro}}}
services: [web]
site: {{hostname: edge}}
"""
DNF_IMAGE = """\
image: {name: monoimage-test-keys}
distro:
  name: fedora
  release: "39"
  packager: dnf
  repositories: [{id: fixture, baseurl: "file:///nonexistent"}]
services: [web]
"""
WEB = """\
name: web
packages:
  all: [web-common]
  apt: [web-deb]
  dnf: [web-rpm]
run: {argv: [web]}
"""


def test_packages_all_and_the_recipes_packager_are_merged_and_the_other_left_out(
        tmp_path: Path) -> None:
    apt = plan(load_recipe(write_recipe(tmp_path / "apt", {"web": WEB},
                                        image=APT_IMAGE.format(distro=""))), with_init=False)
    dnf = plan(load_recipe(write_recipe(tmp_path / "dnf", {"web": WEB}, image=DNF_IMAGE)),
               with_init=False)
    assert apt.packages.names == ("web-common", "web-deb")
    assert dnf.packages.names == ("web-common", "web-rpm")
    assert apt.packages.entry("web-deb").requested_by == ("web",)


def test_a_template_source_is_read_from_beside_the_service_file(tmp_path: Path) -> None:
    service = """\
        name: web
        packages: [busybox]
        run: {argv: [busybox, httpd]}
        config:
          templates:
            - dest: /etc/web/index.html
              source: index.html.tmpl
        """
    path = write_recipe(tmp_path, {"web": service}, image=APT_IMAGE.format(distro=""))
    (tmp_path / "services" / "index.html.tmpl").write_text("hello from {{ hostname }}\n")
    (template,) = load_recipe(path).services[0].templates
    assert (template.dest, template.content) == ("/etc/web/index.html",
                                                 "hello from {{ hostname }}\n")


# ---------------------------------------------------------------- apt, resolved for real

CURL = "name: web\npackages: [curl]\nrun: {argv: [curl]}\n"


def _resolved_names(tmp_path: Path, distro: str) -> set[str]:
    recipe = load_recipe(write_recipe(tmp_path, {"web": CURL},
                                      image=APT_IMAGE.format(distro=distro)))
    resolution = resolve(recipe, cache_dir=default_cache_dir(), with_init_python=False)
    return {p.name for p in resolution.packages}


@pytest.mark.tools
def test_recommends_true_resolves_the_recommended_packages_too(tmp_path: Path) -> None:
    plain = _resolved_names(tmp_path / "plain", "")
    recommended = _resolved_names(tmp_path / "recommends", ", recommends: true")
    assert "ca-certificates" not in plain            # curl only recommends it
    assert "ca-certificates" in recommended and plain < recommended


@pytest.mark.tools
def test_the_essential_variant_leaves_out_what_minbase_adds(tmp_path: Path) -> None:
    minbase = _resolved_names(tmp_path / "minbase", "")
    essential = _resolved_names(tmp_path / "essential", ", variant: essential")
    # Priority: required, not Essential: yes (mount, e2fsprogs, tzdata) stays out.
    assert {"curl", "base-files", "mount", "e2fsprogs"} <= minbase
    assert {"curl", "base-files"} <= essential
    assert not {"mount", "e2fsprogs"} & essential and essential < minbase


# ---------------------------------------------------------------- dnf, built on the fixture


@pytest.fixture()
def rpm_fixture(tmp_path: Path) -> tuple[Path, str]:
    name = f"monoimage-test-keys-{secrets.token_hex(3)}"
    repo = make_dnf_repo(tmp_path / "repo")
    return write_dnf_recipe(tmp_path / "recipe", repo, name), name


def _with(recipe: Path, old: str, new: str) -> Path:
    text = recipe.read_text()
    assert old in text
    recipe.write_text(text.replace(old, new, 1))
    return recipe


def _dnf_options(tag: str, tmp_path: Path) -> BuildOptions:
    return BuildOptions(tag=tag, cache_dir=tmp_path / "cache", out_dir=tmp_path / "out",
                        with_init_python=False)


@pytest.mark.build
@pytest.mark.tools
def test_strip_packages_removes_a_build_only_package_from_the_image(
        rpm_fixture: tuple[Path, str], tmp_path: Path) -> None:
    path, _ = rpm_fixture
    recipe = load_recipe(_with(path, "strip:\n  docs: true\n",
                               "strip:\n  docs: true\n  packages: [gamma-solo]\n"))
    tag = unique_tag("strip-packages")
    try:
        build(recipe, _dnf_options(tag, tmp_path))
        with opened(tag) as (_container, root):
            installed = {p.name for p in DnfPackager().list_installed(root)}
            manifest = json.loads((root / MANIFEST_PATH.lstrip("/")).read_text())
            assert not (root / "usr/bin/gamma-solo").exists()
    finally:
        remove_images(tag)
    assert "gamma-solo" not in installed and {"alpha-daemon", "beta-agent"} <= installed
    assert "gamma-solo" not in {p["name"] for p in manifest["packages"]}


@pytest.mark.build
@pytest.mark.tools
def test_gpgcheck_refuses_the_fixtures_unsigned_packages(rpm_fixture: tuple[Path, str],
                                                         tmp_path: Path) -> None:
    path, _ = rpm_fixture
    recipe = load_recipe(_with(path, "      baseurl: ", "      gpgcheck: true\n      baseurl: "))
    assert recipe.distro.repositories[0].gpgcheck is True
    tag = unique_tag("gpgcheck")
    with pytest.raises(UserError) as caught:
        build(recipe, _dnf_options(tag, tmp_path))
    assert "dnf install failed" in str(caught.value)
    assert "not signed" in str(caught.value) or "GPG" in str(caught.value)
