"""OCI images as data: blobs, layers and their files, and the parsing of manifests, configs and
layer tars (pure: bytes and streams in, frozen values out).

`read_layer` walks a layer's tar stream with the standard `tarfile` and returns its diff_id
(sha256 of the uncompressed tar), uncompressed size and file list. The adapter that exports
images from containers-storage and reads them out of an OCI layout is `tools/skopeo.py`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from dataclasses import dataclass
from typing import Literal, Protocol

from monoimage.image import MEDIA_DOCKER_MANIFEST, MEDIA_OCI_MANIFEST

FileKind = Literal["file", "dir", "symlink", "hardlink", "whiteout", "opaque", "other"]



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


_CHUNK = 1 << 20


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


def find_manifest(index_raw: bytes, tag: str) -> Blob:
    """The manifest descriptor an OCI layout's index.json tags with `tag`."""
    for descriptor in json.loads(index_raw).get("manifests", []):
        if descriptor.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            return _blob(descriptor)
    raise KeyError(tag)
