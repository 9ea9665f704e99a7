"""Two monoimage runs on one host at once, sharing one cache folder, both succeed.

What they share: the private APT root of a set of sources (its lists, rewritten by
`apt-get update`, and its status file, rewritten by a resolution) is used only under the
resolve lock, and work that outlasts the lock (the layered comparators' downloads and child
installs, the stand-in update's download) takes a snapshot of its own; the .deb cache is
copied in and out through a private folder under the cache lock; OCI exports take the export
lock; buildah names carry each run's own build id.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from buildsupport import HELLO, SINGLE_LAYER, TINY_IMAGE, remove_images, unique_tag
from monoimage.pipeline.single_variant import single_reference
from monoimage.plan.comparator_plan import STRATEGIES
from monoimage.recipe.load import load_recipe
from monoimage.tools import buildah
from monoimage.tools.cache_dir import default_cache_dir
from monoimage.tools.packagers.apt import prepare_root, resolve_lock, snapshot_root
from recipe_files import write_recipe

pytestmark = pytest.mark.build
MONOIMAGE = (sys.executable, "-c", "from monoimage.cli import main; main()")


def _recipe(folder: Path, name: str) -> Path:
    return write_recipe(folder, {"hello": HELLO.format(package="busybox")},
                        image=TINY_IMAGE.format(repositories=SINGLE_LAYER).replace(
                            "monoimage-test-tiny", name))


def _run_together(commands: list[list[str]], cwd: Path) -> list[tuple[int, str, float]]:
    """Start every command at once; (exit code, stderr, seconds) of each."""
    started = time.monotonic()
    running = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, cwd=cwd) for c in commands]
    results = []
    for process in running:
        _out, err = process.communicate(timeout=1800)
        results.append((process.returncode, err, time.monotonic() - started))
    for code, _err, seconds in results:
        print(f"exit {code} after {seconds:.1f} s")
    return results


def test_two_builds_at_once_with_one_cache_both_succeed(tmp_path):
    tags = [unique_tag("together-a"), unique_tag("together-b")]
    commands = [[*MONOIMAGE, "build", "-q", "-t", tag, "--out-dir", str(tmp_path / f"out{i}"),
                 str(_recipe(tmp_path / f"recipe{i}", f"monoimage-test-together-{i}"))]
                for i, tag in enumerate(tags)]
    try:
        results = _run_together(commands, tmp_path)
        for code, err, _seconds in results:
            assert code == 0, err
        ids = [buildah.image_id(tag) for tag in tags]
        assert None not in ids
        # same packages, same files but for the image name: both are real, finished images
        assert all((tmp_path / f"out{i}" / "manifest.json").is_file() for i in range(2))
    finally:
        remove_images(*tags)


def test_a_build_and_a_footprint_at_once_both_succeed(tmp_path):
    # The footprint's layered comparators used to run `apt-get update` on the shared APT root
    # outside the resolve lock, under the build's resolution.
    tag = unique_tag("with-footprint")
    name = "monoimage-test-fp-together"
    footprint_tag = tag.rsplit(":", 1)[1]
    commands = [
        [*MONOIMAGE, "build", "-q", "-t", tag, "--out-dir", str(tmp_path / "build-out"),
         str(_recipe(tmp_path / "build", "monoimage-test-build-together"))],
        [*MONOIMAGE, "footprint", "--no-verify", "--tag", footprint_tag, "--out-dir",
         str(tmp_path / "footprint-out"), str(_recipe(tmp_path / "footprint", name))],
    ]
    made = [f"localhost/{name}:{footprint_tag}",
            single_reference(f"localhost/{name}:{footprint_tag}"),
            *(f"localhost/{name}-{s}-{part}:{footprint_tag}"
              for s in STRATEGIES for part in ("hello", "base"))]
    try:
        results = _run_together(commands, tmp_path)
        for code, err, _seconds in results:
            assert code == 0, err
        assert buildah.image_id(tag) is not None
        assert (tmp_path / "footprint-out" / "footprint.json").is_file()
    finally:
        remove_images(tag, *made)


def test_a_snapshot_root_keeps_its_lists_whatever_the_shared_root_does(tmp_path):
    # What a layered build's children read outlives the resolve lock: another run may
    # `apt-get update` (or wipe) the shared root's lists meanwhile.
    recipe = load_recipe(_recipe(tmp_path / "recipe", "monoimage-test-snapshot"))
    cache = default_cache_dir()
    with snapshot_root(recipe, cache, f"test-{secrets.token_hex(4)}") as snapshot:
        with resolve_lock(cache):
            shared = prepare_root(recipe, cache).path / "var/lib/apt/lists"
            moved = shared.with_name(f"lists-away-{secrets.token_hex(4)}")
            shared.rename(moved)  # as another run's update would leave them, half-written
            try:
                shown = snapshot.cache("show", "--", "busybox")
            finally:
                moved.rename(shared)
        assert "Package: busybox" in shown
        assert snapshot.path != shared.parents[3]
    assert not snapshot.path.exists()
