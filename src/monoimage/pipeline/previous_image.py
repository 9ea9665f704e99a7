"""The image a build keeps the layers of: `--previous IMAGE`, or the image under the target tag.

A site runs the image last built under the tag; a rebuild that keeps its layer plan lets the site
keep every layer whose packages did not change. An image named with `--previous` (or
`--delta-from`) must serve, or the build stops before any work with one line saying why; the
image found under the tag by default serves when it can, and otherwise the build plans from
scratch and says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from monoimage.errors import UserError
from monoimage.plan.layer_record import LayerRecord, previous_record
from monoimage.recipe.model import Recipe
from monoimage.recipe.reference import ReferenceError, check_image
from monoimage.tools import buildah


@dataclass(frozen=True)
class PreviousImage:
    """The image whose layers a build keeps, and what it says of them."""

    reference: str
    image_id: str
    record: LayerRecord
    layer_digests: tuple[str, ...]  # the diff ids, bottom first
    labels: tuple[str, ...] = ()  # the names of its config's labels
    ports: frozenset[str] = frozenset()  # "53/udp"
    volumes: frozenset[str] = frozenset()


def named_previous(option: str, image: str, recipe: Recipe) -> PreviousImage:
    """The image `option` names, checked: it exists here, monoimage built it by package, from
    this recipe and distro. UserError otherwise."""
    try:
        check_image(image)
    except ReferenceError as error:
        raise UserError(f"{option} {image!r}: {error}") from None
    inspect = _inspect(image)
    if inspect is None:
        raise UserError(f"{option} {image}: no such image in local storage (build it, or pull "
                        f"it with podman pull)")
    if recipe.layering.policy != "packages":
        raise UserError(f"{option} {image}: the recipe's layering is "
                        f"'{recipe.layering.policy}'; only layers by package are kept")
    return _previous(image, inspect, previous_record(option, image, _labels(inspect), recipe))


def tagged_previous(reference: str, recipe: Recipe) -> tuple[PreviousImage | None, str]:
    """The image under `reference` when it can serve, else None and why not ("" when there is
    no image there)."""
    if recipe.layering.policy != "packages":
        return None, ""
    inspect = _inspect(reference)
    if inspect is None:
        return None, ""
    try:
        record = previous_record("the image under", reference, _labels(inspect), recipe)
    except UserError as error:
        return None, f"planned from scratch: {error}"
    return _previous(reference, inspect, record), ""


def _previous(image: str, inspect: dict[str, Any], record: LayerRecord) -> PreviousImage:
    oci = inspect.get("OCIv1") or {}
    config = oci.get("config") or {}
    return PreviousImage(image, str(inspect.get("FromImageID", "")), record,
                         tuple((oci.get("rootfs") or {}).get("diff_ids") or ()),
                         labels=tuple(sorted(config.get("Labels") or {})),
                         ports=frozenset(config.get("ExposedPorts") or {}),
                         volumes=frozenset(config.get("Volumes") or {}))


def _inspect(image: str) -> dict[str, Any] | None:
    try:
        return buildah.inspect_image(image)
    except buildah.BuildahError:
        return None


def _labels(inspect: dict[str, Any]) -> dict[str, str]:
    config = (inspect.get("OCIv1") or {}).get("config") or {}
    return dict(config.get("Labels") or {})
