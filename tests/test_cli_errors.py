"""The command line never shows a traceback: every mistake is one `monoimage: …` line (a usage
error adds the help hint on a second), exit 2, before any work starts; a closed or broken stdout
ends a run quietly. Each case runs the real entry point in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildsupport import write_tiny_recipe

MONOIMAGE = (sys.executable, "-c", "from monoimage.cli import main; main()")
REPO = Path(__file__).resolve().parents[1]
EDGE_LITE = REPO / "recipes" / "edge-lite.yaml"


def monoimage(*args: str, cwd: Path | None = None, **kw: object
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MONOIMAGE, *args], capture_output=True, text=True, check=False,
                          cwd=cwd, **kw)  # type: ignore[call-overload, no-any-return]


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a refused run (exit 2, nothing on stdout)."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert done.stdout == ""
    return lines[0]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_recipe(tmp_path_factory.mktemp("cli-errors"))


# ------------------------------------------------------------------ usage errors


@pytest.mark.parametrize(("args", "first", "command"), [
    (("boot",), "monoimage: Missing argument 'IMAGE'.", "monoimage boot"),
    (("--bogus",), "monoimage: No such option '--bogus'.", "monoimage"),
    (("build", "r.yaml", "--format", "x"),
     "monoimage: Invalid value for '--format': 'x' is not one of 'oci', 'docker'.",
     "monoimage build"),
    (("plan", "r.yaml", "extra"), "monoimage: Got unexpected extra argument (extra)",
     "monoimage plan"),
    (("nosuch",), "monoimage: No such command 'nosuch'.", "monoimage"),
])
def test_a_usage_error_is_one_line_and_the_help_hint(args, first, command):
    done = monoimage(*args)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [first, f"  see '{command} --help'"]


# ------------------------------------------------------------------ image arguments


def test_words_after_double_dash_never_reach_podman_as_options():
    line = one_line(monoimage("boot", "--", "--privileged"))
    assert line == ("monoimage: IMAGE: '--privileged' is not an image reference "
                    "([HOST[:PORT]/]NAME[:TAG][@DIGEST], lower-case name)")


@pytest.mark.parametrize(("args", "expected"), [
    (("build", "-t", "Bad Name", "{recipe}"),
     "monoimage: -t/--tag: 'Bad Name' is not an image reference"),
    (("host", "{recipe}", "--format", "quadlet", "-o", "{out}", "--image", "x:-bad"),
     "monoimage: --image: 'x:-bad' is not an image reference"),
    (("host", "{recipe}", "--format", "quadlet", "-o", "{out}", "--registry", "reg;x:5000"),
     "monoimage: --registry: 'reg;x:5000/monoimage-test-tiny:t' is not an image reference"),
    (("boot", "localhost/Upper:1"),
     "monoimage: IMAGE: 'localhost/Upper:1' is not an image reference"),
    (("footprint", "--tag", "-x", "{recipe}"), "monoimage: --tag: '-x' is not an image tag"),
])
def test_image_arguments_are_checked_before_any_work(recipe, tmp_path, args, expected):
    out = tmp_path / "out"
    line = one_line(monoimage(*(a.format(recipe=recipe, out=out) for a in args),
                              cwd=tmp_path))
    assert line.startswith(expected)
    assert not out.exists() and not (tmp_path / "out").exists()


# ------------------------------------------------------------------ folders


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("not a folder\n")
    return path


@pytest.mark.parametrize("command", [("build",), ("plan", "--resolve"), ("footprint",)])
def test_a_cache_dir_that_is_a_file_is_one_line(recipe, a_file, tmp_path, command):
    line = one_line(monoimage(*command, "--cache-dir", str(a_file), str(recipe), cwd=tmp_path))
    assert line == f"monoimage: --cache-dir {a_file}: exists and is not a directory"


@pytest.mark.parametrize(("command", "option"), [
    (("build", "--out-dir"), "--out-dir"), (("footprint", "--out-dir"), "--out-dir"),
    (("host", "--format", "quadlet", "-o"), "-o/--output"),
])
def test_an_output_folder_that_cannot_be_made_is_one_line(recipe, a_file, tmp_path, command,
                                                          option):
    target = a_file / "out"
    line = one_line(monoimage(*command, str(target), str(recipe), cwd=tmp_path))
    assert line == f"monoimage: {option} {target}: {a_file} is not a directory"


def test_host_makes_the_parents_of_its_output_folder(recipe, tmp_path):
    done = monoimage("host", str(recipe), "--format", "quadlet", "-o", "out/host",
                     cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out/host").iterdir()) == [
        "monoimage-test-tiny.container", "monoimage-test-tiny.env"]


# ------------------------------------------------------------------ host and podman versions


def test_an_older_podman_is_fine_for_a_plain_systemd_unit(recipe, tmp_path):
    done = monoimage("host", str(recipe), "--format", "systemd", "--podman-version", "4.3",
                     "-o", str(tmp_path / "units"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "units" / "monoimage-test-tiny-podman.service").is_file()


@pytest.mark.parametrize("fmt", ["quadlet", "ignition", "butane", "all"])
def test_quadlet_still_needs_podman_4_4(recipe, tmp_path, fmt):
    line = one_line(monoimage("host", str(recipe), "--format", fmt, "--podman-version", "4.3",
                              "-o", str(tmp_path / "units")))
    assert line == ("monoimage: --podman-version 4.3: Quadlet needs podman 4.4 or newer; use "
                    "--format systemd for older podman")
    assert not (tmp_path / "units").exists()


# ------------------------------------------------------------------ a full disk


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs of this test's own (needs root, as every build test here)."""
    point = tmp_path / "disk"
    point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,nr_inodes=64", "tmpfs",
                    str(point)], check=True)
    try:
        yield point
    finally:
        subprocess.run(["umount", str(point)], check=True)


def _fill(disk: Path) -> None:
    with (disk / "filler").open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as err:
            assert err.strerror == "No space left on device"


def test_host_on_a_full_disk_is_one_line_and_the_previous_folder_is_intact(tiny_disk):
    out = tiny_disk / "host"
    first = monoimage("host", str(EDGE_LITE), "--format", "quadlet", "-o", str(out))
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    _fill(tiny_disk)
    done = monoimage("host", str(EDGE_LITE), "--format", "all", "-o", str(out))
    line = one_line(done)
    assert line == (f"monoimage: {out}: cannot write the artefacts (No space left on device); "
                    f"the previous files are as they were")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler", "host"]


def test_host_rolls_back_when_the_output_folder_cannot_be_replaced(tiny_disk):
    # A mount point cannot be renamed (EBUSY): the swap into place fails after every file
    # was written beside it, and the folder keeps the previous run's files.
    elsewhere = tiny_disk.parent / "first"
    first = monoimage("host", str(EDGE_LITE), "--format", "quadlet", "-o", str(elsewhere))
    assert first.returncode == 0, first.stderr
    for path in elsewhere.iterdir():  # an earlier run's artefacts, in the mounted folder
        (tiny_disk / path.name).write_bytes(path.read_bytes())
    before = {p.name: p.read_bytes() for p in tiny_disk.iterdir()}
    done = monoimage("host", str(EDGE_LITE), "--format", "systemd", "-o", str(tiny_disk))
    line = one_line(done)
    assert line == (f"monoimage: {tiny_disk}: cannot write the artefacts (Device or resource "
                    f"busy); the previous files are as they were")
    assert {p.name: p.read_bytes() for p in tiny_disk.iterdir()} == before
    assert [p.name for p in tiny_disk.parent.iterdir() if p.name.startswith(".")] == []


# ------------------------------------------------------------------ stdout


@pytest.mark.parametrize("args", [("plan", "{recipe}"), ("plan", "--json", "{recipe}"),
                                  ("--version",), ("--help",)])
def test_a_broken_stdout_ends_the_run_quietly(recipe, args):
    reader, writer = os.pipe()
    os.close(reader)  # like `monoimage plan … | head -c1` once head has gone
    try:
        done = subprocess.run([*MONOIMAGE, *(a.format(recipe=recipe) for a in args)],
                              stdout=writer, stderr=subprocess.PIPE, text=True, check=False)
    finally:
        os.close(writer)
    assert done.returncode == 1
    assert done.stderr == ""


@pytest.mark.parametrize("args", [("plan", "{recipe}"), ("plan", "--json", "{recipe}")])
def test_a_closed_stdout_is_no_traceback(recipe, args):
    done = subprocess.run([*MONOIMAGE, *(a.format(recipe=recipe) for a in args)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          check=False, preexec_fn=lambda: os.close(1))
    assert done.stderr == ""
    assert done.returncode == 0


def test_footprint_help_says_extra_repositories_serve_both_days():
    done = monoimage("footprint", "--help", env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0
    assert "configured on both days" in " ".join(done.stdout.split())
    assert "A repository day 2 adds" not in done.stdout

