"""oci: parsing layer tars and manifests (pure), and exporting a real buildah image."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from monoimage.errors import UserError
from monoimage.footprint.oci import (
    FileEntry,
    entry_from_tarinfo,
    parse_diff_ids,
    parse_manifest,
    read_layer,
)
from monoimage.image import MEDIA_OCI_MANIFEST
from monoimage.tools import skopeo as oci
from test_footprint_images import image_builder, package_files


def make_tar(entries: list[tuple[str, bytes | None, bytes]]) -> bytes:
    """A tar of (name, content or None for a directory, type) entries."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content, kind in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.SYMTYPE:
                info.linkname = "target"
            if content is not None:
                info.size = len(content)
            tar.addfile(info, io.BytesIO(content) if content is not None else None)
    return out.getvalue()


def test_read_layer_gives_diff_id_size_and_file_digests() -> None:
    raw = make_tar([("./etc", None, tarfile.DIRTYPE),
                    ("./etc/hostname", b"edge\n", tarfile.REGTYPE),
                    ("usr/lib/libx.so", b"x" * 3000, tarfile.REGTYPE),
                    ("usr/lib/libx.so.1", None, tarfile.SYMTYPE)])
    contents = read_layer(io.BytesIO(raw))
    assert contents.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert contents.uncompressed_size == len(raw)
    assert contents.files == (
        FileEntry("/etc", 0, "dir"),
        FileEntry("/etc/hostname", 5, "file", hashlib.sha256(b"edge\n").hexdigest()),
        FileEntry("/usr/lib/libx.so", 3000, "file", hashlib.sha256(b"x" * 3000).hexdigest()),
        FileEntry("/usr/lib/libx.so.1", 0, "symlink"),
    )


def test_read_layer_through_gzip_matches_the_plain_tar() -> None:
    raw = make_tar([("a", b"1" * 100_000, tarfile.REGTYPE)])
    zipped = gzip.compress(raw)
    contents = read_layer(gzip.GzipFile(fileobj=io.BytesIO(zipped)))
    assert contents.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert contents.uncompressed_size == len(raw)


def test_a_path_written_twice_in_one_layer_keeps_the_last_entry() -> None:
    raw = make_tar([("etc/motd", b"old", tarfile.REGTYPE), ("etc/motd", b"newer", tarfile.REGTYPE)])
    (entry,) = read_layer(io.BytesIO(raw)).files
    assert (entry.path, entry.size) == ("/etc/motd", 5)


def test_a_whiteout_and_a_new_file_of_the_same_path_are_both_kept() -> None:
    raw = make_tar([("etc/.wh.motd", b"", tarfile.REGTYPE), ("etc/motd", b"new", tarfile.REGTYPE)])
    assert [(f.path, f.kind) for f in read_layer(io.BytesIO(raw)).files] == [
        ("/etc/motd", "whiteout"), ("/etc/motd", "file")]


def test_whiteouts_name_the_path_they_hide() -> None:
    def entry(name: str) -> FileEntry:
        return entry_from_tarinfo(tarfile.TarInfo(name))

    assert entry("usr/share/doc/.wh.nano") == FileEntry("/usr/share/doc/nano", 0, "whiteout")
    assert entry("./var/cache/.wh..wh..opq") == FileEntry("/var/cache", 0, "opaque")
    assert entry(".wh.tmp") == FileEntry("/tmp", 0, "whiteout")


def test_parse_manifest_and_config() -> None:
    manifest = {"schemaVersion": 2, "mediaType": MEDIA_OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": "sha256:c", "size": 7},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": "sha256:l", "size": 99}]}
    config, layers = parse_manifest(json.dumps(manifest).encode())
    assert config.digest == "sha256:c" and config.size == 7
    assert [(b.digest, b.size) for b in layers] == [("sha256:l", 99)]
    assert parse_diff_ids(b'{"rootfs": {"type": "layers", "diff_ids": ["sha256:d"]}}') == (
        "sha256:d",)


def test_an_index_is_not_an_image_manifest() -> None:
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": []}
    with pytest.raises(ValueError, match="not a single-image manifest"):
        parse_manifest(json.dumps(index).encode())


def test_zstd_layers_are_refused_with_a_clear_message(tmp_path: Path) -> None:
    blob = tmp_path / "abc"
    blob.write_bytes(b"")
    with pytest.raises(UserError, match="not supported"):
        oci.open_layer_blob(blob, "application/vnd.oci.image.layer.v1.tar+zstd")


# ---------------------------------------------------------------- real images


@pytest.fixture(scope="module")
def two_layer_image() -> Iterator[str]:
    with image_builder("oci") as builder:
        yield builder.build("two", [package_files(["libc"], {}),
                                    package_files(["svc-a"], {})])


@pytest.mark.build
@pytest.mark.tools
def test_load_image_reads_blobs_diff_ids_and_files(two_layer_image: str, tmp_path: Path) -> None:
    image = oci.load_image(two_layer_image, tmp_path)
    config = json.loads(oci.skopeo("inspect", "--config", f"containers-storage:{two_layer_image}"))
    assert [layer.diff_id for layer in image.layers] == config["rootfs"]["diff_ids"]
    layout = tmp_path / "layout" / "blobs" / "sha256"
    for layer in image.layers:
        stored = layout / layer.blob.digest.removeprefix("sha256:")
        assert layer.blob.size == stored.stat().st_size
        assert layer.blob.media_type == "application/vnd.oci.image.layer.v1.tar+gzip"
        assert stored.read_bytes()[:2] == b"\x1f\x8b"  # gzip, as a push stores it
        assert layer.uncompressed_size > layer.blob.size * 0.99  # random bytes do not shrink
    files = {f.path: f for f in image.layers[1].files}
    assert files["/usr/bin/svc-a"].size == 400_000
    assert files["/usr/bin/svc-a"].kind == "file"
    manifest = (layout / image.manifest_digest.removeprefix("sha256:")).read_bytes()
    assert image.manifest.size == len(manifest)


@pytest.mark.build
@pytest.mark.tools
def test_a_second_load_reuses_the_export(two_layer_image: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    first = oci.load_image(two_layer_image, tmp_path)
    calls: list[list[str]] = []
    real = oci.skopeo

    def spy(*args: str) -> bytes:
        calls.append(["skopeo", *args])
        return real(*args)

    monkeypatch.setattr(oci, "skopeo", spy)
    assert oci.load_image(two_layer_image, tmp_path) == first
    assert [argv[:2] for argv in calls] == [["skopeo", "inspect"]]


def test_a_missing_image_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such image in containers-storage"):
        oci.load_image("localhost/monoimage-test-does-not-exist:latest", tmp_path)
