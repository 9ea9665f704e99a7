"""`monoimage footprint`: argument parsing, and the command on the dnf fixture (builds, day 2,
a real registry pull, JSON, chart; estimate mode builds nothing)."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from footprint_support import make_dnf_repo, remove_images_named, write_dnf_recipe
from monoimage.cli import main
from monoimage.cli.footprint import (
    duration,
    footprint_command,
    parse_bandwidth,
    parse_latency,
    parse_repository,
)
from monoimage.errors import UserError
from monoimage.recipe.load import load_recipe
from monoimage.recipe.model import AptRepository, DnfRepository
from monoimage.tools import buildah
from timing import scaled


@pytest.mark.parametrize(("text", "bps"), [
    ("10Mbit", 10e6), ("10Mbit/s", 10e6), ("10mbps", 10e6), ("2.5Mbit", 2.5e6),
    ("100kbit", 100e3), ("1Gbit/s", 1e9), ("1MB/s", 8e6), ("64000", 64e3)])
def test_bandwidth_in_bits_or_bytes_per_second(text: str, bps: float) -> None:
    assert parse_bandwidth(text) == pytest.approx(bps)


@pytest.mark.parametrize("text", ["fast", "0Mbit", "-1Mbit", "10 Mbit per hour"])
def test_bandwidth_that_is_not_a_rate_is_refused(text: str) -> None:
    with pytest.raises(UserError, match="--bandwidth"):
        parse_bandwidth(text)


def test_latency_in_milliseconds_seconds_or_microseconds() -> None:
    assert parse_latency("100ms") == pytest.approx(0.1)
    assert parse_latency("0.25s") == pytest.approx(0.25)
    assert parse_latency("250us") == pytest.approx(0.00025)
    with pytest.raises(UserError, match="--latency"):
        parse_latency("100")  # a bare number: milliseconds or seconds? say it


def test_durations_read_like_a_person_would_say_them() -> None:
    assert duration(42.4) == "42 s"
    assert duration(800) == "13 min 20 s"
    assert duration(7500) == "2 h 05 min"


def test_extra_repositories_for_each_packager(tmp_path: Path) -> None:
    dnf = load_recipe(write_dnf_recipe(tmp_path, tmp_path / "repo"))
    assert parse_repository(dnf, "updates=file:///srv/u", 1) == \
        DnfRepository("updates", "file:///srv/u")
    assert parse_repository(dnf, "file:///srv/u", 2) == DnfRepository("extra2", "file:///srv/u")
    with pytest.raises(UserError, match="ID=BASEURL"):
        parse_repository(dnf, "not a repository", 1)
    apt = load_recipe(Path(__file__).resolve().parents[1] / "recipes" / "edge-lite.yaml")
    assert parse_repository(apt, "[signed-by=/k.gpg] copy:///srv/r updates main", 1) == \
        AptRepository("copy:///srv/r", ("updates",), ("main",), "/k.gpg")


# ---------------------------------------------------------------- the command, dnf fixture


@pytest.fixture()
def dnf_recipe(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    name = f"monoimage-test-cli-{secrets.token_hex(3)}"
    repo = make_dnf_repo(tmp_path / "repo", with_update=True)
    try:
        yield write_dnf_recipe(tmp_path / "recipe", repo, name), name
    finally:
        remove_images_named(f"localhost/{name}")


def _invoke(*args: str) -> tuple[int, str, str, BaseException | None]:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(footprint_command, list(args))
    return result.exit_code, result.stdout, result.stderr, result.exception


@pytest.mark.build
@pytest.mark.tools
def test_footprint_measures_day2_verifies_on_a_registry_and_writes_json_and_chart(
        dnf_recipe: tuple[Path, str], tmp_path: Path) -> None:
    recipe, name = dnf_recipe
    out = tmp_path / "out"
    code, stdout, stderr, error = _invoke(
        str(recipe), "--update", "libshared=1.0-2", "--no-init-python", "--json",
        "--out-dir", str(out), "--tag", "t", "--cache-dir", str(tmp_path / "cache"),
        "--sites", "500", "--bandwidth", "2Mbit", "--latency", "50ms")
    assert code == 0, (stderr, error)
    doc = json.loads(stdout)
    assert doc["mode"] == "measured" and doc["recipe"] == name
    assert [s["name"] for s in doc["strategies"]] == ["monoimage", "monoimage-single",
                                                      "kolla-style", "shared-base"]
    assert doc["verdict"].startswith("monoimage pulls ")
    assert doc["update"]["changes"] == [{"name": "libshared", "before": "1.0-1",
                                         "after": "1.0-2", "services": ["alpha", "beta"],
                                         "base": False, "config_only": False}]
    kolla = doc["strategies"][2]
    assert kolla["images"][0] == f"localhost/{name}-kolla-style-base:t"
    assert kolla["day2_images"][0] == f"localhost/{name}-kolla-style-base:t-day2"
    assert [c["changed"] for c in kolla["day2_changes"]] == [False, True, True, False]
    assert kolla["fleet"]["first_deploy"]["direct"]["wan_bytes"] == \
        500 * kolla["first_deploy"]["bytes"]
    assert {(v["strategy"], v["figure"]) for v in doc["verification"]} == \
        {(s, f) for s in ("monoimage", "monoimage-single", "kolla-style", "shared-base")
         for f in ("first-deploy", "day-2")}
    assert all(v["agrees"] for v in doc["verification"])
    assert json.loads((out / "footprint.json").read_text()) == doc
    chart = (out / "footprint.svg").read_text()
    assert chart.startswith("<svg") and "Day-2 update" in chart and "kolla-style" in chart
    for image in (*kolla["images"], *kolla["day2_images"]):
        assert buildah.image_id(image) is not None


@pytest.mark.build
@pytest.mark.tools
def test_footprint_prints_tables_and_never_replaces_what_build_tagged(
        dnf_recipe: tuple[Path, str], tmp_path: Path) -> None:
    """`monoimage build` tags the recipe's own reference (libshared 1.0-2, the newest); the
    footprint after it, with the default --tag, builds day 1 at 1.0-1 under other tags."""
    recipe, name = dnf_recipe
    built = CliRunner().invoke(main, ["build", str(recipe), "--no-init-python", "-q",
                                      "--cache-dir", str(tmp_path / "cache"),
                                      "--out-dir", str(tmp_path / "build")])
    assert built.exit_code == 0, built.output
    tagged = buildah.image_id(f"localhost/{name}:t")
    assert tagged is not None
    code, stdout, stderr, error = _invoke(
        str(recipe), "--update", "libshared=1.0-2", "--no-init-python", "--no-verify",
        "--out-dir", str(tmp_path / "out"), "--chart", str(tmp_path / "chart.svg"),
        "--sites-per-mirror", "40", "--cache-dir", str(tmp_path / "cache"))
    assert code == 0, (stderr, error)
    assert buildah.image_id(f"localhost/{name}:t") == tagged
    assert buildah.image_id(f"localhost/{name}:footprint") not in (None, tagged)
    assert buildah.image_id(f"localhost/{name}:footprint-day2") is not None
    for text in ("first deploy MB", "duplicated MB", "day-2 MB", "day 2, mirror",
                 "a regional mirror per 40 sites", "monoimage pulls",
                 "kolla-style: 2 of 4 images changed", "shared-base: 4 of 4 images changed",
                 "day 2 (libshared=1.0-2): libshared 1.0-1 → 1.0-2"):
        assert text in stdout, text
    assert (tmp_path / "chart.svg").is_file()


@pytest.mark.build
@pytest.mark.tools
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_footprint_exits_130_and_leaves_no_image(
        dnf_recipe: tuple[Path, str], tmp_path: Path, signum: int) -> None:
    recipe, name = dnf_recipe
    proc = subprocess.Popen(
        [sys.executable, "-c", "from monoimage.cli import main; main()", "footprint",
         str(recipe), "--no-init-python", "--no-verify", "--cache-dir", str(tmp_path / "cache"),
         "--out-dir", str(tmp_path / "out")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:   # the event: resolving is done, the golden build has begun
            seen.append(line)
            if line.startswith("✓ resolve"):
                break
        assert seen and seen[-1].startswith("✓ resolve"), seen
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=scaled(120))
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == ("monoimage: footprint interrupted: working "
                                            "containers and temporary images were removed")
    assert not [n for i in buildah.images() for n in i.get("names") or () if name in n]
    assert not (tmp_path / "out" / "footprint.json").exists()


@pytest.mark.tools
def test_estimate_mode_predicts_from_metadata_and_builds_nothing(
        dnf_recipe: tuple[Path, str], tmp_path: Path) -> None:
    recipe, name = dnf_recipe
    code, stdout, stderr, error = _invoke(
        str(recipe), "--estimate", "--update", "libshared=1.0-2", "--no-init-python",
        "--json", "--out-dir", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"))
    assert code == 0, (stderr, error)
    doc = json.loads(stdout)
    assert doc["mode"] == "estimated" and "verification" not in doc
    assert doc["calibration"]["layer_per_download"] > 0
    figures = {s["name"]: s for s in doc["strategies"]}
    assert figures["shared-base"]["first_deploy"]["bytes"] <= \
        figures["kolla-style"]["first_deploy"]["bytes"]
    assert all(s["day2"]["bytes"] > 0 for s in doc["strategies"])
    assert not [n for i in buildah.images() for n in i.get("names") or () if name in n]


# ---------------------------------------------------------------- errors, through `monoimage`


def _main(*args: str) -> tuple[int, str, str]:
    """`monoimage footprint ARGS…` through the real entry point (UserError → exit 2)."""
    result = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["footprint", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--bandwidth", "fast"],
     "--bandwidth 'fast': expected a rate such as 10Mbit, 2.5Mbit/s or 1MB/s"),
    (["--latency", "100"], "--latency '100': expected a time such as 100ms or 0.1s"),
    (["--repo-extra", "u=file:///srv/u"],
     ("--repo-extra: the repositories a day-2 update comes from; give --update NAME=VERSION "
     "too")),
    (["--update", "libshared=1.0-2", "--simulate-update", "libshared"],
     "--update and --simulate-update: give one of them"),
    (["--simulate-update", "libshared"],
     ("--simulate-update works on apt recipes; for dnf, give a repository with the new release "
     "(--repo-extra) and --update NAME=VERSION")),
    (["--update", "libshared=1.0-2", "--repo-extra", "not a repository"],
     "--repo-extra 'not a repository': expected ID=BASEURL, e.g. updates=file:///srv/updates"),
])
def test_a_mistake_in_the_arguments_is_one_line_and_exit_2_before_any_work(
        tmp_path: Path, args: list[str], message: str) -> None:
    recipe = write_dnf_recipe(tmp_path, tmp_path / "no-repository-needed")
    out = tmp_path / "out"
    code, stdout, stderr = _main(str(recipe), "--estimate", "--no-init-python",
                                 "--cache-dir", str(tmp_path / "cache"), "--out-dir", str(out),
                                 *args)
    assert (code, stdout, stderr) == (2, "", f"monoimage: {message}\n")
    assert not out.exists() and not (tmp_path / "cache").exists()


@pytest.mark.tools
def test_an_update_outside_the_closure_is_one_line_and_exit_2(
        dnf_recipe: tuple[Path, str], tmp_path: Path) -> None:
    recipe, _ = dnf_recipe
    code, stdout, stderr = _main(str(recipe), "--estimate", "--update", "nosuch=1.0-1",
                                 "--no-init-python", "--cache-dir", str(tmp_path / "cache"),
                                 "--out-dir", str(tmp_path / "out"))
    assert (code, stdout) == (2, "")
    *progress, last = stderr.splitlines()
    assert last == ("monoimage: --update nosuch=1.0-1: nosuch is not in the image's package "
                    "closure")
    assert [line.split()[:2] for line in progress] == [["✓", "resolve"]]


@pytest.mark.tools
def test_simulate_update_of_a_package_outside_an_apt_closure_is_one_line_and_exit_2(
        tmp_path: Path) -> None:
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "edge-lite.yaml"
    code, stdout, stderr = _main(str(recipe), "--estimate", "--simulate-update", "nosuch",
                                 "--out-dir", str(tmp_path / "out"))
    assert (code, stdout) == (2, "")
    assert stderr.splitlines()[-1] == \
        "monoimage: --simulate-update nosuch: not in the image's package closure"
    assert "Traceback" not in stderr and not (tmp_path / "out").exists()


@pytest.mark.tools
def test_sites_per_mirror_sets_how_many_mirrors_the_fleet_fills(
        dnf_recipe: tuple[Path, str], tmp_path: Path) -> None:
    recipe, _ = dnf_recipe
    code, stdout, stderr = _main(str(recipe), "--estimate", "--json", "--no-init-python",
                                 "--sites", "1000", "--sites-per-mirror", "10",
                                 "--cache-dir", str(tmp_path / "cache"),
                                 "--out-dir", str(tmp_path / "out"))
    assert code == 0, stderr
    doc = json.loads(stdout)
    assert doc["fleet"]["sites_per_mirror"] == 10
    for strategy in doc["strategies"]:
        first = strategy["fleet"]["first_deploy"]
        # 1,000 sites behind 100 mirrors: the WAN carries each blob once per mirror.
        assert first["mirrored"]["wan_bytes"] == 100 * strategy["first_deploy"]["bytes"]
        assert first["direct"]["wan_bytes"] == 1000 * strategy["first_deploy"]["bytes"]


@pytest.mark.tools
def test_simulate_update_re_versions_a_pinned_apt_package_for_day_2(tmp_path: Path) -> None:
    """edge-lite estimated with a stand-in update of a library three services share: day 2
    resolves the re-versioned .deb from the local signed repository the command made."""
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "edge-lite.yaml"
    code, stdout, stderr = _main(str(recipe), "--estimate", "--simulate-update", "libtirpc3",
                                 "--json", "--out-dir", str(tmp_path / "out"))
    assert code == 0, stderr
    doc = json.loads(stdout)
    (change,) = doc["update"]["changes"]
    assert change["name"] == "libtirpc3"
    assert change["after"] == change["before"] + "+monoimage1"
    figures = {s["name"]: s for s in doc["strategies"]}
    assert 0 < figures["monoimage"]["day2"]["bytes"] <= figures["kolla-style"]["day2"]["bytes"]


@pytest.mark.tools
def test_an_update_to_the_version_day_1_has_is_refused_in_estimate_mode(
        tmp_path: Path) -> None:
    repo = make_dnf_repo(tmp_path / "repo")  # libshared 1.0-1 only
    recipe = write_dnf_recipe(tmp_path / "recipe", repo)
    code, stdout, stderr = _main(str(recipe), "--estimate", "--update", "libshared=1.0-1",
                                 "--no-init-python", "--cache-dir", str(tmp_path / "cache"),
                                 "--out-dir", str(tmp_path / "out"))
    assert (code, stdout) == (2, "")
    # Day 1 is the recipe held below the update, so an update to day 1's own version leaves
    # day 1 nothing to resolve: refused before any work, as the full run refuses it.
    assert stderr.splitlines()[-1] == (
        "monoimage: package 'libshared': no version in the repositories of fedora 39 (fixture) "
        "satisfies the constraints (alpha wants libshared < 1.0-1; beta wants libshared < "
        "1.0-1); available: 1.0-1")
