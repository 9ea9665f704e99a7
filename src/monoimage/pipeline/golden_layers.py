"""How the staged root becomes the golden image's layers: one squashed layer, layers by
package (keeping the previous image's plan), or a delta over the previous image.

The build stages and completes the root once, whatever the layering; `cut_layers` returns the
working container to configure and commit, what its layers hold, the layer record its config
carries and a note saying what was kept or why not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from monoimage.pipeline.delta_commit import apply_delta, open_delta
from monoimage.pipeline.layer_commit import commit_layers, plan_root, split_root
from monoimage.pipeline.previous_image import PreviousImage
from monoimage.pipeline.workspace import Workspace
from monoimage.plan.delta import compaction_reason
from monoimage.plan.layer_record import DeltaChain, record_text
from monoimage.plan.resolution import InstalledPackage, Resolution
from monoimage.recipe.model import Recipe


@dataclass(frozen=True)
class LayerSummary:
    """One layer of the built image: its plan name, the packages whose files it holds, and the
    bytes of its regular files."""

    name: str
    packages: tuple[str, ...]
    bytes: int


@dataclass(frozen=True)
class DeltaSummary:
    """The one layer a delta image adds: paths copied and whited out, their bytes, and the
    chain it extends."""

    changed_paths: int
    removed_paths: int
    bytes: int
    chain: DeltaChain

    def as_json(self) -> dict[str, int]:
        return {"changed_paths": self.changed_paths, "removed_paths": self.removed_paths,
                "bytes": self.bytes, "deltas": self.chain.deltas,
                "shadowed_bytes": self.chain.shadowed_bytes,
                "base_layers": self.chain.base_layers}


@dataclass(frozen=True)
class CutLayers:
    top: str  # the working container to configure and commit
    squash: bool
    layers: tuple[LayerSummary, ...]  # bottom first; a delta: only the new layer
    record: str | None = None  # the io.monoimage.layer-plan label
    note: str = ""
    delta: DeltaSummary | None = None


@dataclass(frozen=True)
class StagedRoot:
    """The finished root in its working container, and what is installed in it."""

    container: str
    path: Path
    recipe: Recipe
    resolution: Resolution
    installed: tuple[InstalledPackage, ...]
    bytes: int
    is_init: Callable[[str], bool]


def cut_layers(staged: StagedRoot, work: Workspace, previous: PreviousImage | None, *,
               delta: bool, timestamp: int, image_format: str) -> CutLayers:
    """The layers of the golden image (see the module docstring); `delta`: over `previous`."""
    recipe = staged.recipe
    if recipe.layering.policy == "single":
        return CutLayers(staged.container, True, (
            LayerSummary("rootfs", tuple(p.name for p in staged.installed), staged.bytes),))
    note = ""
    if delta and previous is not None:
        cut, note = _delta(staged, work, previous)
        if cut is not None:
            return cut
    layer_plan, planned = split_root(staged.path, recipe, staged.resolution, staged.installed,
                                     staged.is_init,
                                     previous=previous.record.plan if previous else None)
    top = commit_layers(staged.path, planned, work, timestamp=timestamp,
                        image_format=image_format)
    return CutLayers(top, False, tuple(LayerSummary(x.name, x.packages, x.bytes)
                                       for x in planned),
                     record_text(recipe, layer_plan, _versions(staged.installed)),
                     "; ".join(n for n in (note, layer_plan.note) if n))


def _delta(staged: StagedRoot, work: Workspace, previous: PreviousImage
           ) -> tuple[CutLayers | None, str]:
    """The delta over `previous`, or None and why the chain is compacted instead."""
    recipe = staged.recipe
    opened = open_delta(staged.path, previous, work)
    chain = previous.record.chain
    extended = DeltaChain(chain.deltas + 1, chain.shadowed_bytes + opened.diff.shadowed_bytes,
                          chain.base_layers or len(previous.layer_digests))
    reason = compaction_reason(recipe.layering, deltas=extended.deltas,
                               shadowed_bytes=extended.shadowed_bytes,
                               image_bytes=staged.bytes)
    dropped = sorted((previous.ports - {str(p) for p in recipe.ports})
                     | (previous.volumes - set(recipe.volumes)))
    if not reason and dropped:
        reason = f"a delta cannot take {', '.join(dropped)} out of the image's config"
    if reason:
        work.drop(opened.container)
        return None, f"compacted the delta chain ({reason}): layers by package again"
    top = apply_delta(staged.path, opened)
    plan = plan_root(staged.path, recipe, staged.resolution, staged.installed,
                     previous=previous.record.plan)
    changed = _changed_packages(previous, staged.installed)
    summary = DeltaSummary(len(opened.diff.changed), len(opened.diff.removed),
                           opened.diff.changed_bytes, extended)
    note = (f"delta {extended.deltas} over {previous.reference}: "
            f"{summary.changed_paths} paths changed, {summary.removed_paths} removed, "
            f"{summary.bytes:,} bytes")
    return CutLayers(top, False, (LayerSummary("delta", changed, summary.bytes),),
                     record_text(recipe, plan, _versions(staged.installed), extended), note,
                     summary), ""


def _changed_packages(previous: PreviousImage, installed: Sequence[InstalledPackage]
                      ) -> tuple[str, ...]:
    before = previous.record.version_of
    now = {p.name for p in installed}
    return tuple(sorted({p.name for p in installed if before.get(p.name) != p.version}
                        | (before.keys() - now)))


def _versions(installed: Sequence[InstalledPackage]) -> dict[str, str]:
    return {p.name: p.version for p in installed}
