"""Images out of containers-storage: exported with skopeo into one shared OCI layout, read back
as `Image` values (footprint/oci.py).

`load_image` exports an image with `skopeo copy containers-storage:REF oci:LAYOUT:TAG`. skopeo
compresses every layer with gzip on the way out, exactly as it does when pushing to a registry,
so the compressed digests and sizes read here are the blobs a registry stores and a site pulls
(tests/test_footprint_pull.py checks digests and served bytes against a real registry).

Exports go to one shared OCI layout under the cache directory, tagged by the digest of the
image's manifest in containers-storage, so an image is exported once and blobs shared by several
images are stored once; file lists are cached per compressed layer digest.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

from monoimage.errors import UserError
from monoimage.footprint.oci import (
    Blob,
    FileEntry,
    Image,
    Layer,
    LayerContents,
    find_manifest,
    parse_diff_ids,
    parse_manifest,
    read_layer,
    sha256_digest,
)
from monoimage.image import GZIP_LAYER_TYPES, PLAIN_LAYER_TYPES
from monoimage.tools.cache_dir import default_cache_dir, locked
from monoimage.tools.run import run

EXPORTS = "oci"  # under the cache directory


def skopeo(*args: str) -> bytes:
    """Run `skopeo ARGS…`; its stdout, or a UserError with skopeo's last line."""
    done = run(["skopeo", *args], check=False)
    if not done.ok:
        raise UserError(f"skopeo {args[0]} failed: {done.last_line()}")
    return done.stdout_bytes


def open_layer_blob(path: Path, media_type: str) -> io.BufferedIOBase:
    """The uncompressed tar stream of a layer blob stored at `path`."""
    if media_type in GZIP_LAYER_TYPES:
        return gzip.open(path, "rb")
    if media_type in PLAIN_LAYER_TYPES:
        return path.open("rb")
    raise UserError(f"{path.name}: layer media type {media_type!r} is not supported "
                    f"(gzip or uncompressed tar only)")


def storage_manifest_digest(ref: str) -> str:
    """The digest of REF's manifest as containers-storage holds it (names its content)."""
    try:
        raw = skopeo("inspect", "--raw", f"containers-storage:{ref}")
    except UserError as exc:
        raise UserError(f"{ref}: no such image in containers-storage ({exc})") from exc
    return sha256_digest(raw)


def load_image(ref: str, cache_dir: Path | None = None) -> Image:
    """Export REF from containers-storage (once per content) and read it as an Image."""
    cache = cache_dir or default_cache_dir() / EXPORTS
    layout = cache / "layout"
    tag = storage_manifest_digest(ref).removeprefix("sha256:")
    # Two monoimage runs sharing a cache must not write index.json at the same time.
    with locked(cache / "lock"):
        try:
            manifest = find_manifest((layout / "index.json").read_bytes(), tag)
        except (FileNotFoundError, KeyError):
            skopeo("copy", "--quiet", f"containers-storage:{ref}", f"oci:{layout}:{tag}")
            manifest = find_manifest((layout / "index.json").read_bytes(), tag)
        return read_layout_image(layout, manifest, ref, cache / "layers")


def read_layout_image(layout: Path, manifest: Blob, ref: str, layers_cache: Path) -> Image:
    """Read one image out of an OCI layout; file lists cached per layer blob digest."""
    config, layer_blobs = parse_manifest(_blob_path(layout, manifest.digest).read_bytes())
    diff_ids = parse_diff_ids(_blob_path(layout, config.digest).read_bytes())
    if len(diff_ids) != len(layer_blobs):
        raise ValueError(f"{ref}: {len(layer_blobs)} layers but {len(diff_ids)} diff_ids")
    layers = []
    for blob, diff_id in zip(layer_blobs, diff_ids, strict=True):
        contents = _cached_layer_contents(layout, blob, layers_cache)
        if contents.diff_id != diff_id:
            raise ValueError(f"{ref}: layer {blob.digest} unpacks to {contents.diff_id}, "
                             f"config says {diff_id}")
        layers.append(Layer(blob, diff_id, contents.uncompressed_size, contents.files))
    return Image(ref, manifest, config, tuple(layers))


def _blob_path(layout: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    return layout / "blobs" / algorithm / hexdigest


def _cached_layer_contents(layout: Path, blob: Blob, layers_cache: Path) -> LayerContents:
    cached = layers_cache / (blob.digest.replace(":", "-") + ".json")
    if cached.exists():
        doc = json.loads(cached.read_text())
        return LayerContents(doc["diff_id"], doc["uncompressed_size"],
                             tuple(FileEntry(*row) for row in doc["files"]))
    with open_layer_blob(_blob_path(layout, blob.digest), blob.media_type) as stream:
        contents = read_layer(stream)
    layers_cache.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    tmp.write_text(json.dumps({
        "diff_id": contents.diff_id,
        "uncompressed_size": contents.uncompressed_size,
        "files": [[f.path, f.size, f.kind, f.sha256] for f in contents.files],
    }))
    tmp.replace(cached)
    return contents
