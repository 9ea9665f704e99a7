"""The `single` variant of a built golden image: the same root squashed into one layer.

`monoimage footprint` shows the golden image as built (layers by package, the default) beside
this variant, so the first-deploy cost of layering and its day-2 savings show side by side.
Squashing the built image gives the very files a `layering: single` build would, without
installing them again.
"""

from __future__ import annotations

import secrets

from monoimage.image import LABEL_LAYER_PLAN
from monoimage.pipeline.workspace import workspace
from monoimage.tools import buildah

SINGLE_SUFFIX = "-single"  # localhost/NAME-single:TAG beside localhost/NAME:TAG


def single_reference(reference: str) -> str:
    """`localhost/edge-lite:t` → `localhost/edge-lite-single:t`."""
    name, colon, tag = reference.rpartition(":")
    if not colon or "/" in tag:
        return reference + SINGLE_SUFFIX
    return f"{name}{SINGLE_SUFFIX}:{tag}"


def squash_image(image: str, reference: str, *, timestamp: int, image_format: str = "oci"
                 ) -> str:
    """Commit `image`'s root as one layer under `reference`; returns the new image id.

    The layer plan label goes: a single image has no plan a later build could keep.
    """
    with workspace(secrets.token_hex(6)) as work:
        container = work.container(image, suffix=SINGLE_SUFFIX)
        buildah.forget_base(container)
        buildah.unset_labels(container, (LABEL_LAYER_PLAN,))
        temporary = work.temporary_image(SINGLE_SUFFIX)
        image_id = buildah.commit(container, temporary, timestamp=timestamp,
                                  image_format=image_format, squash=True)
        buildah.tag(temporary, reference)
    return image_id
