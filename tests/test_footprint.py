"""footprint: figures over hand-made Images (pure; no buildah)."""

from __future__ import annotations

import hashlib

import pytest

from monoimage.footprint.figures import (
    SitePull,
    Strategy,
    day2,
    disk_bytes,
    find_duplicates,
    first_deploy,
    footprint_report,
    megabytes,
    unique_blobs,
)
from monoimage.footprint.oci import Blob, FileEntry, Image, Layer

GZ = "application/vnd.oci.image.layer.v1.tar+gzip"


def file(path: str, size: int, content: str = "") -> FileEntry:
    return FileEntry(path, size, "file", hashlib.sha256((content or path).encode()).hexdigest())


def layer(name: str, size: int, files: tuple[FileEntry, ...] = ()) -> Layer:
    return Layer(Blob(f"sha256:{name}", size, GZ), f"sha256:diff-{name}", size * 2, files)


def image(name: str, *layers: Layer, config: int = 500, manifest: int = 700) -> Image:
    return Image(f"localhost/{name}:latest", Blob(f"sha256:m-{name}", manifest, "manifest"),
                 Blob(f"sha256:c-{name}", config, "config"), layers)


BASE = layer("base", 100_000, (file("/usr/lib/libc.so", 60_000),))
NOVA = layer("nova", 30_000, (file("/usr/lib/libssl.so", 4_000), file("/usr/bin/nova", 9_000)))
OVS = layer("ovs", 20_000, (file("/usr/lib/libssl.so", 4_000), file("/usr/bin/ovs", 7_000)))


def test_first_deploy_counts_a_shared_base_layer_once() -> None:
    images = [image("nova", BASE, NOVA), image("ovs", BASE, OVS)]
    pull = first_deploy(images)
    assert pull == SitePull(images=2, checks=0, manifests=2, blobs=5,
                            bytes=100_000 + 30_000 + 20_000 + 2 * 500 + 2 * 700)
    assert len(unique_blobs(images)) == 7


def test_disk_bytes_are_the_unpacked_unique_layers() -> None:
    assert disk_bytes([image("nova", BASE, NOVA), image("ovs", BASE, OVS)]) == 2 * 150_000


def test_day2_counts_only_blobs_the_site_does_not_hold() -> None:
    before = [image("nova", BASE, NOVA), image("ovs", BASE, OVS)]
    nova2 = layer("nova2", 31_000)
    after = [image("nova2", BASE, nova2, config=510), image("ovs", BASE, OVS)]
    assert day2(before, after) == SitePull(images=2, checks=2, manifests=1, blobs=2,
                                           bytes=31_000 + 510 + 700)
    assert day2(before, before).bytes == 0


def test_a_base_change_re_ships_every_child_built_on_it() -> None:
    base2 = layer("base2", 100_500)
    before = [image("nova", BASE, NOVA), image("ovs", BASE, OVS)]
    # Children rebuilt on the new base get new layers too (not bit-reproducible in Kolla).
    after = [image("nova-2", base2, layer("nova-2", 30_000)),
             image("ovs-2", base2, layer("ovs-2", 20_000))]
    assert day2(before, after).bytes == 100_500 + 30_000 + 20_000 + 2 * 1_200


def test_duplicated_files_across_sibling_layers_with_package_owner() -> None:
    owners = {"/usr/lib/libssl.so": "libssl3", "/usr/bin/nova": "nova-compute"}
    duplication = find_duplicates([image("nova", BASE, NOVA), image("ovs", BASE, OVS)],
                                  owners.get)
    (dup,) = duplication.files
    assert (dup.path, dup.copies, dup.bytes_wasted, dup.identical, dup.package) == (
        "/usr/lib/libssl.so", 2, 4_000, True, "libssl3")
    assert duplication.bytes_wasted == 4_000
    assert [(p.package, p.files, p.bytes_wasted) for p in duplication.by_package] == [
        ("libssl3", 1, 4_000)]


def test_a_shadowed_file_wastes_all_but_its_largest_copy() -> None:
    lower = layer("lower", 10, (file("/var/lib/dpkg/status", 300, "v1"),))
    upper = layer("upper", 10, (file("/var/lib/dpkg/status", 500, "v2"),))
    (dup,) = find_duplicates([image("x", lower, upper)]).files
    assert (dup.copies, dup.bytes_wasted, dup.identical, dup.package) == (2, 300, False, None)


def test_a_layer_shared_by_two_images_is_not_a_duplicate() -> None:
    assert find_duplicates([image("nova", BASE), image("ovs", BASE)]).files == ()


def test_empty_files_directories_and_whiteouts_are_not_duplicates() -> None:
    one = layer("one", 10, (FileEntry("/etc", 0, "dir"), file("/etc/empty", 0),
                            FileEntry("/opt", 0, "whiteout")))
    two = layer("two", 10, (FileEntry("/etc", 0, "dir"), file("/etc/empty", 0),
                            FileEntry("/opt", 0, "whiteout")))
    assert find_duplicates([image("x", one, two)]).bytes_wasted == 0


def test_report_verdict_compares_every_strategy_with_the_baseline() -> None:
    mono = Strategy("monoimage", (image("mono", layer("all", 1_000_000, ()), config=0,
                                        manifest=0),))
    kolla = Strategy("kolla-style", (image("k1", layer("b", 2_000_000), config=0, manifest=0),
                                     image("k2", layer("b", 2_000_000), layer("c", 1_000_000),
                                           config=0, manifest=0)))
    report = footprint_report([kolla, mono])
    assert report.verdict == "monoimage pulls 1.0 MB, kolla-style 3.0 MB (3.0× more)"
    mono2 = Strategy("monoimage", (image("mono2", layer("all2", 250_000), config=0,
                                         manifest=0),))
    kolla2 = Strategy("kolla-style", (image("k1", layer("b", 2_000_000), config=0, manifest=0),
                                      image("k2b", layer("b", 2_000_000), layer("c2", 100_000),
                                            config=0, manifest=0)))
    report = footprint_report([mono, kolla], [mono2, kolla2])
    assert report.verdict.endswith(
        "after the update monoimage re-pulls 0.2 MB, kolla-style 0.1 MB (2.5× less)")
    assert [s.day2.bytes for s in report.strategies if s.day2] == [250_000, 100_000]


def test_report_refuses_an_update_for_an_unknown_strategy() -> None:
    mono = Strategy("monoimage", (image("mono", BASE),))
    with pytest.raises(ValueError, match="without a first deploy"):
        footprint_report([mono], [Strategy("kolla-style", ())])


def test_megabytes_are_decimal() -> None:
    assert megabytes(1_234_567_890) == "1,234.6 MB"
