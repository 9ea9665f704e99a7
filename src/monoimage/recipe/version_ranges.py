"""Version ranges (pure): the versions a set of constraints allows, in the packager's ordering.

Empty ranges: ``intersect`` reports a range empty when its bounds cross (or meet with an
exclusive end). Both orderings are dense in practice (``~`` can always squeeze a version in),
so bounds that do not cross always leave room for some version.

See versions.py for the two orderings and what a missing rpm release means to each.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from monoimage.recipe.versions import (
    Constraint,
    Family,
    check_version,
    compare,
    parse_evr,
    rpmvercmp,
)

# --- ranges ---------------------------------------------------------------------------------
#
# A bound's key places it in a total order. For APT that is the version itself. For DNF a
# release-less version V is an interval (all of V's releases), so it has two keys: just
# below every release of V ("floor") and just above ("ceiling"). A bound takes the floor or
# the ceiling depending on its side and inclusivity, which is how rpm's dependency matching
# treats a missing release.

_FLOOR, _RELEASE, _CEILING = 0, 1, 2


@dataclass(frozen=True)
class Bound:
    """One end of a version range."""

    version: str
    inclusive: bool


@dataclass(frozen=True)
class _Key:
    family: Family
    version: str  # APT: the version; DNF: the whole EVR
    place: int  # DNF: _FLOOR / _RELEASE / _CEILING


def _key(family: Family, bound: Bound, lower: bool) -> _Key:
    if family == Family.APT or parse_evr(bound.version).release is not None:
        return _Key(family, bound.version, _RELEASE)
    # `>= V` and `< V` start at V's floor; `> V` and `<= V` end at V's ceiling.
    return _Key(family, bound.version, _FLOOR if lower == bound.inclusive else _CEILING)


def _compare_keys(a: _Key, b: _Key) -> int:
    if a.family == Family.APT:
        return compare(Family.APT, a.version, b.version)
    evr_a, evr_b = parse_evr(a.version), parse_evr(b.version)
    result = rpmvercmp(evr_a.epoch, evr_b.epoch) or rpmvercmp(evr_a.version, evr_b.version)
    if result:
        return result
    if a.place != b.place:
        return 1 if a.place > b.place else -1
    if a.place == _RELEASE:
        return rpmvercmp(evr_a.release or "", evr_b.release or "")
    return 0


def _tightest(family: Family, bounds: list[Bound], lower: bool) -> Bound | None:
    """The bound that excludes the most; among equivalent ones the smallest spelling."""

    def looser_first(a: Bound, b: Bound) -> int:
        by_key = _compare_keys(_key(family, a, lower), _key(family, b, lower))
        if by_key:
            return by_key if lower else -by_key
        if a.inclusive != b.inclusive:  # at the same place, an exclusive bound is tighter
            return 1 if a.inclusive < b.inclusive else -1
        # Same set of versions, spelled differently: pick one spelling whatever the order.
        return (a.version < b.version) - (a.version > b.version)

    if not bounds:
        return None
    return max(bounds, key=functools.cmp_to_key(looser_first))


@dataclass(frozen=True)
class VersionRange:
    """The versions allowed by a set of constraints; None bounds are unbounded."""

    family: Family
    lower: Bound | None = None
    upper: Bound | None = None

    @property
    def is_empty(self) -> bool:
        """No version satisfies the range: its bounds cross."""
        if self.lower is None or self.upper is None:
            return False
        order = _compare_keys(_key(self.family, self.lower, True),
                              _key(self.family, self.upper, False))
        if order != 0:
            return order > 0
        return not (self.lower.inclusive and self.upper.inclusive)

    def _is_single_version(self) -> bool:
        if self.lower is None or self.upper is None:
            return False
        if not (self.lower.inclusive and self.upper.inclusive):
            return False
        # Same keys as `= lower.version` would give: e.g. `>= 1.0, <= 1.0` but, for DNF,
        # not `>= 1.0-2, <= 1.0` (releases 2 and later of 1.0).
        point = self.lower.version
        return (_compare_keys(_key(self.family, self.upper, False),
                              _key(self.family, Bound(point, True), False)) == 0
                and _compare_keys(_key(self.family, self.lower, True),
                                  _key(self.family, Bound(self.upper.version, True), True)) == 0)

    def __str__(self) -> str:
        if self.lower is None and self.upper is None:
            return "any"
        if self._is_single_version():
            assert self.lower is not None
            return f"= {self.lower.version}"
        parts = []
        if self.lower is not None:
            parts.append(f"{'>=' if self.lower.inclusive else '>'} {self.lower.version}")
        if self.upper is not None:
            parts.append(f"{'<=' if self.upper.inclusive else '<'} {self.upper.version}")
        return ", ".join(parts)


def intersect(family: Family, constraints: Iterable[Constraint]) -> VersionRange:
    """The range every constraint allows; it may be empty (`is_empty`), for the caller to report.

    The result does not depend on the order of the constraints.
    Raises ValueError when a constraint's version is not valid for the family.
    """
    family = Family(family)
    lowers: list[Bound] = []
    uppers: list[Bound] = []
    for constraint in constraints:
        check_version(family, constraint.version)
        if constraint.op in ("=", ">=", ">"):
            lowers.append(Bound(constraint.version, constraint.op != ">"))
        if constraint.op in ("=", "<=", "<"):
            uppers.append(Bound(constraint.version, constraint.op != "<"))
    return VersionRange(family, _tightest(family, lowers, lower=True),
                        _tightest(family, uppers, lower=False))


def satisfies(family: Family, version: str, constraints: Iterable[Constraint]) -> bool:
    """Whether `version` meets every constraint (rpm: as dependency matching does)."""
    check_version(family, version)
    exact = Constraint("=", version)
    return all(not intersect(family, (exact, constraint)).is_empty
               for constraint in constraints)


def pick_best(family: Family, candidates: Iterable[str],
              constraints: Iterable[Constraint]) -> str | None:
    """The highest candidate that meets every constraint, or None.

    Candidates the packager calls equal (dpkg: `1.0` and `1.0-0`) go to the smallest spelling.
    """
    wanted = tuple(constraints)
    fitting = [version for version in candidates if satisfies(family, version, wanted)]
    if not fitting:
        return None

    def by_version(a: str, b: str) -> int:
        return compare(family, a, b)

    fitting.sort()  # max() keeps the first of equals: the smallest spelling
    return max(fitting, key=functools.cmp_to_key(by_version))
