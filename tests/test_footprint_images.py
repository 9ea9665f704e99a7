"""Tiny real images for the footprint tests, built with buildah (helpers; no tests here).

Files hold seeded random bytes, so gzip cannot shrink them (realistic compression) and a rebuild
of the same package version gives byte-identical files. Commits are reproducible
(`--timestamp 0 --omit-history --identity-label=false`), so an unchanged layer keeps its digest
across rebuilds, as a content-addressed build does.

Three strategies over the same toy packages, like the real comparators:
- monoimage: one image, layers cut by package (base, libshared, services, package database);
- kolla-style: a base image and one child per service, each child shipping what it needs;
- shared-base: libshared (needed by two services) moved into the base.
"""

from __future__ import annotations

import random
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from monoimage.errors import UserError
from monoimage.tools.buildah import buildah

# package -> {path: size}; the services: a and b need libshared, c does not.
PACKAGES: dict[str, dict[str, int]] = {
    "libc": {"/usr/lib/libc.so.6": 1_500_000, "/usr/bin/sh": 200_000},
    "libshared": {"/usr/lib/libshared.so.1": 700_000, "/usr/share/libshared/data": 90_000},
    "svc-a": {"/usr/bin/svc-a": 400_000},
    "svc-b": {"/usr/bin/svc-b": 300_000},
    "svc-c": {"/usr/bin/svc-c": 250_000},
}
SERVICES = {"svc-a": ("libshared", "svc-a"), "svc-b": ("libshared", "svc-b"), "svc-c": ("svc-c",)}
STATUS = "/var/lib/dpkg/status"


def owner(path: str) -> str | None:
    """The toy package owning a path (the package database belongs to none)."""
    return next((name for name, files in PACKAGES.items() if path in files), None)


def package_files(packages: Sequence[str], versions: Mapping[str, int]) -> dict[str, bytes]:
    """The files of some packages at the given versions (default version 1)."""
    return {path: random.Random(f"{name}-{versions.get(name, 1)}-{path}").randbytes(size)
            for name in packages for path, size in PACKAGES[name].items()}


def status_file(installed: Sequence[str], versions: Mapping[str, int]) -> dict[str, bytes]:
    """A package database naming what is installed, as dpkg rewrites it in every layer."""
    text = "".join(f"Package: {n}\nVersion: {versions.get(n, 1)}\n\n" for n in installed)
    return {STATUS: text.encode()}


class ImageBuilder:
    """Builds layered images with real buildah; `close()` removes every image it made."""

    def __init__(self, label: str) -> None:
        self.prefix = f"monoimage-test-{label}-{uuid.uuid4().hex[:8]}"
        self.made: list[str] = []

    def build(self, name: str, layers: Sequence[Mapping[str, bytes]],
              base: str | None = None) -> str:
        """An image of `layers` (bottom first) on `base`; its reference."""
        parent = base or "scratch"
        for index, files in enumerate(layers):
            last = index == len(layers) - 1
            ref = f"localhost/{self.prefix}-{name}" + ("" if last else f"-l{index}") + ":latest"
            self._commit_layer(parent, files, ref)
            parent = ref
        return parent

    def _commit_layer(self, parent: str, files: Mapping[str, bytes], ref: str) -> None:
        container = buildah("from", "--pull-never", parent).strip()
        try:
            with tempfile.TemporaryDirectory(prefix="monoimage-test-layer-") as tmp:
                for path, content in files.items():
                    target = Path(tmp) / path.lstrip("/")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(content)
                buildah("copy", "--quiet", container, tmp, "/")
            self.made.append(ref)
            buildah("commit", "--quiet", "--timestamp", "0", "--omit-history",
                    "--identity-label=false", container, ref)
        finally:
            buildah("rm", container)

    def close(self) -> None:
        for ref in reversed(self.made):
            with suppress(UserError):  # already gone with an image that shared its name
                buildah("rmi", ref)


@contextmanager
def image_builder(label: str) -> Iterator[ImageBuilder]:
    builder = ImageBuilder(label)
    try:
        yield builder
    finally:
        builder.close()


@dataclass(frozen=True)
class ToyStrategies:
    """Local image refs per strategy, as a site runs them."""

    monoimage: tuple[str, ...]
    kolla: tuple[str, ...]
    shared_base: tuple[str, ...]

    def by_name(self) -> dict[str, tuple[str, ...]]:
        return {"monoimage": self.monoimage, "kolla-style": self.kolla,
                "shared-base": self.shared_base}


def build_strategies(builder: ImageBuilder, versions: Mapping[str, int], tag: str
                     ) -> ToyStrategies:
    """All three strategies at the given package versions; `tag` keeps rebuilds apart."""
    services = list(SERVICES)
    everything = ["libc", "libshared", *services]
    mono = builder.build(f"mono-{tag}", [
        package_files(["libc"], versions),
        package_files(["libshared"], versions),
        package_files(services, versions),
        status_file(everything, versions),
    ])
    base = builder.build(f"kolla-base-{tag}", [
        {**package_files(["libc"], versions), **status_file(["libc"], versions)}])
    kolla = [builder.build(f"kolla-{svc}-{tag}", [
        {**package_files(SERVICES[svc], versions),
         **status_file(["libc", *SERVICES[svc]], versions)}], base=base)
        for svc in services]
    shared = builder.build(f"shared-base-{tag}", [
        {**package_files(["libshared"], versions),
         **status_file(["libc", "libshared"], versions)}], base=base)
    children = [builder.build(f"shared-{svc}-{tag}", [
        {**package_files([svc], versions),
         **status_file(["libc", "libshared", svc], versions)}], base=shared)
        for svc in services]
    return ToyStrategies((mono,), (base, *kolla), (shared, *children))
