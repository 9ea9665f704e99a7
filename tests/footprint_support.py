"""Shared pieces of the footprint tests: a dnf fixture repository and recipe, built strategies.

The dnf fixture: an RPM repository built here (rpmbuild + createrepo_c) with three services
over a small base; `libshared` (and `common-data`) are needed by two services, `gamma-solo` by
one. Files hold seeded pseudo-random text, so gzip shrinks them about as much as it shrinks
real binaries and a rebuild of the same version gives the same bytes. The day-2 release of
`libshared` (1.0-2) changes its library's content, as a security fix would.

edge-lite itself is built once per session (the `edge_lite` fixture of tests/conftest.py);
`edge_lite_run` adds its two layered comparators from the same pinned closure.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from monoimage.footprint.figures import MONOIMAGE, Strategy, footprint_report
from monoimage.footprint.fleet import strategy_rollouts
from monoimage.pipeline.build import BuildResult
from monoimage.pipeline.comparators import LayeredOptions, build_layered
from monoimage.pipeline.footprint import (
    FootprintRun,
    StrategyImages,
    package_owners,
    remove_images,
)
from monoimage.plan.comparator_plan import STRATEGIES
from monoimage.plan.resolution import Resolution
from monoimage.recipe.model import Recipe
from monoimage.tools import buildah
from monoimage.tools.cache_dir import default_cache_dir
from monoimage.tools.skopeo import load_image
from recipe_files import write_recipe
from rpmrepo import RpmSpec, make_rpm_repo

REPO = Path(__file__).resolve().parents[1]


def _text(seed: str, size: int) -> str:
    """`size` characters of seeded hex: compressible about 2:1, like code and data files."""
    return random.Random(seed).randbytes(size // 2).hex()


def _files(name: str, version: str, *sizes: tuple[str, int]) -> tuple[tuple[str, str], ...]:
    return tuple((path, _text(f"{name}-{version}-{path}", size)) for path, size in sizes)


DNF_DAY1: list[RpmSpec] = [
    RpmSpec("basefs", "1.0", files=_files("basefs", "1", ("/usr/lib/basefs/libc.so", 300_000))),
    RpmSpec("common-data", "1.0",
            files=_files("common-data", "1", ("/usr/share/common-data/table", 120_000))),
    RpmSpec("libshared", "1.0", "1", requires=("common-data",),
            files=_files("libshared", "1.0-1", ("/usr/lib/libshared.so.1", 200_000))),
    RpmSpec("alpha-daemon", "2.0", requires=("libshared >= 1.0", "common-data"),
            files=_files("alpha", "1", ("/usr/bin/alpha-daemon", 150_000))),
    RpmSpec("beta-agent", "3.1", requires=("libshared",),
            files=_files("beta", "1", ("/usr/bin/beta-agent", 100_000))),
    RpmSpec("gamma-solo", "1.0", files=_files("gamma", "1", ("/usr/bin/gamma-solo", 80_000))),
]
# Day 2: the repository gets a new release of the shared library.
LIBSHARED_UPDATE = RpmSpec("libshared", "1.0", "2", requires=("common-data",),
                           files=_files("libshared", "1.0-2",
                                        ("/usr/lib/libshared.so.1", 200_000)))

DNF_IMAGE = """\
image:
  name: {name}
  tag: t
distro:
  name: fedora
  release: "39"
  packager: dnf
  architecture: x86_64
  repositories:
    - id: fixture
      baseurl: file://{repo}
base:
  packages: [basefs]
services: [alpha, beta, gamma]
site:
  hostname: edge
strip:
  docs: true
"""

DNF_SERVICE = """\
name: {name}
packages: [{package}]
ports: [{port}/tcp]
run:
  argv: [/usr/bin/{package}]
"""

DNF_SERVICES = {"alpha": ("alpha-daemon", 8001), "beta": ("beta-agent", 8002),
                "gamma": ("gamma-solo", 8003)}


def make_dnf_repo(dest: Path, *, with_update: bool = False) -> Path:
    """The fixture repository (with libshared 1.0-2 too when `with_update`)."""
    return make_rpm_repo(dest, DNF_DAY1 + ([LIBSHARED_UPDATE] if with_update else []))


def write_dnf_recipe(folder: Path, repo: Path, name: str | None = None) -> Path:
    """image.yaml and services/ for the fixture; a unique `monoimage-test-` image name."""
    name = name or f"monoimage-test-dnf-{secrets.token_hex(3)}"
    services = {svc: DNF_SERVICE.format(name=svc, package=pkg, port=port)
                for svc, (pkg, port) in DNF_SERVICES.items()}
    return write_recipe(folder, services, image=DNF_IMAGE.format(name=name, repo=repo))


def renamed_recipe_copy(recipe: Path, folder: Path, name: str) -> Path:
    """A copy of a repository recipe (and its services) whose image is called `name`."""
    assert name.startswith("monoimage-test-")
    (folder / "services").mkdir(parents=True, exist_ok=True)
    for service in (recipe.parent / "services").glob("*.yaml"):
        (folder / "services" / service.name).write_text(service.read_text())
    text = recipe.read_text()
    renamed = text.replace(f"name: {recipe.stem}\n", f"name: {name}\n", 1)
    assert renamed != text
    copy = folder / recipe.name
    copy.write_text(renamed)
    return copy


@contextmanager
def apt_readable_folder() -> Iterator[Path]:
    """A folder for an update repository: apt reads its key as the unprivileged _apt user, and
    pytest's temporary folders are 0700 up to /tmp."""
    folder = Path(tempfile.mkdtemp(prefix="monoimage-test-update-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_images_named(prefix: str) -> None:
    """Remove every image with a name that starts with `prefix` (children, then bases)."""
    assert prefix.startswith("localhost/monoimage-test-")
    names = [name for image in buildah.images() for name in image.get("names") or ()
             if name.startswith(prefix)]
    remove_images(sorted(names, key=lambda n: ("-base:" not in n, n)))  # bases last


EDGE_LITE_EPOCH = 1700000000   # 2023-11-14T22:13:20Z, the images' creation time


def edge_lite_source() -> Path:
    """The committed edge-lite recipe, or MONOIMAGE_TEST_EDGE_LITE (a recipe under work)."""
    return Path(os.environ.get("MONOIMAGE_TEST_EDGE_LITE", REPO / "recipes" / "edge-lite.yaml"))


@dataclass(frozen=True)
class EdgeLite:
    """The session's edge-lite build: its recipe file, the recipe, its pinned closure."""

    path: Path
    recipe: Recipe
    resolution: Resolution
    result: BuildResult
    folder: Path

    @property
    def reference(self) -> str:
        return self.result.reference


def edge_lite_run(edge_lite: EdgeLite, oci: Path, source_date_epoch: int) -> FootprintRun:
    """`monoimage footprint`'s first day over the session's edge-lite: its golden image and
    both layered comparators built from the same closure (about two minutes), measured from
    their OCI blobs; no registry pull (the dnf fixture's tests verify one)."""
    recipe, resolution = edge_lite.recipe, edge_lite.resolution
    tag = edge_lite.reference.rsplit(":", 1)[1]
    images = [StrategyImages(MONOIMAGE, (edge_lite.reference,))]
    for strategy in STRATEGIES:
        built = build_layered(recipe, resolution, strategy, LayeredOptions(
            tag=tag, cache_dir=default_cache_dir(), source_date_epoch=source_date_epoch))
        images.append(StrategyImages(strategy, built.references))
    measured = [Strategy(s.name, tuple(load_image(ref, oci) for ref in s.references))
                for s in images]
    report = footprint_report(measured, owner=package_owners(
        edge_lite.reference, recipe.distro.packager), baseline=MONOIMAGE)
    return FootprintRun(recipe=recipe, resolution=resolution, images=tuple(images),
                        report=report, rollouts=strategy_rollouts(report.strategies))
