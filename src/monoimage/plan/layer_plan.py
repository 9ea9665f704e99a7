"""Layering policy (pure): which layers the golden image is cut into, and which file goes where.

`single` is the textbook golden image: one squashed layer over nothing.

`packages` cuts the image along dpkg/rpm file ownership, like Nix's buildLayeredImage, so that a
day-2 update of one package changes only the layer holding its files, plus the metadata and top
layers. A layer's digest depends only on its own files (a layer is the tar of what it adds), so
what must be stable is the *grouping* of packages, whatever else changes in the image:

1. Tier of each package, most shared and least volatile first: `minimal` (the distro's minimal
   set), `shared` (reached by two or more requesters: services, base, config tools, the init),
   `dedicated` (reached by one requester, or none).
2. A package owning at least `solo_bytes` (its files as they are in the image, after strip) gets
   a layer of its own. Every smaller package joins one of `buckets` groups of its tier, chosen
   by a hash of its name alone, so adding, removing or updating one package changes only the
   group it is (or was) in; a package's size moving across `solo_bytes` changes its solo layer
   and its group.
3. At most `max_layers - 2` package layers: while there are more, the smallest solo package
   joins its group; with no solo left, fewer groups per tier; below three layers, one tier.
   Only this squeeze can move a package that did not change (the ranking of sizes decides who
   stays solo), so the budget should leave room: a tier with few large packages never needs it.
4. Layers in order: per tier, solo layers by package name then groups by number; then the
   `metadata` layer (every file no package owns: the package database's shared files,
   ld.so.cache, passwd and group, generated files, the manifest and SBOM; see `ownership` for
   the generated files that go with their package); then the `init` layer (monoimage-init, the
   service table, the template symlinks), which changes most often and is smallest.

Stable across rebuilds (`previous`): given the plan of the image a site runs today (read from
its label, `plan/layer_record.py`), every package it placed stays in its layer, whatever its
size or tier now; a removed package leaves its layer; a new package is planned as above among
the new packages alone and joins the layer of the same name when the previous plan has one, or
a new layer after the kept ones. So a rebuild changes only the layers whose packages changed,
the metadata layer and the init layer. Past the budget, the plan starts from scratch and says so.

File assignment (`assign_paths`): the init's paths go to the init layer, even where a package
owned the same path (a template link replacing a packaged config file); every other path goes to
the earliest layer holding one of its owners, or to the metadata layer when no package owns it.
Each layer also carries every ancestor directory of its paths, copied with the directory's real
metadata, so that identical content gives identical tar entries whichever layers lie below.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from monoimage.errors import UserError
from monoimage.plan.resolution import ResolvedPackage
from monoimage.recipe.model import Layering

TIERS = ("minimal", "shared", "dedicated")
SOLO_BYTES = 1 << 20  # a package at least this big (in the image) gets its own layer
BUCKETS = 4  # groups of small packages per tier
METADATA = "metadata"
INIT = "init"


@dataclass(frozen=True)
class PlannedLayer:
    """One layer: the files of these packages; `rest` adds every file no package owns; `init`
    marks the top layer (monoimage-init, the service table, the template links)."""

    name: str
    packages: tuple[str, ...]
    rest: bool = False
    init: bool = False


@dataclass(frozen=True)
class LayerPlan:
    policy: str
    layers: tuple[PlannedLayer, ...]
    note: str = ""  # with a previous plan: kept, or why it was not

    @property
    def package_layers(self) -> tuple[PlannedLayer, ...]:
        """The layers a package's files decide (not the metadata nor the init layer)."""
        return tuple(layer for layer in self.layers if not (layer.rest or layer.init))

    @property
    def is_single(self) -> bool:
        return len(self.layers) == 1


@dataclass(frozen=True)
class _Weighed:
    name: str
    bytes: int
    tier: int


def plan_layers(layering: Layering, packages: Sequence[ResolvedPackage], *,
                sizes: Mapping[str, int] | None = None,
                needed_by: Mapping[str, Sequence[str]] | None = None,
                solo_bytes: int = SOLO_BYTES, buckets: int = BUCKETS,
                previous: LayerPlan | None = None) -> LayerPlan:
    """The layers for a closure under the recipe's layering policy.

    `sizes`: bytes each package owns in the image (default: its installed size from the
    repository); `needed_by`: the requesters reaching each package (`Resolution.needed_by()`;
    default: the ones that named it); `previous`: the plan to keep (see the module's
    "stable across rebuilds").
    """
    names = tuple(sorted(p.name for p in packages))
    if layering.policy == "single":
        return LayerPlan("single", (PlannedLayer("rootfs", names, rest=True),))
    if layering.policy != "packages":
        raise UserError(f"layering.policy '{layering.policy}': monoimage builds 'single' and "
                        f"'packages'")
    init = PlannedLayer(INIT, (), init=True)
    budget = layering.max_layers - 2
    if budget < 1:
        return LayerPlan("packages", (PlannedLayer("system", names, rest=True), init))
    weighed = [_Weighed(p.name, (sizes or {}).get(p.name, p.installed_size),
                        _tier(p, (needed_by or {}).get(p.name, p.requested_by)))
               for p in packages]
    tail = (PlannedLayer(METADATA, (), rest=True), init)
    fresh = LayerPlan("packages", (*_fit(weighed, budget, solo_bytes, buckets), *tail))
    if previous is None:
        return fresh
    if previous.policy != "packages" or any(x.rest and x.packages for x in previous.layers):
        return replace(fresh, note=f"planned from scratch: the previous image was layered "
                                   f"'{previous.policy}'")
    kept = _keep(previous, weighed, budget, solo_bytes, buckets)
    if kept is None:
        return replace(fresh, note=f"planned from scratch: keeping the previous layers and "
                                   f"adding the new packages needs more than {budget} "
                                   f"package layers")
    return LayerPlan("packages", (*kept, *tail),
                     note=f"kept the previous plan's {len(previous.package_layers)} "
                          f"package layers")


def _keep(previous: LayerPlan, weighed: Sequence[_Weighed], budget: int, solo_bytes: int,
          buckets: int) -> tuple[PlannedLayer, ...] | None:
    """The previous layers with the packages still present, new packages added; None when
    that takes more than `budget` layers."""
    present = {w.name for w in weighed}
    placed = {name for layer in previous.layers for name in layer.packages}
    layers: dict[str, list[str]] = {}
    for layer in previous.package_layers:
        held = [name for name in layer.packages if name in present]
        if held:
            layers[layer.name] = held
    new = [w for w in weighed if w.name not in placed]
    if new:
        room = max(1, budget - len(layers))
        for group in _fit(new, room, solo_bytes, buckets):
            layers.setdefault(group.name, []).extend(group.packages)
    if len(layers) > budget:
        return None
    return tuple(PlannedLayer(name, tuple(sorted(held))) for name, held in layers.items())


def _tier(package: ResolvedPackage, needed_by: Sequence[str]) -> int:
    if package.base:
        return 0
    return 1 if len(set(needed_by)) >= 2 else 2


def _fit(weighed: list[_Weighed], budget: int, solo_bytes: int, buckets: int
         ) -> tuple[PlannedLayer, ...]:
    """Solo layers and groups within `budget` layers (see the module's step 3)."""
    solos = sorted((w for w in weighed if w.bytes >= solo_bytes),
                   key=lambda w: (-w.bytes, w.name))
    per_tier = max(1, buckets)
    while True:
        layers = _layers(weighed, {w.name for w in solos}, per_tier)
        if len(layers) <= budget:
            return layers
        if solos:
            solos.pop()  # the smallest solo package joins its group
        elif per_tier > 1:
            per_tier -= 1
        else:
            return _one_tier(weighed, budget)


def _layers(weighed: Iterable[_Weighed], solo: set[str], per_tier: int) -> tuple[PlannedLayer, ...]:
    keyed: dict[tuple[int, int, str], list[str]] = {}
    for w in weighed:
        if w.name in solo:
            key = (w.tier, 0, w.name)
        else:
            key = (w.tier, 1, f"group-{_bucket(w.name, per_tier)}")
        keyed.setdefault(key, []).append(w.name)
    return tuple(PlannedLayer(f"{TIERS[tier]}/{label}", tuple(sorted(keyed[(tier, kind, label)])))
                 for tier, kind, label in sorted(keyed))


def _one_tier(weighed: Iterable[_Weighed], budget: int) -> tuple[PlannedLayer, ...]:
    keyed: dict[int, list[str]] = {}
    for w in weighed:
        keyed.setdefault(_bucket(w.name, budget), []).append(w.name)
    return tuple(PlannedLayer(f"packages/group-{i}", tuple(sorted(keyed[i]))) for i in sorted(keyed))


def _bucket(name: str, count: int) -> int:
    """A group number from the package name alone (not Python's salted hash)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % count


def assign_paths(plan: LayerPlan, owners: Mapping[str, Sequence[str]],
                 paths: Iterable[str], is_init: Callable[[str], bool]
                 ) -> tuple[tuple[str, ...], ...]:
    """Every path of the image root in the layer that carries it, ancestors included.

    `paths`: every entry of the root ("/usr/bin/x"; directories too, the root itself not);
    `owners`: path → the packages owning it; returns one tuple per layer, parents before
    children.
    """
    layer_of = {name: index for index, layer in enumerate(plan.layers)
                for name in layer.packages}
    rest = next(i for i, layer in enumerate(plan.layers) if layer.rest)
    top = next((i for i, layer in enumerate(plan.layers) if layer.init), rest)
    chosen: list[set[str]] = [set() for _ in plan.layers]
    for path in paths:
        if is_init(path):
            index = top
        else:
            held = [layer_of[o] for o in owners.get(path, ()) if o in layer_of]
            index = min(held) if held else rest
        chosen[index].add(path)
    return tuple(tuple(sorted(_with_ancestors(found), key=_path_key)) for found in chosen)


def _with_ancestors(paths: set[str]) -> set[str]:
    every = set(paths)
    for path in paths:
        parent = path.rpartition("/")[0]
        while parent and parent not in every:
            every.add(parent)
            parent = parent.rpartition("/")[0]
    return every


def _path_key(path: str) -> tuple[str, ...]:
    return tuple(path.split("/"))
