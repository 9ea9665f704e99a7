"""Packager adapters: resolution from real repository metadata (Debian's mirror for apt,
RPM repositories built here for dnf), closures, pins and the errors users cause."""

from __future__ import annotations

from pathlib import Path

import pytest
from debian.deb822 import Deb822

from monoimage.errors import UserError
from monoimage.pipeline.build import resolve
from monoimage.plan.resolution import Resolution, ResolvedPackage
from monoimage.recipe.model import (
    Distro,
    DnfRepository,
    FamilyPackages,
    PackageRequest,
    Recipe,
    Service,
)
from monoimage.recipe.versions import Family, parse_constraint
from monoimage.tools.cache_dir import default_cache_dir
from monoimage.tools.packagers.apt import _closure, _relations
from rpmrepo import EDGE_FIXTURE, RpmSpec, make_rpm_repo


def _request(text: str) -> PackageRequest:
    name, constraint = parse_constraint(text)
    return PackageRequest(name, constraint)


def _service(name: str, *packages: str) -> Service:
    return Service(name, f"{name}.yaml",
                   packages=FamilyPackages(common=tuple(_request(p) for p in packages)))


def apt_recipe(*services: Service, base: tuple[str, ...] = ()) -> Recipe:
    return Recipe(name="t", tag="1", source="t.yaml", digest="sha256:0",
                  distro=Distro("debian", "bookworm", Family.APT),
                  base_packages=tuple(_request(b) for b in base), services=services)


def dnf_recipe(repo: Path, *services: Service) -> Recipe:
    return Recipe(name="t", tag="1", source="t.yaml", digest="sha256:0",
                  distro=Distro("fedora", "39", Family.DNF, architecture="x86_64",
                                repositories=(DnfRepository("fixture", f"file://{repo}"),)),
                  services=services)


# ------------------------------------------------------------------ pure parts


def test_relations_keep_names_of_every_alternative():
    assert _relations("libc6 (>= 2.34), awk | mawk:any, ") == [["libc6"], ["awk", "mawk"]]


def test_closure_maps_virtual_dependencies_to_their_provider():
    stanzas = {
        "mawk": Deb822({"Package": "mawk", "Version": "1.3", "Architecture": "amd64",
                        "Provides": "awk", "Size": "10", "Installed-Size": "2"}),
        "tool": Deb822({"Package": "tool", "Version": "1", "Architecture": "all",
                        "Depends": "awk, missing | mawk", "Pre-Depends": "tool"}),
    }
    packages = {p.name: p for p in _closure(stanzas, {"tool": ("svc",)}, base={"mawk"})}
    assert packages["tool"].depends == ("mawk",)
    assert packages["tool"].requested_by == ("svc",)
    assert packages["mawk"].base and packages["mawk"].installed_size == 2048


def test_needed_by_follows_dependencies_transitively():
    resolution = Resolution(Family.APT, "r", "amd64", (
        ResolvedPackage("a", "1", "all", 1, 1, ("svc1",), depends=("b",)),
        ResolvedPackage("b", "1", "all", 1, 1, depends=("c",)),
        ResolvedPackage("c", "1", "all", 1, 1, ("svc2",)),
        ResolvedPackage("d", "1", "all", 1, 1, base=True)))
    assert resolution.needed_by() == {"a": ("svc1",), "b": ("svc1",), "c": ("svc1", "svc2"),
                                      "d": ()}


# ------------------------------------------------------------------ apt, real metadata


@pytest.fixture(scope="module")
def edge_apt() -> Resolution:
    recipe = apt_recipe(_service("mqtt", "mosquitto"), _service("kv", "redis-server"),
                        base=("ca-certificates",))
    return resolve(recipe, cache_dir=default_cache_dir())


@pytest.mark.tools
def test_apt_closure_includes_minbase_the_init_python_and_dependencies(edge_apt):
    names = set(edge_apt.names)
    assert {"dpkg", "apt", "libc6", "mosquitto", "redis-server", "python3-minimal"} <= names
    assert edge_apt.package("python3-minimal").requested_by == ("monoimage-init",)
    assert edge_apt.package("dpkg").base and not edge_apt.package("mosquitto").base
    assert "libmosquitto1" in edge_apt.package("mosquitto").depends
    assert edge_apt.needed_by()["libmosquitto1"] == ("mqtt",)
    assert all(p.download_size > 0 and p.installed_size > 0 for p in edge_apt.packages)
    assert len(names) == len(edge_apt.packages)  # one entry per package name


@pytest.mark.tools
def test_apt_constraint_pins_the_best_satisfying_version():
    recipe = apt_recipe(_service("kv", "redis-server >= 5:7.0"))
    resolution = resolve(recipe, cache_dir=default_cache_dir())
    assert resolution.package("redis-server").version.startswith("5:7.0")


@pytest.mark.tools
def test_apt_unsatisfiable_constraint_names_package_constraint_and_versions():
    recipe = apt_recipe(_service("kv", "redis-server >= 5:99"))
    with pytest.raises(UserError) as err:
        resolve(recipe, cache_dir=default_cache_dir())
    message = str(err.value)
    assert "'redis-server'" in message and "kv wants redis-server >= 5:99" in message
    assert "available: 5:7.0" in message


@pytest.mark.tools
def test_apt_unknown_package_is_one_clear_error():
    recipe = apt_recipe(_service("ghost", "no-such-package-monoimage"))
    with pytest.raises(UserError, match=r"unknown package 'no-such-package-monoimage' "
                                        r"\(requested by ghost\)"):
        resolve(recipe, cache_dir=default_cache_dir())


# ------------------------------------------------------------------ dnf, repository built here


@pytest.fixture(scope="module")
def rpm_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_rpm_repo(tmp_path_factory.mktemp("rpmrepo"), EDGE_FIXTURE)


@pytest.mark.tools
def test_dnf_shared_dependency_once_at_the_version_both_constraints_allow(rpm_repo, tmp_path):
    recipe = dnf_recipe(rpm_repo, _service("alpha", "alpha-daemon", "libshared >= 1.0"),
                        _service("beta", "beta-tools", "libshared >= 1.1"))
    resolution = resolve(recipe, cache_dir=tmp_path, with_init_python=False)
    assert resolution.names == ("alpha-daemon", "beta-agent", "beta-tools", "common-data",
                                "libshared")
    assert resolution.package("libshared").version == "1.2-1"
    assert resolution.package("libshared").requested_by == ("alpha", "beta")
    assert resolution.package("beta-tools").depends == ("beta-agent",)
    assert resolution.needed_by()["common-data"] == ("alpha", "beta")
    assert all(p.download_size > 0 for p in resolution.packages)


@pytest.mark.tools
def test_dnf_constraint_below_the_newest_pins_the_older_version(rpm_repo, tmp_path):
    recipe = dnf_recipe(rpm_repo, _service("alpha", "libshared < 1.2"))
    resolution = resolve(recipe, cache_dir=tmp_path, with_init_python=False)
    assert resolution.package("libshared").version == "1.0-1"


@pytest.mark.tools
def test_dnf_unsatisfiable_constraint_names_package_constraint_and_versions(rpm_repo, tmp_path):
    recipe = dnf_recipe(rpm_repo, _service("alpha", "libshared >= 2.0"))
    with pytest.raises(UserError) as err:
        resolve(recipe, cache_dir=tmp_path, with_init_python=False)
    assert "'libshared'" in str(err.value) and "alpha wants libshared >= 2.0" in str(err.value)
    assert "available: 1.0-1, 1.2-1" in str(err.value)


@pytest.mark.tools
def test_dnf_unknown_package_and_broken_requires_are_user_errors(rpm_repo, tmp_path):
    with pytest.raises(UserError, match="unknown package 'ghost'"):
        resolve(dnf_recipe(rpm_repo, _service("a", "ghost")), cache_dir=tmp_path,
                with_init_python=False)
    broken = make_rpm_repo(tmp_path / "broken", [RpmSpec("needy", requires=("nowhere",))])
    with pytest.raises(UserError, match="dnf cannot resolve"):
        resolve(dnf_recipe(broken, _service("a", "needy")), cache_dir=tmp_path,
                with_init_python=False)


def test_a_trusted_apt_repository_is_written_trusted() -> None:
    """A local unsigned repository (`trusted: true`) needs apt's `Trusted: yes`."""
    from monoimage.recipe.model import AptRepository
    from monoimage.tools.packagers.apt import _deb822

    text = _deb822(AptRepository(uri="file:///srv/repo", suites=("edge",), trusted=True))
    assert "Trusted: yes" in text.splitlines()
    assert "Trusted" not in _deb822(AptRepository(uri="file:///srv/repo", suites=("edge",)))
