"""Helpers for the tests that build real images: tiny recipes, buildah state, image access."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from monoimage.pipeline.workspace import CONTAINER_PREFIX, TEMP_PREFIX
from monoimage.tools import buildah
from recipe_files import write_recipe

TINY_IMAGE = """\
image:
  name: monoimage-test-tiny
  tag: t
distro:
  name: debian
  release: bookworm
  packager: apt
{repositories}
services:
  - hello
site:
  hostname: edge
"""

HELLO = """\
name: hello
packages:
  - {package}
ports:
  - 8081/tcp
config:
  templates:
    - dest: /etc/hello/index.html
      content: "hello from {{{{ hostname }}}}\\n"
run:
  argv: [busybox, httpd, -f, -p, "8081", -h, /etc/hello]
ready:
  tcp: 8081
volumes:
  - /var/lib/hello
"""


# For the tests whose subject is not how the root is layered: one layer builds in a second,
# `packages` (the default) about half a minute for the tiny image.
SINGLE_LAYER = "layering:\n  policy: single"


def write_tiny_recipe(root: Path, package: str = "busybox", repositories: str = "") -> Path:
    """minbase + busybox httpd serving one template: the smallest real golden image."""
    return write_recipe(root, {"hello": HELLO.format(package=package)},
                        image=TINY_IMAGE.format(repositories=repositories))


def unique_tag(name: str) -> str:
    return f"localhost/monoimage-test-{name}:{secrets.token_hex(4)}"


def leftovers(build_id: str) -> tuple[list[str], list[str]]:
    """The working containers and temporary images that the build `build_id` left behind.

    Other builds may run on this host at the same time: only this build's names count (the
    listings themselves are taken again when they race another run's removal).
    """
    containers = [c.get("containername", "") for c in buildah.containers()
                  if c.get("containername", "").startswith(f"{CONTAINER_PREFIX}{build_id}")]
    images = [name for image in buildah.images() for name in image.get("names") or ()
              if name.startswith(f"{TEMP_PREFIX}{build_id}")]
    return containers, images


def remove_images(*refs: str) -> None:
    for ref in refs:
        try:
            buildah.remove_image(ref)
        except buildah.BuildahError:
            pass


@contextmanager
def opened(image: str) -> Iterator[tuple[str, Path]]:
    """A working container over `image` and its mounted root; removed afterwards."""
    container = buildah.buildah("from", "--name", f"monoimage-test-{secrets.token_hex(4)}",
                                "--pull-never", image).strip()
    try:
        yield container, buildah.mount(container)
    finally:
        buildah.remove_container(container)


def init_usage() -> str:
    """`monoimage-init --help` of this checkout's init, run on the host: what the copy in an
    image must print too."""
    return subprocess.run([sys.executable, "-m", "monoimage.init", "--help"], check=True,
                          capture_output=True, text=True).stdout
