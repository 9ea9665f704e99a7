"""OCI images as data: export from containers-storage, read manifest, config and layers.

The adapter half (`load_image`) exports an image from containers-storage (where buildah and
podman keep it) with `skopeo copy containers-storage:REF oci:LAYOUT:TAG`. skopeo compresses
every layer with gzip on the way out, exactly as it does when pushing to a registry, so the
compressed digests and sizes read here are the blobs a registry stores and a site pulls
(tests/test_footprint_pull.py checks digests and served bytes against a real registry).

The pure half parses what the export wrote: `parse_manifest`, `parse_diff_ids`, and
`read_layer`, which walks a layer's tar stream with the standard `tarfile` and returns its diff_id
(sha256 of the uncompressed tar), uncompressed size and file list.

Exports go to one shared OCI layout under the cache directory, tagged by the digest of the
image's manifest in containers-storage, so an image is exported once and blobs shared by several
images are stored once; file lists are cached per compressed layer digest.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from monoimage.errors import MissingToolError, UserError
from monoimage.image import (
    GZIP_LAYER_TYPES,
    MEDIA_DOCKER_MANIFEST,
    MEDIA_OCI_MANIFEST,
    PLAIN_LAYER_TYPES,
)

CONTAINERS_CONF = Path(__file__).parents[1] / "data" / "containers.conf"


FileKind = Literal["file", "dir", "symlink", "hardlink", "whiteout", "opaque", "other"]

_TOOL_PACKAGES = {"skopeo": "skopeo", "buildah": "buildah", "podman": "podman"}
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Blob:
    """One content-addressed blob as a registry stores it."""

    digest: str
    size: int
    media_type: str


@dataclass(frozen=True)
class FileEntry:
    """One entry of a layer's tar. Whiteouts carry the path they hide; `sha256` only for files."""

    path: str
    size: int
    kind: FileKind
    sha256: str | None = None


@dataclass(frozen=True)
class Layer:
    """A layer: its compressed blob (as pushed), its diff_id and unpacked size, and its files."""

    blob: Blob
    diff_id: str
    uncompressed_size: int
    files: tuple[FileEntry, ...]


@dataclass(frozen=True)
class Image:
    """An image as a registry serves it: manifest, config, layers bottom first."""

    ref: str
    manifest: Blob
    config: Blob
    layers: tuple[Layer, ...]

    @property
    def manifest_digest(self) -> str:
        return self.manifest.digest

    def blobs(self) -> tuple[Blob, ...]:
        """Every blob a client fetches for this image: manifest, config, layers."""
        return (self.manifest, self.config, *(layer.blob for layer in self.layers))


@dataclass(frozen=True)
class LayerContents:
    """What reading a layer's tar stream yields."""

    diff_id: str
    uncompressed_size: int
    files: tuple[FileEntry, ...]


# ---------------------------------------------------------------- pure parsing


def sha256_digest(data: bytes) -> str:
    """The OCI digest string of some bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def parse_manifest(raw: bytes) -> tuple[Blob, tuple[Blob, ...]]:
    """The config blob and the layer blobs an image manifest names."""
    doc = json.loads(raw)
    media_type = doc.get("mediaType", MEDIA_OCI_MANIFEST)
    if doc.get("schemaVersion") != 2 or media_type not in (
        MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST
    ):
        raise ValueError(f"not a single-image manifest (mediaType {media_type!r})")
    config = _blob(doc["config"])
    layers = tuple(_blob(layer) for layer in doc.get("layers", []))
    return config, layers


def parse_diff_ids(raw_config: bytes) -> tuple[str, ...]:
    """The uncompressed layer digests an image config lists, bottom first."""
    doc = json.loads(raw_config)
    return tuple(doc.get("rootfs", {}).get("diff_ids", []))


def _blob(descriptor: dict[str, object]) -> Blob:
    return Blob(str(descriptor["digest"]), int(str(descriptor["size"])),
                str(descriptor.get("mediaType", "")))


def entry_from_tarinfo(info: tarfile.TarInfo) -> FileEntry:
    """One tar header as a FileEntry (without content digest), whiteouts decoded."""
    path = "/" + os.path.normpath(info.name).lstrip("/")
    path = "/" if path in ("/.", "//") else path
    parent, base = os.path.split(path)
    if base == ".wh..wh..opq":
        return FileEntry(parent, 0, "opaque")
    if base.startswith(".wh."):
        return FileEntry(os.path.join(parent, base[len(".wh."):]), 0, "whiteout")
    kind: FileKind
    if info.isreg():
        kind = "file"
    elif info.isdir():
        kind = "dir"
    elif info.issym():
        kind = "symlink"
    elif info.islnk():
        kind = "hardlink"
    else:
        kind = "other"
    return FileEntry(path, info.size if kind == "file" else 0, kind)


class ByteStream(Protocol):
    """Anything with `read(size) -> bytes`: a file, a GzipFile, a socket file."""

    def read(self, size: int = -1, /) -> bytes: ...


class _HashingReader:
    """A read-only stream that hashes and counts every byte read through it."""

    def __init__(self, raw: ByteStream) -> None:
        self._raw = raw
        self.hash = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.hash.update(data)
        self.count += len(data)
        return data

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass


def read_layer(tar_stream: ByteStream) -> LayerContents:
    """Walk an uncompressed layer tar: diff_id, size in bytes and every entry (files hashed)."""
    reader = _HashingReader(tar_stream)
    files: dict[tuple[bool, str], FileEntry] = {}
    # Stream mode only calls read(); typeshed wants a full IO[bytes].
    with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
        for info in tar:
            entry = entry_from_tarinfo(info)
            if entry.kind == "file":
                content = tar.extractfile(info)
                assert content is not None
                digest = hashlib.sha256()
                while chunk := content.read(_CHUNK):
                    digest.update(chunk)
                entry = FileEntry(entry.path, entry.size, "file", digest.hexdigest())
            # A later entry for the same path wins, as it does when the layer is unpacked; a
            # whiteout is kept beside a new entry of the same path (it hides the lower one).
            key = (entry.kind in ("whiteout", "opaque"), entry.path)
            files.pop(key, None)
            files[key] = entry
    reader.drain()  # the tar's end-of-archive padding is part of the diff_id
    return LayerContents("sha256:" + reader.hash.hexdigest(), reader.count,
                         tuple(files.values()))


def open_layer_blob(path: Path, media_type: str) -> io.BufferedIOBase:
    """The uncompressed tar stream of a layer blob stored at `path`."""
    if media_type in GZIP_LAYER_TYPES:
        return gzip.open(path, "rb")
    if media_type in PLAIN_LAYER_TYPES:
        return path.open("rb")
    raise UserError(f"{path.name}: layer media type {media_type!r} is not supported "
                    f"(gzip or uncompressed tar only)")


def find_manifest(index_raw: bytes, tag: str) -> Blob:
    """The manifest descriptor an OCI layout's index.json tags with `tag`."""
    for descriptor in json.loads(index_raw).get("manifests", []):
        if descriptor.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            return _blob(descriptor)
    raise KeyError(tag)


# ---------------------------------------------------------------- adapter


def container_tool_env() -> dict[str, str]:
    """The environment for buildah/podman/skopeo: monoimage's own containers.conf."""
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def run_container_tool(argv: Sequence[str]) -> bytes:
    """Run skopeo/buildah/podman with monoimage's containers.conf; stdout, or UserError."""
    try:
        done = subprocess.run(list(argv), env=container_tool_env(), capture_output=True,
                              check=False)
    except FileNotFoundError as exc:
        raise MissingToolError(argv[0], _TOOL_PACKAGES.get(argv[0], argv[0])) from exc
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise UserError(f"{' '.join(argv[:2])} failed: {message[-1] if message else ''}")
    return done.stdout


def default_cache_dir() -> Path:
    """Where exports and file lists are kept between runs."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "monoimage" / "oci"


def storage_manifest_digest(ref: str) -> str:
    """The digest of REF's manifest as containers-storage holds it (names its content)."""
    try:
        raw = run_container_tool(["skopeo", "inspect", "--raw", f"containers-storage:{ref}"])
    except UserError as exc:
        raise UserError(f"{ref}: no such image in containers-storage ({exc})") from exc
    return sha256_digest(raw)


def load_image(ref: str, cache_dir: Path | None = None) -> Image:
    """Export REF from containers-storage (once per content) and read it as an Image."""
    cache = cache_dir or default_cache_dir()
    layout = cache / "layout"
    tag = storage_manifest_digest(ref).removeprefix("sha256:")
    with _locked(cache):
        try:
            manifest = find_manifest((layout / "index.json").read_bytes(), tag)
        except (FileNotFoundError, KeyError):
            run_container_tool(["skopeo", "copy", "--quiet", f"containers-storage:{ref}",
                                f"oci:{layout}:{tag}"])
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


@contextmanager
def _locked(cache: Path) -> Iterator[None]:
    # Two monoimage runs sharing a cache must not write index.json at the same time.
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
