"""Day 2, the pure parts: --update parsing, the day-1/day-2 recipes, what changed; apt sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from monoimage.errors import UserError
from monoimage.footprint.changes import image_changes
from monoimage.footprint.figures import Strategy
from monoimage.footprint.oci import Blob, Image, Layer
from monoimage.plan.day2 import PackageUpdate, parse_update, update_recipes, version_changes
from monoimage.plan.merge import plan
from monoimage.plan.resolution import Resolution, ResolvedPackage
from monoimage.recipe.model import (
    AptRepository,
    Distro,
    FamilyPackages,
    PackageRequest,
    Recipe,
    Service,
)
from monoimage.recipe.versions import Constraint, Family
from monoimage.tools.packagers.apt_sources import host_repositories, parse_source_line


def pkg(name: str, version: str, *depends: str, by: tuple[str, ...] = (),
        base: bool = False) -> ResolvedPackage:
    return ResolvedPackage(name, version, "amd64", 1000, 4000, by, tuple(depends), base)


def service(name: str, *packages: str) -> Service:
    return Service(name=name, source=f"{name}.yaml",
                   packages=FamilyPackages(common=tuple(PackageRequest(p) for p in packages)))


RECIPE = Recipe(name="edge", tag="1", source="edge.yaml", digest="sha256:abc",
                distro=Distro("debian", "bookworm", Family.APT),
                base_packages=(PackageRequest("ca-certificates"),),
                services=(service("web", "nginx"), service("mqtt", "mosquitto"),
                          service("dns", "dnsmasq")))
# libkrb5 is needed by web and mqtt; libssl by the base (through ca-certificates) and web.
RESOLUTION = Resolution(Family.APT, "bookworm", "amd64", tuple(sorted([
    pkg("libc6", "2.36", base=True),
    pkg("ca-certificates", "1", "libssl3", by=("base",)),
    pkg("libssl3", "3.0.1", "libc6"),
    pkg("libkrb5-3", "1.20", "libc6"),
    pkg("nginx", "1.22", "libssl3", "libkrb5-3", by=("web",)),
    pkg("mosquitto", "2.0", "libkrb5-3", by=("mqtt",)),
    pkg("dnsmasq", "2.89", by=("dns",)),
], key=lambda p: p.name)))


def requests_of(recipe: Recipe, name: str) -> dict[str, str]:
    """Who asks for `name` in the recipe's merged set, with which constraint."""
    entry = plan(recipe, with_init=False).packages.entry(name)
    return {r.requester: str(r.constraint) for r in entry.requirements}


def test_parse_update_reads_name_and_version() -> None:
    assert parse_update("libssl3=3.0.11-1~deb12u2+monoimage1") == \
        PackageUpdate("libssl3", "3.0.11-1~deb12u2+monoimage1")
    assert parse_update(" libshared = 1:1.0-2 ") == PackageUpdate("libshared", "1:1.0-2")


@pytest.mark.parametrize("text", ["libssl3", "=1.0", "libssl3=", "libssl3=not a version"])
def test_parse_update_refuses_what_is_not_name_equals_version(text: str) -> None:
    with pytest.raises(UserError, match="--update"):
        parse_update(text)


def test_update_of_a_child_package_pins_it_on_every_service_that_needs_it() -> None:
    recipes = update_recipes(RECIPE, RESOLUTION, PackageUpdate("libkrb5-3", "1.21"))
    assert recipes.before is RECIPE  # day 1 already runs an older version: the recipe as is
    assert requests_of(recipes.after, "libkrb5-3") == {"web": "= 1.21", "mqtt": "= 1.21"}
    assert recipes.after.base_packages == RECIPE.base_packages
    assert recipes.after.digest != RECIPE.digest


def test_update_of_a_base_package_pins_it_in_the_base() -> None:
    recipes = update_recipes(RECIPE, RESOLUTION, PackageUpdate("libssl3", "3.0.2"))
    assert requests_of(recipes.after, "libssl3") == {"base": "= 3.0.2"}
    assert recipes.after.services == RECIPE.services


def test_when_day_one_already_has_the_new_version_day_one_takes_an_older_one() -> None:
    recipes = update_recipes(RECIPE, RESOLUTION, PackageUpdate("libkrb5-3", "1.20"))
    assert requests_of(recipes.before, "libkrb5-3") == {"web": "< 1.20", "mqtt": "< 1.20"}
    assert requests_of(recipes.after, "libkrb5-3") == {"web": "= 1.20", "mqtt": "= 1.20"}


def test_update_to_an_older_version_or_outside_the_closure_is_refused() -> None:
    with pytest.raises(UserError, match="already resolves libkrb5-3 1.20, newer than 1.19"):
        update_recipes(RECIPE, RESOLUTION, PackageUpdate("libkrb5-3", "1.19"))
    with pytest.raises(UserError, match="not in the image's package closure"):
        update_recipes(RECIPE, RESOLUTION, PackageUpdate("redis-server", "7.0"))


def test_extra_repositories_go_beside_the_hosts_own_when_the_recipe_names_none() -> None:
    host = AptRepository("http://mirror.invalid/debian", ("bookworm",))
    extra = AptRepository("copy:///srv/updates", ("monoimage-updates",), signed_by="/k.gpg")
    recipes = update_recipes(RECIPE, RESOLUTION, PackageUpdate("libkrb5-3", "1.21"),
                             extra=(extra,), host_repositories=(host,))
    assert recipes.after.distro.repositories == (host, extra)
    # configured on day 1 too (a build writes its sources into the image), where the pin
    # keeps the older version
    assert recipes.before.distro.repositories == (host, extra)
    assert requests_of(recipes.before, "libkrb5-3") == {"web": "< 1.21", "mqtt": "< 1.21"}


def test_version_changes_lists_changed_added_and_removed_packages() -> None:
    after = Resolution(Family.APT, "bookworm", "amd64", tuple(
        p if p.name != "libkrb5-3" else pkg("libkrb5-3", "1.21", "libc6")
        for p in RESOLUTION.packages if p.name != "dnsmasq") + (pkg("zz-new", "1"),))
    assert [(c.name, c.before, c.after) for c in version_changes(RESOLUTION, after)] == [
        ("dnsmasq", "2.89", None), ("libkrb5-3", "1.20", "1.21"), ("zz-new", None, "1")]


def _layer(digest: str, size: int) -> Layer:
    return Layer(Blob(digest, size, "application/vnd.oci.image.layer.v1.tar+gzip"),
                 "sha256:diff-" + digest, size * 3, ())


def _image(ref: str, manifest: str, *layers: Layer) -> Image:
    return Image(ref, Blob(manifest, 500, "m"), Blob("cfg-" + manifest, 900, "c"), layers)


def test_image_changes_name_the_new_layers_of_each_image_once() -> None:
    base, web, dns = _layer("base", 50), _layer("web1", 5), _layer("dns1", 3)
    before = Strategy("kolla-style", (_image("b", "mb", base), _image("w", "mw", base, web),
                                      _image("d", "md", base, dns)))
    base2, web2 = _layer("base2", 51), _layer("web2", 6)
    after = Strategy("kolla-style", (_image("b2", "mb2", base2),
                                     _image("w2", "mw2", base2, web2),
                                     _image("d2", "md", base, dns)))  # unchanged
    changes = image_changes(before, after)
    assert [(c.image, c.manifest_changed, c.new_layers) for c in changes] == [
        ("b2", True, (("base2", 51),)),
        ("w2", True, (("web2", 6),)),  # base2 counted once, with the base image
        ("d2", False, ()),
    ]
    assert changes[0].new_bytes == 51


# ---------------------------------------------------------------- apt sources as data


def test_source_lines_read_options_uri_suite_and_components() -> None:
    assert parse_source_line("[signed-by=/k.gpg trusted=yes] copy:///srv/repo updates main "
                             "contrib") == AptRepository("copy:///srv/repo", ("updates",),
                                                         ("main", "contrib"), "/k.gpg", True)
    assert parse_source_line("deb http://h.invalid/debian bookworm") == \
        AptRepository("http://h.invalid/debian", ("bookworm",), ("main",))
    with pytest.raises(UserError, match="URI SUITE"):
        parse_source_line("copy:///srv/repo")


def test_host_repositories_read_deb822_and_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb [signed-by=/a.gpg] http://a.invalid/debian bookworm main\n"
        "deb-src http://a.invalid/debian bookworm main\n")
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://b.invalid/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /b.gpg\n\n"
        "Types: deb\nURIs: http://c.invalid/x\nSuites: x\nComponents: main\nEnabled: no\n")
    (tmp_path / "sources.list.d" / "old.list.disabled").write_text(
        "deb http://d.invalid/ x main\n")
    assert host_repositories(tmp_path) == (
        AptRepository("http://a.invalid/debian", ("bookworm",), ("main",), "/a.gpg"),
        AptRepository("http://b.invalid/debian", ("bookworm", "bookworm-updates"), ("main",),
                      "/b.gpg"),
    )


def test_constraint_used_for_pins_is_the_versions_module_one() -> None:
    recipes = update_recipes(RECIPE, RESOLUTION, PackageUpdate("libkrb5-3", "1.21"))
    web = recipes.after.service("web")
    assert PackageRequest("libkrb5-3", Constraint("=", "1.21")) in web.packages.apt
