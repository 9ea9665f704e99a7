"""The layer plan as an image records it (pure): which package, at which version, in which layer.

Every image layered by package carries this record in its config (label
`io.monoimage.layer-plan`; not as an annotation, to keep the manifest a site HEADs small), so a
later build keeps its layers (`--previous`), a delta build knows what changed (`--delta-from`)
and `monoimage diff` compares two images without opening them. The record is compact JSON:

    {"format": 1, "recipe": "edge-lite", "distro": "debian bookworm amd64 apt",
     "layers": [["minimal/group-0", [["base-files", "12.4"], ...]], ...]}

listing the package layers bottom first; the metadata and init layers follow them implicitly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monoimage.errors import UserError
from monoimage.image import LABEL_LAYER_PLAN, LABEL_RECIPE_DIGEST
from monoimage.plan.layer_plan import INIT, METADATA, LayerPlan, PlannedLayer
from monoimage.recipe.model import Recipe

FORMAT = 1


class RecordError(ValueError):
    """A label value that is not a layer record; the message says what is wrong."""


@dataclass(frozen=True)
class DeltaChain:
    """The delta layers on top of an image's layers by package: how many, the bytes they
    hide below them, and how many layers lie under the first (the base's)."""

    deltas: int = 0
    shadowed_bytes: int = 0
    base_layers: int = 0


@dataclass(frozen=True)
class LayerRecord:
    """What an image says of its layers: the recipe and distro it was built from, the plan,
    and the version of every package in it."""

    recipe: str
    distro: str
    plan: LayerPlan
    versions: tuple[tuple[str, str], ...]  # sorted by name
    chain: DeltaChain = field(default_factory=DeltaChain)

    @property
    def version_of(self) -> dict[str, str]:
        return dict(self.versions)


def distro_key(recipe: Recipe) -> str:
    """`debian bookworm amd64 apt`: what must match for a previous image's layers to fit."""
    distro = recipe.distro
    return f"{distro.name} {distro.release} {distro.architecture} {distro.packager.value}"


def record_text(recipe: Recipe, plan: LayerPlan, versions: Mapping[str, str],
                chain: DeltaChain | None = None) -> str:
    """The label's value for an image of `recipe` cut by `plan` (a delta image: the plan a
    compaction keeps, and its `chain`)."""
    layers = [[layer.name, [[name, versions[name]] for name in layer.packages]]
              for layer in plan.package_layers]
    doc: dict[str, Any] = {"format": FORMAT, "recipe": recipe.name,
                           "distro": distro_key(recipe), "layers": layers}
    if chain is not None and chain.deltas:
        doc["delta"] = {"deltas": chain.deltas, "shadowed_bytes": chain.shadowed_bytes,
                        "base_layers": chain.base_layers}
    return json.dumps(doc, separators=(",", ":"))


def parse_record(text: str) -> LayerRecord:
    """The record in a label's value; RecordError saying what is wrong."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as error:
        raise RecordError(f"not JSON ({error.msg})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise RecordError(f"not a format-{FORMAT} layer record")
    recipe, distro, layers = doc.get("recipe"), doc.get("distro"), doc.get("layers")
    if not isinstance(recipe, str) or not isinstance(distro, str) or not isinstance(layers, list):
        raise RecordError("recipe, distro or layers missing")
    planned, versions = [], {}
    for entry in layers:
        name, packages = _layer_entry(entry)
        for package, version in packages:
            if package in versions:
                raise RecordError(f"package {package!r} in two layers")
            versions[package] = version
        planned.append(PlannedLayer(name, tuple(sorted(p for p, _ in packages))))
    plan = LayerPlan("packages", (*planned, PlannedLayer(METADATA, (), rest=True),
                                  PlannedLayer(INIT, (), init=True)))
    return LayerRecord(recipe, distro, plan, tuple(sorted(versions.items())),
                       _chain(doc.get("delta", {})))


def _chain(delta: Any) -> DeltaChain:
    keys = ("deltas", "shadowed_bytes", "base_layers")
    if not isinstance(delta, dict) or not all(
            isinstance(delta.get(k, 0), int) and delta.get(k, 0) >= 0 for k in keys):
        raise RecordError("delta: {deltas, shadowed_bytes, base_layers} as whole numbers")
    return DeltaChain(*(int(delta.get(k, 0)) for k in keys))


def _layer_entry(entry: Any) -> tuple[str, list[tuple[str, str]]]:
    if (not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[0], str)
            or not isinstance(entry[1], list)):
        raise RecordError("a layer is [NAME, [[PACKAGE, VERSION], ...]]")
    packages = []
    for item in entry[1]:
        if (not isinstance(item, list) or len(item) != 2
                or not all(isinstance(x, str) and x for x in item)):
            raise RecordError(f"layer {entry[0]!r}: a package is [NAME, VERSION]")
        packages.append((item[0], item[1]))
    return entry[0], packages


def previous_record(option: str, image: str, labels: Mapping[str, str], recipe: Recipe
                    ) -> LayerRecord:
    """The record of the image `option` (`--previous`, `--delta-from`) names, checked against
    the recipe being built; UserError saying why the image cannot serve."""
    where = f"{option} {image}"
    text = labels.get(LABEL_LAYER_PLAN)
    if text is None:
        why = ("was built by monoimage without layers by package (layering: single)"
               if LABEL_RECIPE_DIGEST in labels else "was not built by monoimage")
        raise UserError(f"{where}: the image {why}: it has no {LABEL_LAYER_PLAN} label")
    try:
        record = parse_record(text)
    except RecordError as error:
        raise UserError(f"{where}: label {LABEL_LAYER_PLAN}: {error}") from None
    if record.recipe != recipe.name:
        raise UserError(f"{where}: built from recipe '{record.recipe}', not "
                        f"'{recipe.name}'")
    if record.distro != distro_key(recipe):
        raise UserError(f"{where}: built for {record.distro}, the recipe builds for "
                        f"{distro_key(recipe)}")
    return record
