"""Shared pieces of the footprint tests: a dnf fixture repository and recipe, built strategies.

The dnf fixture: an RPM repository built here (rpmbuild + createrepo_c) with three services
over a small base; `libshared` (and `common-data`) are needed by two services, `gamma-solo` by
one. Files hold seeded pseudo-random text, so gzip shrinks them about as much as it shrinks
real binaries and a rebuild of the same version gives the same bytes. The day-2 release of
`libshared` (1.0-2) changes its library's content, as a security fix would.

Building edge-lite's three strategies takes about three minutes here: `built_once` builds each
set once per test session, whichever test module asks first, and removes its images when the
session ends (a provisional stand-in for a shared session fixture in tests/conftest.py).
"""

from __future__ import annotations

import random
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from monoimage.pipeline.footprint import (
    FootprintOptions,
    FootprintRun,
    remove_images,
    run_footprint,
)
from monoimage.recipe.load import load_recipe
from monoimage.tools import buildah
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


_BUILT: dict[str, Any] = {}


def built_once(request: pytest.FixtureRequest, key: str, make: Callable[[], Any],
               image_prefix: str) -> Any:
    """`make()` once per session under `key`; at the session's end (or if `make` fails),
    every image whose name starts with `image_prefix` is removed."""
    if key not in _BUILT:
        request.session.config.add_cleanup(lambda: remove_images_named(image_prefix))
        _BUILT[key] = make()
    return _BUILT[key]


def remove_images_named(prefix: str) -> None:
    """Remove every image with a name that starts with `prefix` (children, then bases)."""
    assert prefix.startswith("localhost/monoimage-test-")
    names = [name for image in buildah.images() for name in image.get("names") or ()
             if name.startswith(prefix)]
    remove_images(sorted(names, key=lambda n: ("-base:" not in n, n)))  # bases last


@dataclass(frozen=True)
class Built:
    """One footprint run of a test recipe, and where its files are."""

    run: FootprintRun
    recipe: Path
    folder: Path


def edge_lite_footprint(request: pytest.FixtureRequest,
                        factory: pytest.TempPathFactory) -> Built:
    """edge-lite's three strategies, built once per session (about 3.5 minutes), not verified
    on a registry (the dnf fixture's tests do that); images removed at the session's end."""
    name = f"monoimage-test-edge-lite-{secrets.token_hex(3)}"

    def make() -> Built:
        folder = factory.mktemp("edge-lite-footprint")
        path = renamed_recipe_copy(REPO / "recipes" / "edge-lite.yaml", folder, name)
        run = run_footprint(load_recipe(path), FootprintOptions(
            tag="t", out_dir=folder / "out", oci_cache=folder / "oci", verify=False))
        request.session.config.add_cleanup(
            lambda: shutil.rmtree(folder / "oci", ignore_errors=True))
        return Built(run, path, folder)

    built: Built = built_once(request, "edge-lite", make, f"localhost/{name}")
    return built
