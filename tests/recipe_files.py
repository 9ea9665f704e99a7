"""Write small recipe trees for tests: one image file and its services/ folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

IMAGE = """\
image:
  name: test-image
distro:
  name: debian
  release: bookworm
  packager: apt
services:
{services}
"""

SERVICE = """\
name: {name}
packages:
  - {name}-pkg
run:
  argv: [/usr/bin/{name}]
"""


def write_recipe(root: Path, services: dict[str, str] | None = None,
                 image: str | None = None) -> Path:
    """Write `image.yaml` and `services/<name>.yaml`; services default to a minimal one each."""
    services = services if services is not None else {"alpha": SERVICE.format(name="alpha")}
    (root / "services").mkdir(parents=True, exist_ok=True)
    for name, text in services.items():
        (root / "services" / f"{name}.yaml").write_text(textwrap.dedent(text))
    if image is None:
        image = IMAGE.format(services="\n".join(f"  - {n}" for n in services))
    path = root / "image.yaml"
    path.write_text(textwrap.dedent(image))
    return path
