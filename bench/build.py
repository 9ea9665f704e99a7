"""`monoimage build` against mmdebstrap alone, and the image against its resolved closure.

For each recipe: the same mmdebstrap call the build makes (same pinned package set, same
package cache), timed alone into a scratch directory, then the full build (resolve, rootfs,
strip, init, manifest, config, commit); the difference is monoimage's overhead. Sizes: the
resolved closure (download, installed per the package metadata), what strip removed, the
unpacked image root, and the image as containers-storage holds it.

Prints figures; asserts nothing. Usage:
    python bench/build.py [RECIPE ...] [--cold]        (default recipes/edge-lite.yaml)

By default mmdebstrap runs once untimed first, so that both timed runs find the same warm
package cache; --cold skips that (then the first timed run also downloads).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rich.console import Console
from rich.table import Table

from monoimage.pipeline.build import BuildOptions, build, resolve
from monoimage.recipe.load import load_recipe
from monoimage.recipe.versions import Family
from monoimage.tools import buildah
from monoimage.tools.cache_dir import default_cache_dir
from monoimage.tools.packagers.apt import mmdebstrap_argv
from monoimage.tools.podman import image_inspect
from monoimage.tools.run import run

REPO = Path(__file__).resolve().parents[1]


def mmdebstrap_alone(recipe_path: Path, cache_dir: Path) -> tuple[float, int]:
    """Seconds for the build's own mmdebstrap call into a scratch directory, and its bytes."""
    recipe = load_recipe(recipe_path)
    resolution = resolve(recipe, cache_dir=cache_dir)
    with tempfile.TemporaryDirectory(prefix="monoimage-bench-", dir="/var/tmp") as tmp:
        target = Path(tmp) / "root"
        argv = mmdebstrap_argv(recipe, resolution, target, cache_dir=cache_dir)
        start = time.monotonic()
        run(argv, env={"SOURCE_DATE_EPOCH": "0"}, what="mmdebstrap")
        seconds = time.monotonic() - start
        size = sum(os.lstat(os.path.join(d, f)).st_size
                   for d, _, files in os.walk(target) for f in files)
        shutil.rmtree(target)
    return seconds, size


def storage_size(ref: str) -> int:
    return int(image_inspect(ref)["Size"])


def bench(recipe_path: Path, cache_dir: Path, warm: bool) -> dict[str, float]:
    recipe = load_recipe(recipe_path)
    if recipe.distro.packager is not Family.APT:
        raise SystemExit(f"{recipe_path}: the mmdebstrap comparison is for apt recipes")
    tag = f"localhost/monoimage-bench-{recipe.name}:{secrets.token_hex(4)}"
    options = BuildOptions(tag=tag, cache_dir=cache_dir,
                           out_dir=Path(tempfile.mkdtemp(prefix="monoimage-bench-out-")))
    if warm:
        mmdebstrap_alone(recipe_path, cache_dir)  # fills the package cache for both runs
    alone, alone_bytes = mmdebstrap_alone(recipe_path, cache_dir)
    start = time.monotonic()
    result = build(recipe, options)
    total = time.monotonic() - start
    try:
        stored = storage_size(tag)
    finally:
        buildah.remove_image(tag)
    stages = dict(result.stage_seconds)
    return {
        "build_s": total, "mmdebstrap_s": alone, "overhead_s": total - alone,
        "install_in_build_s": stages["rootfs"], "resolve_s": stages["resolve"],
        "commit_s": stages["commit"], "packages": result.packages,
        "download_mib": result.download_bytes / 2**20,
        "closure_mib": result.installed_bytes / 2**20,
        "mmdebstrap_root_mib": alone_bytes / 2**20,
        "stripped_mib": result.stripped_bytes / 2**20,
        "image_root_mib": result.rootfs_bytes / 2**20, "image_storage_mib": stored / 2**20,
    }


ROWS = [
    ("packages in the closure", "packages", "{:.0f}"),
    ("mmdebstrap alone (s)", "mmdebstrap_s", "{:.1f}"),
    ("monoimage build (s)", "build_s", "{:.1f}"),
    ("  overhead (s)", "overhead_s", "{:+.1f}"),
    ("  of which resolve (s)", "resolve_s", "{:.1f}"),
    ("  of which rootfs = mmdebstrap (s)", "install_in_build_s", "{:.1f}"),
    ("  of which commit (s)", "commit_s", "{:.1f}"),
    ("closure download (MiB)", "download_mib", "{:.1f}"),
    ("closure installed, metadata (MiB)", "closure_mib", "{:.1f}"),
    ("mmdebstrap root, unpacked (MiB)", "mmdebstrap_root_mib", "{:.1f}"),
    ("stripped by the build (MiB)", "stripped_mib", "{:.1f}"),
    ("image root, unpacked (MiB)", "image_root_mib", "{:.1f}"),
    ("image in containers-storage (MiB)", "image_storage_mib", "{:.1f}"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="*", type=Path,
                        default=[REPO / "recipes" / "edge-lite.yaml"])
    parser.add_argument("--cold", action="store_true",
                        help="Skip the untimed warm-up run (the first timed run downloads).")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    args = parser.parse_args()
    figures = {path.stem: bench(path, args.cache_dir, not args.cold) for path in args.recipes}
    table = Table(title="monoimage build vs mmdebstrap alone (same pinned package set, "
                        f"{'shared' if args.cold else 'warm'} package cache)")
    table.add_column("")
    for name in figures:
        table.add_column(name, justify="right")
    for label, key, fmt in ROWS:
        table.add_row(label, *(fmt.format(f[key]) for f in figures.values()))
    Console().print(table)


if __name__ == "__main__":
    main()
