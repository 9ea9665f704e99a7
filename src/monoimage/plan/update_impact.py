"""What an update touches (pure): every package whose version changed, old → new, and which
services' runtime closures hold it, or that only config-time tools need it.

A service's runtime closure is what its own packages reach through dependencies, plus the base
every service runs on (the distro's minimal set, the recipe's base packages and the init's).
The same table comes from a day-2 build (its resolution against the previous image's layer
record) and from two images' manifests (`monoimage diff`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monoimage.plan.merge import BASE, CONFIG_TOOLS, INIT_REQUESTER
from monoimage.plan.resolution import Resolution

_EVERY_SERVICE = frozenset({BASE, INIT_REQUESTER})


@dataclass(frozen=True)
class PackageFacts:
    """One package of an image: its version, the requesters reaching it, whether it is in the
    distro's minimal set."""

    version: str
    needed_by: tuple[str, ...] = ()
    base: bool = False


@dataclass(frozen=True)
class PackageImpact:
    """One changed package (None: absent on that side) and who runs it."""

    name: str
    before: str | None
    after: str | None
    services: tuple[str, ...]  # services whose runtime closure holds it
    in_base: bool  # in the base every service runs on
    config_only: bool  # needed only by the config-time tools

    @property
    def touches(self) -> str:
        """`chrony, nginx`, `every service (base)`, `config-time tools only` or `nothing`."""
        if self.config_only:
            return "config-time tools only"
        if self.in_base:
            return "every service (base)"
        return ", ".join(self.services) or "no service"

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "before": self.before, "after": self.after,
                "services": list(self.services), "base": self.in_base,
                "config_only": self.config_only}


def facts_from_resolution(resolution: Resolution,
                          versions: Mapping[str, str] | None = None) -> dict[str, PackageFacts]:
    """Every package of a resolution (`versions`: the installed ones, where they differ)."""
    needed_by = resolution.needed_by()
    return {p.name: PackageFacts((versions or {}).get(p.name, p.version),
                                 needed_by.get(p.name, ()), p.base)
            for p in resolution.packages if versions is None or p.name in versions}


def facts_from_manifest(doc: Mapping[str, Any]) -> tuple[tuple[str, ...], dict[str, PackageFacts]]:
    """The services and packages an image's manifest.json lists."""
    services = tuple(str(s) for s in doc.get("services") or ())
    facts = {}
    for entry in doc.get("packages") or ():
        why = str(entry.get("why", ""))
        facts[str(entry["name"])] = PackageFacts(
            str(entry["version"]), tuple(str(n) for n in entry.get("needed_by") or ()),
            base=why.endswith("(distro minimal set)"))
    return services, facts


def update_impact(before: Mapping[str, PackageFacts], after: Mapping[str, PackageFacts],
                  services: Sequence[str]) -> tuple[PackageImpact, ...]:
    """Every package added, removed or at another version, by name, with who runs it."""
    found = []
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old is not None and new is not None and old.version == new.version:
            continue
        facts = [f for f in (new, old) if f is not None]
        reached = set(facts[0].needed_by or (facts[-1].needed_by))
        in_base = any(f.base for f in facts) or bool(reached & _EVERY_SERVICE)
        config_only = not in_base and reached == {CONFIG_TOOLS}
        found.append(PackageImpact(
            name, old.version if old else None, new.version if new else None,
            tuple(s for s in services if in_base or s in reached), in_base, config_only))
    return tuple(found)
