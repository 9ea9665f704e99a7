"""Footprint figures of a deployment strategy, computed from its real OCI blobs (pure).

A strategy is the named set of images a site runs: monoimage is one image; kolla-style and
shared-base are a base image and one child per service. Every figure counts blobs by digest,
so a blob that several images share counts once, as it does on a registry and on a site:

- first-deploy bytes: compressed bytes a fresh site pulls: manifests, configs and layer blobs
  of every image, each distinct blob once.
- disk bytes: uncompressed size (tar bytes) of every distinct layer, which is what the site
  unpacks.
- duplicated bytes: a path that holds file content in more than one distinct layer; every copy
  but the largest is waste (shadowed by an upper layer, or shipped again by a sibling image).
- day-2 bytes: after an update, the compressed bytes of the blobs of the new images that the
  site does not hold yet, plus the manifests that changed. A site learns whether an image
  changed from its manifest digest (a HEAD request, no body), so unchanged images cost no bytes.

Sizes in text are decimal megabytes (1 MB = 1,000,000 bytes), like registries report them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from monoimage.footprint.oci import Blob, Image, Layer

MONOIMAGE = "monoimage"  # the golden image's strategy: the baseline of every comparison
MONOIMAGE_SINGLE = "monoimage-single"  # the same golden image squashed into one layer

PackageOwner = Callable[[str], str | None]
"""Maps an absolute path to the package that owns it, or None when no package does."""


@dataclass(frozen=True)
class Strategy:
    """A named set of images that together run every service of a site."""

    name: str
    images: tuple[Image, ...]


@dataclass(frozen=True)
class SitePull:
    """What one site fetches from a registry.

    `images`: images the site resolves; `checks`: manifest HEAD requests (an update check asks
    each image's digest before pulling; a first deploy GETs manifests directly, no checks);
    `manifests` and `blobs` (configs and layers): what it downloads; `bytes`: their sizes.
    """

    images: int
    checks: int
    manifests: int
    blobs: int
    bytes: int


@dataclass(frozen=True)
class DuplicatedFile:
    """A path with content in several distinct layers; bytes beyond the largest copy are waste."""

    path: str
    copies: int
    bytes_wasted: int
    identical: bool
    package: str | None


@dataclass(frozen=True)
class PackageDuplication:
    """Duplicated bytes summed over the files a package owns."""

    package: str | None
    files: int
    bytes_wasted: int


@dataclass(frozen=True)
class Duplication:
    """Every duplicated file, biggest waste first, and the same summed per owning package."""

    bytes_wasted: int
    files: tuple[DuplicatedFile, ...]
    by_package: tuple[PackageDuplication, ...]


@dataclass(frozen=True)
class StrategyFigures:
    """The measured figures of one strategy; `day2` is None when no update was given."""

    name: str
    images: int
    layers: int
    first_deploy: SitePull
    disk_bytes: int
    duplicated_bytes: int
    duplicated_files: int
    top_files: tuple[DuplicatedFile, ...]
    top_packages: tuple[PackageDuplication, ...]
    day2: SitePull | None


@dataclass(frozen=True)
class FootprintReport:
    """Figures for every strategy and a one-line verdict against the baseline strategy."""

    strategies: tuple[StrategyFigures, ...]
    baseline: str
    verdict: str


def unique_blobs(images: Iterable[Image]) -> dict[str, Blob]:
    """Every blob the images reference, keyed by digest (a shared blob appears once)."""
    blobs: dict[str, Blob] = {}
    for image in images:
        for blob in image.blobs():
            blobs.setdefault(blob.digest, blob)
    return blobs


def unique_layers(images: Iterable[Image]) -> dict[str, Layer]:
    """Every distinct layer, keyed by diff_id (same content, same layer on disk)."""
    layers: dict[str, Layer] = {}
    for image in images:
        for layer in image.layers:
            layers.setdefault(layer.diff_id, layer)
    return layers


def first_deploy(images: Sequence[Image]) -> SitePull:
    """What a fresh site pulls to run all these images."""
    blobs = unique_blobs(images)
    manifests = {image.manifest_digest for image in images}
    return SitePull(images=len(images), checks=0, manifests=len(manifests),
                    blobs=len(blobs) - len(manifests), bytes=sum(b.size for b in blobs.values()))


def day2(before: Sequence[Image], after: Sequence[Image]) -> SitePull:
    """What a site holding `before` pulls to run `after`: only blobs it does not hold."""
    held = unique_blobs(before)
    new = {d: b for d, b in unique_blobs(after).items() if d not in held}
    manifests = {image.manifest_digest for image in after} - held.keys()
    return SitePull(images=len(after), checks=len(after), manifests=len(manifests),
                    blobs=len(new) - len(manifests), bytes=sum(b.size for b in new.values()))


def disk_bytes(images: Iterable[Image]) -> int:
    """Unpacked (tar) bytes of the distinct layers a site stores."""
    return sum(layer.uncompressed_size for layer in unique_layers(images).values())


def find_duplicates(images: Iterable[Image], owner: PackageOwner | None = None) -> Duplication:
    """Paths with file content in more than one distinct layer, and what they waste."""
    copies: dict[str, list[tuple[int, str | None]]] = defaultdict(list)
    for layer in unique_layers(images).values():
        for entry in layer.files:
            if entry.kind == "file" and entry.size > 0:
                copies[entry.path].append((entry.size, entry.sha256))
    files = []
    for path, found in copies.items():
        if len(found) < 2:
            continue
        sizes = [size for size, _ in found]
        files.append(DuplicatedFile(
            path=path, copies=len(found), bytes_wasted=sum(sizes) - max(sizes),
            identical=len({digest for _, digest in found}) == 1,
            package=owner(path) if owner else None))
    files.sort(key=lambda f: (-f.bytes_wasted, f.path))
    per_package: dict[str | None, list[int]] = defaultdict(lambda: [0, 0])
    for f in files:
        per_package[f.package][0] += 1
        per_package[f.package][1] += f.bytes_wasted
    by_package = sorted(
        (PackageDuplication(package, count, wasted)
         for package, (count, wasted) in per_package.items()),
        key=lambda p: (-p.bytes_wasted, p.package or ""))
    return Duplication(sum(f.bytes_wasted for f in files), tuple(files), tuple(by_package))


def strategy_figures(strategy: Strategy, updated: Strategy | None = None,
                     owner: PackageOwner | None = None, top: int = 10) -> StrategyFigures:
    """Every figure of one strategy; `updated` is the same strategy rebuilt after an update."""
    duplication = find_duplicates(strategy.images, owner)
    return StrategyFigures(
        name=strategy.name,
        images=len(strategy.images),
        layers=len(unique_layers(strategy.images)),
        first_deploy=first_deploy(strategy.images),
        disk_bytes=disk_bytes(strategy.images),
        duplicated_bytes=duplication.bytes_wasted,
        duplicated_files=len(duplication.files),
        top_files=duplication.files[:top],
        top_packages=duplication.by_package[:top],
        day2=day2(strategy.images, updated.images) if updated else None,
    )


def footprint_report(strategies: Sequence[Strategy], updated: Sequence[Strategy] = (),
                     owner: PackageOwner | None = None, baseline: str = "monoimage",
                     top: int = 10) -> FootprintReport:
    """Figures for every strategy, day-2 where an updated strategy of the same name is given."""
    after = {s.name: s for s in updated}
    unknown = after.keys() - {s.name for s in strategies}
    if unknown:
        raise ValueError(f"updated strategies without a first deploy: {sorted(unknown)}")
    figures = tuple(strategy_figures(s, after.get(s.name), owner, top) for s in strategies)
    return FootprintReport(figures, baseline, verdict(figures, baseline))


def megabytes(size: int) -> str:
    """Bytes as decimal megabytes for people: '12.3 MB'."""
    return f"{size / 1e6:,.1f} MB"


def _compare(value: int, base: int) -> str:
    if base == 0 or value == base:
        return ""
    ratio = value / base
    if ratio >= 1:
        return f" ({ratio:.1f}× more)"
    return f" ({1 / ratio:.1f}× less)" if value else " (nothing)"


def verdict(figures: Sequence[StrategyFigures], baseline: str) -> str:
    """'monoimage pulls X MB, kolla-style Y MB (Z× more), …', then the day-2 line if known."""
    by_name = {f.name: f for f in figures}
    if baseline not in by_name:
        raise ValueError(f"baseline strategy {baseline!r} not among {sorted(by_name)}")
    ordered = [by_name[baseline], *(f for f in figures if f.name != baseline)]
    base = by_name[baseline]

    def line(label: str, size_of: Callable[[StrategyFigures], int]) -> str:
        head, *rest = ordered
        parts = [f"{head.name} {label} {megabytes(size_of(head))}"]
        parts += [f"{f.name} {megabytes(size_of(f))}{_compare(size_of(f), size_of(base))}"
                  for f in rest]
        return ", ".join(parts)

    text = line("pulls", lambda f: f.first_deploy.bytes)
    if all(f.day2 is not None for f in figures):
        text += "; after the update " + line(
            "re-pulls", lambda f: f.day2.bytes if f.day2 else 0)
    return text
