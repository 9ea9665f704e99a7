"""Where the first-deploy bytes go: the golden image against kolla-style, per image and per
package, predicted from the resolved closure with the estimate's measured constants
(footprint/estimate.py; within a few % of the real images on edge-compute, docs/footprint.md).

For each package: its predicted compressed bytes (K × .deb, K_PY × .deb for Python packages,
whose byte code Debian compiles at install) and how many copies each strategy ships (the
golden image one, unless it is a config tool; kolla-style one in its base, or one per child
that needs it). Then what kolla-style ships beyond the golden image, by cause: packages shipped
again by several children, the package database every child rewrites, config tools, manifests.

`--kolla-base` also resolves Kolla's own Debian base package list (kolla's
docker/base/Dockerfile.j2, `base_apt_packages` and the packages it installs first) into
kolla-style's base, as Kolla ships it to every site whatever services run there; the golden
image stays as the recipe builds it. Printed beside the recipe-only base, never instead of it.

    .venv/bin/python bench/footprint_breakdown.py [RECIPE] [--kolla-base] [--top N]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from monoimage.footprint.estimate import APT_CALIBRATION, generates_byte_code, predicted_strategies
from monoimage.footprint.figures import MONOIMAGE, first_deploy
from monoimage.pipeline.build import resolve
from monoimage.plan.comparator_plan import plan_layered
from monoimage.plan.config_tools import config_tools, runtime_resolution
from monoimage.plan.resolution import Resolution, ResolvedPackage
from monoimage.recipe.load import load_recipe
from monoimage.recipe.model import PackageRequest, Recipe
from monoimage.tools.cache_dir import default_cache_dir

REPO = Path(__file__).resolve().parents[1]
# Kolla's Debian base image (openstack/kolla docker/base/Dockerfile.j2): the packages it installs
# before its sources (apt-transport-https, ca-certificates, curl, dirmngr, gnupg), lsb-release,
# locales (with en_US.UTF-8 generated), and base_apt_packages.
KOLLA_DEBIAN_BASE = ("apt-transport-https", "ca-certificates", "curl", "dirmngr", "gnupg",
                     "lsb-release", "locales", "apt-utils", "gawk", "iproute2", "kmod", "lvm2",
                     "netbase", "open-iscsi", "procps", "python3", "python3-pip",
                     "python3-setuptools", "socat", "sudo", "tgt")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", nargs="?", type=Path,
                        default=REPO / "recipes" / "edge-compute.yaml")
    parser.add_argument("--kolla-base", action="store_true")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    console = Console(width=140)
    recipe = load_recipe(args.recipe)
    resolution = resolve(recipe, cache_dir=default_cache_dir())
    golden = runtime_resolution(resolution, config_tools(recipe, resolution))
    breakdown(console, recipe, resolution, golden, args.top, "the recipe's base")
    if args.kolla_base:
        kolla = with_kolla_base(recipe)
        wide = resolve(kolla, cache_dir=default_cache_dir())
        added = sorted({p.name for p in wide.packages} - {p.name for p in resolution.packages})
        console.print(f"Kolla's Debian base adds {len(added)} packages: {', '.join(added)}")
        breakdown(console, kolla, wide, golden, args.top, "Kolla's own Debian base")
    return 0


def with_kolla_base(recipe: Recipe) -> Recipe:
    """The recipe with Kolla's Debian base packages added to its base (for kolla-style only)."""
    have = {r.name for r in recipe.base_packages}
    extra = tuple(PackageRequest(name) for name in KOLLA_DEBIAN_BASE if name not in have)
    return dataclasses.replace(recipe, base_packages=recipe.base_packages + extra)


def predicted(package: ResolvedPackage, resolution: Resolution) -> float:
    """A package's predicted compressed bytes in a layer (the estimate's K or K_PY)."""
    cal = APT_CALIBRATION
    ratio = (cal.python_layer_per_download if generates_byte_code(package, resolution.family)
             else cal.layer_per_download)
    return ratio * package.download_size


def breakdown(console: Console, recipe: Recipe, resolution: Resolution, golden: Resolution,
              top: int, label: str) -> None:
    services = [s.name for s in recipe.services]
    strategies = {s.name: s for s in predicted_strategies(
        resolution, services, APT_CALIBRATION, recipe.layering, golden=golden)}
    mono = first_deploy(strategies[MONOIMAGE].images).bytes
    kolla_images = strategies["kolla-style"].images
    kolla = first_deploy(kolla_images).bytes
    plan = plan_layered(resolution, services, "kolla-style")
    copies: Counter[str] = Counter({p.name: 1 for p in plan.base})
    for child in plan.children:
        copies.update(p.name for p in child.packages)
    in_golden = {p.name for p in golden.packages}
    per_image = Table(title=f"{recipe.name}, kolla-style with {label}: predicted compressed "
                            f"bytes per image (MB = 10^6 B)")
    for column in ("image", "packages", "layer MB"):
        per_image.add_column(column, justify="left" if column == "image" else "right")
    per_image.add_row("base", str(len(plan.base)),
                      f"{kolla_images[0].layers[0].blob.size / 1e6:,.1f}")
    for child, image in zip(plan.children, kolla_images[1:], strict=True):
        per_image.add_row(child.service, str(len(child.packages)),
                          f"{image.layers[-1].blob.size / 1e6:,.1f}")
    console.print(per_image)
    table = Table(title=f"{recipe.name}: packages kolla-style ships beyond the golden image "
                        f"(predicted compressed MB)")
    for column in ("package", "python", "golden copies", "kolla copies", "each MB",
                   "kolla extra MB"):
        table.add_column(column, justify="left" if column == "package" else "right")
    by_name = {p.name: p for p in resolution.packages}
    extra = {name: (n - (name in in_golden)) * predicted(by_name[name], resolution)
             for name, n in copies.items()}
    for name in sorted(extra, key=lambda n: -extra[n])[:top]:
        package = by_name[name]
        table.add_row(name, "yes" if generates_byte_code(package, resolution.family) else "",
                      str(int(name in in_golden)), str(copies[name]),
                      f"{predicted(package, resolution) / 1e6:,.2f}", f"{extra[name] / 1e6:,.2f}")
    console.print(table)
    shipped_again = sum(v for n, v in extra.items() if n in in_golden)
    not_in_golden = sum(v for n, v in extra.items() if n not in in_golden)
    databases = sum(image.layers[-1].blob.size for image in kolla_images[1:]) - sum(
        predicted(p, resolution) for child in plan.children for p in child.packages)
    python = sum(predicted(p, resolution) for p in golden.packages
                 if generates_byte_code(p, resolution.family))
    console.print(
        f"golden {mono / 1e6:,.1f} MB (Python packages with their byte code "
        f"{python / 1e6:,.1f} MB), kolla-style {kolla / 1e6:,.1f} MB: "
        f"{mono / kolla:.3f}×; kolla-style's {(kolla - mono) / 1e6:,.1f} MB more: packages "
        f"shipped by several of its images {shipped_again / 1e6:,.1f} MB, packages the golden "
        f"image does not hold {not_in_golden / 1e6:,.1f} MB, the package database its "
        f"children rewrite {databases / 1e6:,.1f} MB, the rest (init layer, manifests) "
        f"{(kolla - mono - shipped_again - not_in_golden - databases) / 1e6:,.1f} MB; "
        f"0.5× needs kolla-style ≥ {2 * mono / 1e6:,.1f} MB or the golden image ≤ "
        f"{kolla / 2e6:,.1f} MB")


if __name__ == "__main__":
    sys.exit(main())
