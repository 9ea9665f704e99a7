"""`monoimage fleet` on a small fleet of real parts: 8 sites in network namespaces behind
tc-shaped 2 Mbit/s links with 50 ms added by their relays, an origin docker-registry and 2
pull-through mirrors (docker-registry in proxy mode), skopeo pulling into each site's own
containers-storage. The images are small ones built here (a few hundred kB), so a run takes a
couple of minutes; nothing is faked.

What it proves: every site is served exactly the footprint's bytes, first deploy and day 2;
each mirror stores one copy of every blob, and the origin's egress is what the model says of a
mirrored first deploy (one stored copy per mirror, which distribution 2.8 fetches twice: once
to store, once to stream); the origin's request rate while sites poll; and that a run, ended
or interrupted (Ctrl-C, SIGTERM), leaves no namespace, process or storage behind.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from footprint_support import remove_images_named
from monoimage.footprint.figures import day2, first_deploy
from monoimage.tools.netns import PREFIX
from monoimage.tools.run import run
from monoimage.tools.skopeo import load_image
from recipe_files import write_recipe
from timing import scaled

pytestmark = [pytest.mark.build, pytest.mark.tools]

MONOIMAGE = Path(sys.executable).with_name("monoimage")
SMALL = ["--strategy", "monoimage", "--sites", "8", "--mirrors", "2", "--bandwidth", "2Mbit",
         "--latency", "50ms"]


@dataclass(frozen=True)
class SmallImages:
    recipe: Path
    day1: str
    day2: str


def _payload(path: Path, size: int) -> Path:
    path.write_text(os.urandom(size // 2).hex())  # hex: gzip halves it, like real files
    return path


def _commit(base: str, files: list[Path], reference: str) -> None:
    container = run(["buildah", "from", "--", base]).stdout.strip()
    try:
        for file in files:
            run(["buildah", "copy", container, str(file), f"/{file.name}"])
        run(["buildah", "commit", "--quiet", container, reference])
    finally:
        run(["buildah", "rm", container], check=False)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmallImages]:
    """A two-layer image as `footprint --tag t` would tag it, and its day-2 rebuild (top
    layer changed), under a recipe of the same name."""
    folder = tmp_path_factory.mktemp("fleet")
    name = f"monoimage-test-fleet-{secrets.token_hex(3)}"
    recipe = write_recipe(folder, image=f"image:\n  name: {name}\ndistro:\n  name: debian\n"
                                        f"  release: bookworm\n  packager: apt\n"
                                        f"services: [alpha]\n")
    day1, updated = f"localhost/{name}:t", f"localhost/{name}:t-day2"
    try:
        _commit("scratch", [_payload(folder / "base.txt", 500_000)], f"{day1}-base")
        _commit(f"{day1}-base", [_payload(folder / "app.txt", 160_000)], day1)
        _commit(f"{day1}-base", [_payload(folder / "app.txt", 170_000)], updated)
        yield SmallImages(recipe, day1, updated)
    finally:
        remove_images_named(f"localhost/{name}")


def _ours_left() -> tuple[set[str], set[str], set[str]]:
    """Namespaces, processes and scratch folders of fleet runs (a test compares the sets
    before and after its own run: another run may be going on beside it)."""
    names = {n for n in run(["ip", "netns", "list"]).stdout.split() if n.startswith(PREFIX)}
    procs = set()
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if PREFIX in cmd or "monoimage.tools.delay_relay" in cmd \
                or "monoimage.tools.site_agent" in cmd:
            procs.add(f"{proc.name} {cmd}")
    return names, procs, {str(p) for p in Path("/var/tmp").glob(f"{PREFIX}*")}


def _nothing_new(before: tuple[set[str], set[str], set[str]]) -> None:
    after = _ours_left()
    assert [a - b for a, b in zip(after, before, strict=True)] == [set(), set(), set()]


def test_bytes_per_site_and_origin_egress_match_the_model(small: SmallImages,
                                                           tmp_path: Path) -> None:
    before = _ours_left()
    # 4 waves of 2: the first wave is one site per mirror, so no request reaches a mirror
    # while it is still fetching a blob (distribution would fetch it again for that request).
    done = subprocess.run([str(MONOIMAGE), "fleet", str(small.recipe), "--tag", "t", *SMALL,
                           "--waves", "4", "--poll-every", "2s", "--poll-for", "6s", "--json",
                           "--out-dir", str(tmp_path)], capture_output=True, text=True, check=False,
                          timeout=scaled(900))
    assert done.returncode in (0, 1), done.stderr  # 1: a time outside 20 % (a loaded host)
    doc = json.loads(done.stdout)
    cache = tmp_path / "oci"
    old, new = [load_image(small.day1, cache)], [load_image(small.day2, cache)]
    first, update = first_deploy(old), day2(old, new)
    manifest = next(b.size for b in old[0].blobs() if b.digest == old[0].manifest_digest)
    rollouts = {(r["day"], r["mirrored"]): r for r in doc["rollouts"]}
    assert set(rollouts) == {("first deploy", False), ("day 2", False),
                             ("first deploy", True), ("day 2", True)}
    for (day, _), r in rollouts.items():
        expected = first.bytes if day == "first deploy" else update.bytes
        assert [s["bytes"] for s in r["sites"]] == [expected] * 8, day
        bytes_checks = [c for c in r["checks"] if "time" not in c["figure"]]
        assert bytes_checks and all(c["agrees"] for c in bytes_checks), bytes_checks
    assert rollouts[("first deploy", False)]["origin_bytes"] == 8 * first.bytes
    # Mirrored: each mirror fetched the manifest once and every other blob twice.
    mirrored = rollouts[("first deploy", True)]
    assert mirrored["origin_bytes"] == 2 * (manifest + 2 * (first.bytes - manifest))
    assert mirrored["mirror_bytes"] == [4 * first.bytes, 4 * first.bytes]
    assert {p["mirrored"]: p["check"]["agrees"] for p in doc["polls"]} == {False: True,
                                                                          True: True}
    assert (tmp_path / "fleet.svg").read_text().count("<polyline") == 4
    _nothing_new(before)


def test_missing_images_name_the_footprint_command(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, image="image:\n  name: monoimage-test-fleet-none\n"
                                          "distro:\n  name: debian\n  release: bookworm\n"
                                          "  packager: apt\nservices: [alpha]\n")
    done = subprocess.run([str(MONOIMAGE), "fleet", str(recipe), "--tag", "nothing"],
                          capture_output=True, text=True, check=False, timeout=scaled(120))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "monoimage: localhost/monoimage-test-fleet-none:nothing: no such image; `monoimage "
        "footprint monoimage-test-fleet-none --tag nothing` builds it (add "
        "--simulate-update NAME for day 2)")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_leaves_nothing_behind(small: SmallImages, tmp_path: Path,
                                                  sig: signal.Signals) -> None:
    before = _ours_left()
    process = subprocess.Popen([str(MONOIMAGE), "fleet", str(small.recipe), "--tag", "t",
                                *SMALL, "--out-dir", str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + scaled(300)
    try:  # interrupt it once the sites pull: namespaces, relays, registries all up
        while not any("site_agent" in cmd for cmd in _ours_left()[1] - before[1]):
            assert process.poll() is None and time.monotonic() < deadline, \
                process.communicate()[1]
            time.sleep(0.2)
        process.send_signal(sig)
        _, err = process.communicate(timeout=scaled(120))
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "monoimage: fleet interrupted" in err
    _nothing_new(before)
