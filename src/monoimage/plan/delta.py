"""Delta updates (pure): what one top layer over the previous image must hold, and when the
chain of such layers is compacted.

A delta image is the previous image's layers, byte for byte, plus one layer holding exactly
what differs between the previous image's root and the new root: every path whose type,
mode, owner, xattrs or content (a file's bytes, a link's target) differ or that is new, and a
whiteout for every path that is gone. File times are not compared: every commit sets them to
SOURCE_DATE_EPOCH. A site pulls that one layer, the config and the manifest.

Each delta hides (shadows) the lower copies of the files it replaces or removes: disk a site
keeps but never reads. When the chain passes `layering.max_deltas` layers, or the shadowed
bytes pass `layering.max_shadowed` of the image's bytes, the build compacts: it cuts the
layers by package again (keeping the plan, so layers whose packages did not change since the
chain began come out as the site already holds them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from monoimage.recipe.model import Layering


@dataclass(frozen=True)
class Entry:
    """One path of a root as a layer would carry it (times left out)."""

    kind: str  # "file", "dir", "link", "other"
    mode: int
    uid: int
    gid: int
    size: int = 0  # regular files
    content: str = ""  # a file's sha256, a link's target, a device's numbers
    xattrs: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class TreeDiff:
    """What the delta layer holds: `changed` paths copied from the new root (parents first),
    `removed` paths whited out (the topmost of each removed tree, a path whose type changed
    included), and the bytes of the files the layer hides below it."""

    changed: tuple[str, ...]
    removed: tuple[str, ...]
    shadowed_bytes: int
    changed_bytes: int

    @property
    def empty(self) -> bool:
        return not self.changed and not self.removed


def diff_trees(old: Mapping[str, Entry], new: Mapping[str, Entry]) -> TreeDiff:
    """The delta from the root `old` to the root `new` (path → entry, "/usr/bin/x")."""
    changed = [path for path, entry in new.items() if old.get(path) != entry]
    retyped = {path for path in changed if path in old and old[path].kind != new[path].kind}
    gone = [path for path in old if path not in new or path in retyped]
    removed = _topmost(gone)
    hidden = {path for path in changed if path in old} | set(gone)
    hidden |= {path for path in old if any(path.startswith(top + "/") for top in retyped)}
    return TreeDiff(
        changed=tuple(sorted(changed, key=_path_key)),
        removed=tuple(sorted(removed, key=_path_key)),
        shadowed_bytes=sum(old[path].size for path in hidden if old[path].kind == "file"),
        changed_bytes=sum(new[path].size for path in changed if new[path].kind == "file"))


def compaction_reason(layering: Layering, *, deltas: int, shadowed_bytes: int,
                      image_bytes: int) -> str:
    """Why this delta would make the chain too long or hide too much ("" when it would not).

    `deltas`: delta layers the new image would have; `shadowed_bytes`: hidden by all of them.
    """
    if deltas > layering.max_deltas:
        return (f"{deltas} delta layers would pass layering.max_deltas "
                f"({layering.max_deltas})")
    share = shadowed_bytes / image_bytes if image_bytes else 0.0
    if share > layering.max_shadowed:
        return (f"the delta layers would hide {share:.0%} of the image's bytes "
                f"({shadowed_bytes:,} bytes), past layering.max_shadowed "
                f"({layering.max_shadowed:g})")
    return ""


@dataclass(frozen=True)
class ChainCost:
    """What a delta chain costs a site's disk, and how far it is from its compaction.

    `shadowed_bytes`: day-1 (or older) file bytes the deltas hide, which a site keeps on disk
    but never reads; `image_bytes`: the image's own bytes (what `max_shadowed` is a share of).
    """

    deltas: int
    shadowed_bytes: int
    image_bytes: int
    max_deltas: int
    max_shadowed: float

    @property
    def shadowed_share(self) -> float:
        return self.shadowed_bytes / self.image_bytes if self.image_bytes else 0.0

    @property
    def deltas_left(self) -> int:
        """Delta builds that still fit before the chain passes `max_deltas`."""
        return max(self.max_deltas - self.deltas, 0)

    @property
    def shadowed_left(self) -> int:
        """Bytes later deltas may still hide before the chain passes `max_shadowed`."""
        return max(int(self.max_shadowed * self.image_bytes) - self.shadowed_bytes, 0)

    def next_compaction(self) -> str:
        """When the chain compacts: 'after 7 more deltas, or sooner once they hide 47.0 MB
        more'."""
        more = f"{self.deltas_left} more delta{'' if self.deltas_left == 1 else 's'}"
        return (f"the build after {more}, or sooner once the chain hides "
                f"{self.shadowed_left / 1e6:,.1f} MB more")

    def line(self) -> str:
        """One line for people: the chain, its disk cost against its limits, the next
        compaction."""
        return (f"{self.deltas} delta layer{'' if self.deltas == 1 else 's'} "
                f"(compacts past {self.max_deltas}); they hide "
                f"{self.shadowed_bytes / 1e6:,.1f} MB of older files on the site's disk "
                f"({self.shadowed_share:.1%} of the image; compacts past "
                f"{self.max_shadowed:.0%}); next compaction: {self.next_compaction()}")

    def as_json(self) -> dict[str, int | float]:
        return {"deltas": self.deltas, "max_deltas": self.max_deltas,
                "shadowed_bytes": self.shadowed_bytes, "image_bytes": self.image_bytes,
                "shadowed_share": round(self.shadowed_share, 6),
                "max_shadowed": self.max_shadowed, "deltas_left": self.deltas_left,
                "shadowed_bytes_left": self.shadowed_left}


def chain_cost(layering: Layering, deltas: int, shadowed_bytes: int, image_bytes: int
               ) -> ChainCost:
    """The disk cost of a chain of `deltas` layers hiding `shadowed_bytes`, against the
    recipe's compaction thresholds."""
    return ChainCost(deltas, shadowed_bytes, image_bytes, layering.max_deltas,
                     layering.max_shadowed)


def _topmost(paths: list[str]) -> list[str]:
    """The paths none of whose ancestors is in `paths`."""
    every = set(paths)
    found = []
    for path in paths:
        parent = path.rpartition("/")[0]
        while parent and parent not in every:
            parent = parent.rpartition("/")[0]
        if not parent:
            found.append(path)
    return found


def _path_key(path: str) -> tuple[str, ...]:
    return tuple(path.split("/"))
