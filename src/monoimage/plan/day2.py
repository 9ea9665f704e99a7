"""Day 2: one package updated, the recipes before and after, and which versions changed (pure).

`--update NAME=VERSION` means: on day 1 the site runs the newest NAME older than VERSION, on
day 2 it runs VERSION, from the recipe's repositories plus any extra ones (a security
repository, say, configured on both days). The pins ride on requesters that already need NAME,
so the update changes the versions in the images, never which image a package lands in.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from monoimage.errors import UserError
from monoimage.plan.comparator_plan import BASE_REQUESTERS
from monoimage.plan.merge import BASE
from monoimage.plan.resolution import Resolution
from monoimage.recipe.model import AptRepository, DnfRepository, PackageRequest, Recipe, Service
from monoimage.recipe.versions import Constraint, Family, compare, is_valid_version

Repository = AptRepository | DnfRepository


@dataclass(frozen=True)
class PackageUpdate:
    """`NAME=VERSION`: the package a day-2 update brings, and its new version."""

    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name}={self.version}"


def parse_update(text: str) -> PackageUpdate:
    """`NAME=VERSION` → PackageUpdate; anything else is a UserError that says so."""
    name, sep, version = text.partition("=")
    name, version = name.strip(), version.strip()
    if not sep or not name or not version:
        raise UserError(f"--update {text!r}: expected NAME=VERSION, e.g. libssl3=3.0.15-1")
    if not (is_valid_version(Family.APT, version) or is_valid_version(Family.DNF, version)):
        raise UserError(f"--update {text!r}: {version!r} is not a package version")
    return PackageUpdate(name, version)


@dataclass(frozen=True)
class UpdateRecipes:
    """The recipe as built on day 1 and on day 2."""

    before: Recipe
    after: Recipe


def update_recipes(recipe: Recipe, resolution: Resolution, update: PackageUpdate,
                   extra: Sequence[Repository] = (),
                   host_repositories: Sequence[Repository] = ()) -> UpdateRecipes:
    """Day 1: NAME older than VERSION; day 2: NAME = VERSION.

    Extra repositories (where VERSION comes from, a security repository say) are configured on
    both days, as a distribution's security repository is: a build writes its sources into
    the image, so adding a repository only on day 2 would change every image. `resolution`
    is the recipe's own; `host_repositories` are the build host's apt sources, needed when
    the recipe names none (apt then uses only the recipe's, and the extra ones must not
    replace the host's).
    """
    family = recipe.distro.packager
    try:
        current = resolution.package(update.name)
    except KeyError:
        raise UserError(f"--update {update}: {update.name} is not in the image's package "
                        f"closure") from None
    if not is_valid_version(family, update.version):
        raise UserError(f"--update {update}: {update.version!r} is not a {family.value} "
                        f"version")
    order = compare(family, current.version, update.version)
    if order > 0:
        raise UserError(f"--update {update}: the recipe already resolves {update.name} "
                        f"{current.version}, newer than {update.version}")
    base = recipe
    if extra:
        own = recipe.distro.repositories or tuple(host_repositories)
        base = dataclasses.replace(recipe, distro=dataclasses.replace(
            recipe.distro, repositories=(*own, *extra)))
    requesters = _requesters(resolution, update.name)
    before = (recipe if order < 0 and not extra
              else _pin(base, requesters, update.name, Constraint("<", update.version),
                        "before"))
    after = _pin(base, requesters, update.name, Constraint("=", update.version), str(update))
    return UpdateRecipes(before, after)


def _requesters(resolution: Resolution, name: str) -> tuple[str, ...]:
    """Who carries the pin: the base if it needs the package, else every service that does."""
    needed_by = resolution.needed_by()[name]
    if not needed_by or BASE_REQUESTERS.intersection(needed_by):
        return (BASE,)
    return needed_by


def _pin(recipe: Recipe, requesters: Sequence[str], name: str, constraint: Constraint,
         why: str) -> Recipe:
    request = PackageRequest(name, constraint)
    family = recipe.distro.packager
    digest = hashlib.sha256(f"{recipe.digest}\n{why}".encode()).hexdigest()
    if BASE in requesters:
        return dataclasses.replace(recipe, base_packages=(*recipe.base_packages, request),
                                   digest=f"sha256:{digest}")
    services = tuple(_with_request(s, request, family) if s.name in requesters else s
                     for s in recipe.services)
    return dataclasses.replace(recipe, services=services, digest=f"sha256:{digest}")


def _with_request(service: Service, request: PackageRequest, family: Family) -> Service:
    packages = service.packages
    if family is Family.APT:
        packages = dataclasses.replace(packages, apt=(*packages.apt, request))
    else:
        packages = dataclasses.replace(packages, dnf=(*packages.dnf, request))
    return dataclasses.replace(service, packages=packages)


# ---------------------------------------------------------------- what changed


@dataclass(frozen=True)
class VersionChange:
    """A package whose version differs between the two resolutions (None: absent)."""

    name: str
    before: str | None
    after: str | None


def version_changes(before: Resolution, after: Resolution) -> tuple[VersionChange, ...]:
    """Every package added, removed or at another version on day 2, by name."""
    old = {p.name: p.version for p in before.packages}
    new = {p.name: p.version for p in after.packages}
    return tuple(VersionChange(name, old.get(name), new.get(name))
                 for name in sorted(old.keys() | new.keys()) if old.get(name) != new.get(name))
