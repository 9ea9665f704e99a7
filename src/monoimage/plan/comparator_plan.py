"""The layered comparators, planned (pure): a base image plus one child image per service.

`kolla-style` is how OpenStack Kolla and TripleO ship edge services: the base holds the distro's
minimal set, the recipe's base packages and config tools, and the entrypoint's runtime; each
service's child installs the rest of that service's dependency closure on top of it.
`shared-base` moves every package that two or more services need into the base: the best a
layered build can do. Both install exactly the versions the golden image pins, so the three
strategies differ only in how the same packages are cut into images.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from monoimage.plan.merge import BASE, CONFIG_TOOLS, INIT_REQUESTER
from monoimage.plan.resolution import Resolution, ResolvedPackage

LayeredStrategy = Literal["kolla-style", "shared-base"]
STRATEGIES: tuple[LayeredStrategy, ...] = ("kolla-style", "shared-base")
BASE_REQUESTERS = frozenset({BASE, CONFIG_TOOLS, INIT_REQUESTER})


@dataclass(frozen=True)
class ChildImage:
    """One service's image: the packages it adds on top of the base."""

    service: str
    packages: tuple[ResolvedPackage, ...]  # sorted by name


@dataclass(frozen=True)
class LayeredPlan:
    strategy: LayeredStrategy
    base: tuple[ResolvedPackage, ...]  # sorted by name
    children: tuple[ChildImage, ...]  # in the recipe's service order

    @property
    def duplicated(self) -> dict[str, tuple[str, ...]]:
        """Packages that more than one child installs, with the children that do."""
        owners: dict[str, list[str]] = {}
        for child in self.children:
            for pkg in child.packages:
                owners.setdefault(pkg.name, []).append(child.service)
        return {name: tuple(who) for name, who in sorted(owners.items()) if len(who) > 1}


def plan_layered(resolution: Resolution, services: Iterable[str],
                 strategy: LayeredStrategy) -> LayeredPlan:
    """Cut the golden image's closure into a base and one child per service."""
    services = tuple(services)
    needed_by = resolution.needed_by()
    in_base = {p.name for p in resolution.packages
               if p.base or BASE_REQUESTERS.intersection(needed_by[p.name])}
    if strategy == "shared-base":
        in_base |= {name for name, who in needed_by.items()
                    if len(set(who).intersection(services)) >= 2}
    base = tuple(p for p in resolution.packages if p.name in in_base)
    children = tuple(
        ChildImage(service, tuple(p for p in resolution.packages
                                  if p.name not in in_base and service in needed_by[p.name]))
        for service in services)
    return LayeredPlan(strategy, base, children)
