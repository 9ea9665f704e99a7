"""`monoimage diff OLD NEW`: what an update from one golden image to another touches, read
from the two images alone: every package whose version changed and who runs it (from the
manifests inside them), and the bytes a site holding OLD pulls to run NEW (from their blobs)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monoimage.errors import UserError
from monoimage.footprint.figures import SitePull, day2
from monoimage.image import MANIFEST_PATH
from monoimage.plan.update_impact import PackageImpact, facts_from_manifest, update_impact
from monoimage.recipe.reference import ReferenceError, check_image
from monoimage.tools import buildah, podman
from monoimage.tools.skopeo import load_image


@dataclass(frozen=True)
class ImageDiff:
    old: str
    new: str
    changes: tuple[PackageImpact, ...]
    pull: SitePull
    layers: int  # of NEW
    kept_layers: int  # NEW's layers a site holding OLD already has

    def as_json(self) -> dict[str, Any]:
        return {"old": self.old, "new": self.new,
                "changes": [c.as_json() for c in self.changes],
                "pull": {"bytes": self.pull.bytes, "blobs": self.pull.blobs,
                         "manifests": self.pull.manifests},
                "layers": self.layers, "kept_layers": self.kept_layers}


def diff_images(old: str, new: str, oci_cache: Path | None = None) -> ImageDiff:
    """Compare two local golden images; UserError when either is not one."""
    docs = [_manifest(name, ref) for name, ref in (("OLD", old), ("NEW", new))]
    (_, before), (services, after) = (facts_from_manifest(d) for d in docs)
    old_image, new_image = load_image(old, oci_cache), load_image(new, oci_cache)
    held = {layer.diff_id for layer in old_image.layers}
    return ImageDiff(old, new, update_impact(before, after, services),
                     day2([old_image], [new_image]), len(new_image.layers),
                     sum(1 for layer in new_image.layers if layer.diff_id in held))


def _manifest(name: str, reference: str) -> dict[str, Any]:
    """The manifest.json inside a local image."""
    try:
        check_image(reference)
    except ReferenceError as error:
        raise UserError(f"{name} {reference!r}: {error}") from None
    if buildah.image_id(reference) is None:
        raise UserError(f"{name} {reference}: no such image in local storage")
    try:
        doc: dict[str, Any] = json.loads(podman.read_image_file(reference, MANIFEST_PATH))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(f"{name} {reference}: not a golden image (no readable "
                        f"{MANIFEST_PATH})") from None
    return doc
