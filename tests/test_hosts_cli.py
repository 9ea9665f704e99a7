"""`monoimage host`: the files land all at once or not at all; bad input exits 2."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from monoimage.cli import main

REPO = Path(__file__).resolve().parent.parent
EDGE_LITE = REPO / "recipes" / "edge-lite.yaml"


def run(*args: str):
    return CliRunner().invoke(main, ["host", *args])


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


@pytest.mark.tools
def test_all_formats_land_in_a_new_directory(tmp_path):
    out = tmp_path / "out"
    result = run(str(EDGE_LITE), "--format", "all", "-o", str(out),
                 "--registry", "registry.example:5000", "--mirror", "mirror.example:5000")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "50-monoimage-edge-lite.conf", "edge-lite-podman.service", "edge-lite.bu",
        "edge-lite.container", "edge-lite.env", "edge-lite.ign"]
    assert (out / "edge-lite.env").stat().st_mode & 0o777 == 0o600
    assert "Image=registry.example:5000/edge-lite:latest" in (
        out / "edge-lite.container").read_text()
    validated = subprocess.run(["ignition-validate", str(out / "edge-lite.ign")], check=False)
    assert validated.returncode == 0
    assert leftovers(tmp_path) == []


def test_image_defaults_to_the_recipes_reference(tmp_path):
    out = tmp_path / "out"
    assert run(str(EDGE_LITE), "--format", "quadlet", "-o", str(out)).exit_code == 0
    text = (out / "edge-lite.container").read_text()
    assert "Image=localhost/edge-lite:latest" in text
    assert "Label=io.containers.autoupdate=local" in text


def test_running_again_replaces_its_own_files(tmp_path):
    out = tmp_path / "out"
    assert run(str(EDGE_LITE), "--format", "quadlet", "-o", str(out)).exit_code == 0
    result = run(str(EDGE_LITE), "--format", "quadlet", "-o", str(out),
                 "--image", "registry.example/edge-lite:2")
    assert result.exit_code == 0, result.output
    assert "Image=registry.example/edge-lite:2" in (out / "edge-lite.container").read_text()
    assert leftovers(tmp_path) == []


def test_an_earlier_runs_other_artefacts_are_replaced_too(tmp_path):
    out = tmp_path / "out"
    assert run(str(EDGE_LITE), "--format", "all", "-o", str(out), "--registry", "r.example",
               "--mirror", "m.example").exit_code == 0
    result = run(str(EDGE_LITE), "--format", "quadlet", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["edge-lite.container", "edge-lite.env"]


def test_unknown_format_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    result = run(str(EDGE_LITE), "--format", "docker-compose", "-o", str(out))
    assert result.exit_code == 2
    assert "docker-compose" in result.output
    assert not out.exists()


def test_recipe_error_exits_2_with_its_location_and_writes_nothing(tmp_path):
    recipes = tmp_path / "recipes"
    shutil.copytree(REPO / "recipes", recipes)
    broken = recipes / "edge-lite.yaml"
    broken.write_text(broken.read_text().replace("pids_limit: 1024", "pids_limit: many"))
    out = tmp_path / "out"
    result = run(str(broken), "--format", "all", "-o", str(out))
    assert result.exit_code == 2
    assert "edge-lite.yaml:" in result.output and "pids_limit" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_directory_with_other_files_is_refused_and_left_alone(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    result = run(str(EDGE_LITE), "--format", "all", "-o", str(out))
    assert result.exit_code == 2
    assert "holds other files (notes.txt)" in result.output
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert leftovers(tmp_path) == []


def test_output_that_is_a_file_is_refused(tmp_path):
    out = tmp_path / "out"
    out.write_text("x")
    result = run(str(EDGE_LITE), "--format", "quadlet", "-o", str(out))
    assert result.exit_code == 2 and "not a directory" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--mirror", "mirror.example"], "--mirror needs an image from a registry"),
    (["--registry", "https://registry.example"], "--registry"),
    (["--podman-version", "4.3"], "Quadlet needs podman 4.4"),
    (["--secret", "no_such_value"], "not a site value of edge-lite"),
])
def test_bad_options_exit_2_and_write_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    result = run(str(EDGE_LITE), "--format", "all", "-o", str(out), *args)
    assert result.exit_code == 2
    assert message in result.output
    assert not out.exists()


def test_a_failure_while_writing_leaves_nothing_behind(tmp_path, monkeypatch):
    """Disk full on the third file: no output directory, no staging directory."""
    out = tmp_path / "out"
    real_fdopen = os.fdopen
    calls = []

    def failing_fdopen(fd, *args, **kwargs):
        calls.append(fd)
        if len(calls) == 3:
            os.close(fd)
            raise OSError(28, "No space left on device")
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr("monoimage.cli.host.os.fdopen", failing_fdopen)
    result = run(str(EDGE_LITE), "--format", "all", "-o", str(out))
    assert result.exit_code != 0
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_secrets_come_from_podman_secrets_named_after_the_image(tmp_path):
    out = tmp_path / "out"
    result = run(str(EDGE_LITE), "--format", "quadlet", "-o", str(out), "--podman-version", "5.0",
                 "--secret", "redis_password")
    assert result.exit_code == 0, result.output
    assert "Secret=edge-lite-redis_password,target=redis_password" in (
        out / "edge-lite.container").read_text()
