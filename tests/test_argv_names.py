"""A package name or image reference that starts with `-` reaches the program as a name, never
as one of its options: every argv puts `--` before names. These call the tools layer directly,
past the recipe's own validation of names, with the real dpkg, rpm, apt and buildah."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from pathlib import Path

import pytest

from buildsupport import write_tiny_recipe
from monoimage.errors import UserError
from monoimage.plan.merge import plan
from monoimage.plan.resolution import ResolvedPackage
from monoimage.recipe.load import load_recipe
from monoimage.tools import buildah, podman
from monoimage.tools.cache_dir import default_cache_dir
from monoimage.tools.packagers.apt import AptPackager, snapshot_root
from monoimage.tools.packagers.dnf import DnfPackager
from monoimage.tools.run import ToolError

HOST_DPKG_STATUS = Path("/var/lib/dpkg/status")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def empty_dpkg_root(tmp_path: Path) -> Path:
    for sub in ("info", "updates"):
        (tmp_path / "root/var/lib/dpkg" / sub).mkdir(parents=True)
    (tmp_path / "root/var/lib/dpkg/status").write_text("")
    return tmp_path / "root"


def test_dpkg_purge_takes_an_option_shaped_name_as_a_name(empty_dpkg_root):
    # Without `--`, dpkg's last --root wins: the purge would act on the build host.
    before = _digest(HOST_DPKG_STATUS)
    with pytest.raises(ToolError) as caught:
        AptPackager().remove(empty_dpkg_root, ("--root=/",))
    assert "illegal package name in specifier '--root=/'" in str(caught.value)
    assert caught.value.done.argv[-2:] == ("--", "--root=/")
    assert _digest(HOST_DPKG_STATUS) == before


def test_rpm_erase_takes_an_option_shaped_name_as_a_name(tmp_path):
    (tmp_path / "root").mkdir()
    with pytest.raises(ToolError) as caught:
        DnfPackager().remove(tmp_path / "root", ("--root=/",))
    assert "package --root=/ is not installed" in str(caught.value)


def test_dpkg_query_lists_an_empty_database(empty_dpkg_root):
    assert AptPackager().list_installed(empty_dpkg_root) == ()


@pytest.fixture(scope="module")
def tiny_recipe(tmp_path_factory: pytest.TempPathFactory):
    return load_recipe(write_tiny_recipe(tmp_path_factory.mktemp("argv")))


def test_apt_resolution_takes_an_option_shaped_name_as_an_unknown_package(tiny_recipe):
    # Without `--`, `apt-get -s install --version` prints apt's version and exits 0: the
    # name would silently vanish from the resolution.
    packages = plan(tiny_recipe).packages
    entry = packages.entries[0]
    bogus = dataclasses.replace(packages, entries=(
        *packages.entries, dataclasses.replace(entry, name="--version")))
    with pytest.raises(UserError) as caught:
        AptPackager().resolve(tiny_recipe, bogus, cache_dir=default_cache_dir())
    assert "unknown package '--version'" in str(caught.value)


def test_apt_download_takes_an_option_shaped_name_as_a_name(tiny_recipe, tmp_path):
    package = ResolvedPackage(name="--print-uris", version="1", arch="amd64",
                              download_size=0, installed_size=0)
    with snapshot_root(tiny_recipe, default_cache_dir(), "argv-test") as root, \
            pytest.raises(ToolError) as caught:
        root.download([package], tmp_path)
    assert "--print-uris" in caught.value.done.stderr
    assert caught.value.done.argv[-2:] == ("--", "--print-uris=1")


@pytest.mark.parametrize("call", [
    lambda: buildah.inspect_image("--help"),
    lambda: buildah.tag("--help", "localhost/monoimage-test-argv:x"),
    lambda: podman.image_inspect("--help"),
])
def test_an_option_shaped_image_reference_is_refused_not_obeyed(call):
    # obeyed, `--help` would print the help and exit 0
    with pytest.raises(UserError, match="image not known|not in local storage|no options "
                                        "\\(--help\\) can be specified|invalid reference"):
        call()


def test_removing_an_image_named_all_removes_no_other_image():
    name = f"localhost/monoimage-test-argv-{secrets.token_hex(4)}:kept"
    container = buildah.from_scratch(f"monoimage-test-argv-{secrets.token_hex(4)}")
    try:
        buildah.commit(container, name, timestamp=0)
    finally:
        buildah.remove_container(container)
    try:
        with pytest.raises(UserError, match=r"no options \(--all\) can be specified"):
            buildah.remove_image("--all")  # obeyed: every image of this host gone
        assert buildah.image_id(name) is not None
    finally:
        buildah.remove_image(name)
