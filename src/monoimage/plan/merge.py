"""Merge every service's packages into one deduplicated set (pure, no I/O).

One entry per package name, remembering who asked for it (the "why"); constraints on the same
name are intersected with the packager's own version ordering. The result does not depend on
the order in which services or packages were listed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from monoimage.errors import UserError
from monoimage.recipe.model import PackageRequest, Recipe
from monoimage.recipe.version_ranges import VersionRange, intersect
from monoimage.recipe.versions import Constraint, Family

BASE = "base"
CONFIG_TOOLS = "config-tools"
INIT_REQUESTER = "monoimage-init"
# The in-image supervisor runs on the distro's minimal Python (see docs/architecture.md).
INIT_PACKAGES = {Family.APT: ("python3-minimal",), Family.DNF: ("python3",)}


class ConflictError(UserError):
    """No version of a package satisfies every requester's constraint."""


@dataclass(frozen=True)
class Requirement:
    """Who asked for a package, and with which constraint."""

    requester: str
    constraint: Constraint | None
    where: str = field(default="", compare=False)  # `FILE:LINE` of the request


@dataclass(frozen=True)
class PackageEntry:
    """One package of the merged set."""

    name: str
    requirements: tuple[Requirement, ...]  # sorted by requester
    range: VersionRange

    @property
    def requested_by(self) -> tuple[str, ...]:
        return tuple(sorted({r.requester for r in self.requirements}))

    @property
    def constraints(self) -> tuple[Constraint, ...]:
        return tuple(r.constraint for r in self.requirements if r.constraint is not None)

    @property
    def shared(self) -> bool:
        return len(self.requested_by) > 1


@dataclass(frozen=True)
class PackageSet:
    family: Family
    entries: tuple[PackageEntry, ...]  # sorted by name

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.entries)

    def entry(self, name: str) -> PackageEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise KeyError(name)


@dataclass(frozen=True)
class Plan:
    """The recipe and its merged package set: what the build will install, and why."""

    recipe: Recipe
    packages: PackageSet
    requested: int  # package requests before deduplication

    @property
    def shared(self) -> tuple[PackageEntry, ...]:
        return tuple(e for e in self.packages.entries if e.shared)


def merge(requests: Iterable[tuple[str, PackageRequest]], family: Family) -> PackageSet:
    """Union of (requester, request) pairs: one entry per name; conflicts raise ConflictError."""
    by_name: dict[str, set[Requirement]] = {}
    for requester, request in requests:
        by_name.setdefault(request.name, set()).add(
            Requirement(requester, request.constraint, request.where))
    entries = []
    for name in sorted(by_name):
        requirements = tuple(sorted(by_name[name], key=_requirement_key))
        constraints = [r.constraint for r in requirements if r.constraint is not None]
        version_range = intersect(family, constraints)
        if version_range.is_empty:
            raise ConflictError(_conflict_message(name, requirements))
        entries.append(PackageEntry(name, requirements, version_range))
    return PackageSet(family, tuple(entries))


def recipe_requests(recipe: Recipe, *, with_init: bool = True
                    ) -> tuple[tuple[str, PackageRequest], ...]:
    """Every (requester, package) pair of a recipe: base, config tools, services, the init."""
    family = recipe.distro.packager
    pairs: list[tuple[str, PackageRequest]] = [(BASE, p) for p in recipe.base_packages]
    pairs += [(CONFIG_TOOLS, p) for p in recipe.config_tools]
    for service in recipe.services:
        pairs += [(service.name, p) for p in service.packages.for_family(family)]
    if with_init:
        pairs += [(INIT_REQUESTER, PackageRequest(name)) for name in INIT_PACKAGES[family]]
    return tuple(pairs)


def plan(recipe: Recipe, *, with_init: bool = True) -> Plan:
    """The recipe's merged, deduplicated package set."""
    pairs = recipe_requests(recipe, with_init=with_init)
    return Plan(recipe, merge(pairs, recipe.distro.packager), requested=len(pairs))


def _requirement_key(requirement: Requirement) -> tuple[str, str, str]:
    constraint = requirement.constraint
    return (requirement.requester, constraint.op if constraint else "",
            constraint.version if constraint else "")


def _conflict_message(name: str, requirements: tuple[Requirement, ...]) -> str:
    """`FILE:LINE: package 'x': …` at the first constrained request, naming where each is."""
    wants = "; ".join(
        (f"{r.requester} wants {name} {r.constraint}" if r.constraint
         else f"{r.requester} wants any {name}") + (f" ({r.where})" if r.where else "")
        for r in requirements)
    first = next((r.where for r in requirements if r.constraint and r.where), "")
    return (f"{first}: " if first else "") + (
        f"package '{name}': no version satisfies every constraint: {wants}")
