"""What a day-2 update costs a site, image by image (pure): the layer blobs it does not hold."""

from __future__ import annotations

from dataclasses import dataclass

from monoimage.footprint.figures import Strategy, unique_blobs


@dataclass(frozen=True)
class ImageChange:
    """One image of a strategy on day 2: its new blobs (those the site does not hold)."""

    image: str  # the day-2 reference
    manifest_changed: bool
    layers: int
    new_layers: tuple[tuple[str, int], ...]  # (digest, compressed bytes)

    @property
    def new_bytes(self) -> int:
        return sum(size for _, size in self.new_layers)


def image_changes(before: Strategy, after: Strategy) -> tuple[ImageChange, ...]:
    """Per day-2 image, which layer blobs a site holding `before` must fetch."""
    held = unique_blobs(before.images)
    fetched: set[str] = set()
    changes = []
    for image in after.images:
        new = []
        for layer in image.layers:
            digest = layer.blob.digest
            if digest not in held and digest not in fetched:
                new.append((digest, layer.blob.size))
                fetched.add(digest)
        changes.append(ImageChange(image.ref, image.manifest_digest not in held,
                                   len(image.layers), tuple(new)))
    return tuple(changes)
