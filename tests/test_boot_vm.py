"""`monoimage boot --vm`: the host artefacts on a real small container-OS host.

Real parts only: the Debian trixie VM image built by `pipeline/vm_image.py` (cached), Debian's
Ignition engine, trixie podman 5.4's own Quadlet generator, QEMU (TCG here: the KVM probe
fails on this host), a docker-registry on loopback. One stand-in, said where it is: the VM has
no SELinux, so the engine's relabel runs a `setfiles` that only reads its list
(tools/ignition_engine.py).

Two fault seams of the library, each used by one test: `on_pushed` (the registry loses the
image's blobs after the push: a registry that cannot serve it) and `on_ignition` (a config the
engine rejects). Every other bad input is made real: a PATH without QEMU, a VM image without
a kernel, a boot timeout the VM cannot meet.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from footprint_support import EdgeLite
from monoimage.errors import UserError
from monoimage.hosts.artefacts import render_artefacts
from monoimage.hosts.ignition import host_bundle, render_ignition
from monoimage.hosts.quadlet import QUADLET_KEY_SINCE
from monoimage.hosts.spec import host_spec
from monoimage.pipeline.vm_boot import boot_vm
from monoimage.pipeline.vm_image import VmImage, vm_image
from monoimage.pipeline.vm_session import PODMAN_IN_VM
from monoimage.recipe.load import load_recipe
from monoimage.tools.cache_dir import default_cache_dir
from monoimage.tools.ignition_engine import IgnitionRejected, apply_ignition
from monoimage.tools.quadlet import quadlet_dryrun, quadlet_version
from test_hosts import TARGETS, unit_sections
from test_runprofile import podman_env
from timing import scaled

pytestmark = [pytest.mark.tools]

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
CLI = (sys.executable, "-c", "from monoimage.cli import main; main()")
SECRET = {"MONOIMAGE_SITE_REDIS_PASSWORD": f"monoimage-test-{uuid.uuid4().hex[:12]}"}


@pytest.fixture(scope="session")
def trixie() -> VmImage:
    """The cached VM image (built here the first time: a few minutes)."""
    return vm_image(default_cache_dir())


def processes(pattern: str) -> list[str]:
    done = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True,
                          check=False)
    return done.stdout.split()


def our_vms(folder: Path) -> list[str]:
    """Processes started from under `folder` (QEMU's sockets and disk, the registry's config
    live there) and what they left in it: the VM's run folder, the registry's."""
    return processes(str(folder)) + sorted(p.name for p in folder.iterdir())


@pytest.fixture
def scratch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A TMPDIR of the test's own (the run folder, the registry's folder go there), checked
    empty at the end, with no process of ours still using it: nothing left behind. Directly
    under /tmp: QEMU's unix sockets live in the run folder, and a socket's path must stay
    under 108 bytes (pytest-xdist's tmp_path, …/popen-gw0/test_…/, is longer)."""
    folder = Path(tempfile.mkdtemp(prefix="monoimage-test-vm-", dir="/tmp"))
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", None)
    try:
        yield folder
        assert our_vms(folder) == []
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 1800
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "boot", *args], capture_output=True, text=True, check=False,
                          env={**podman_env(), **SECRET, "COLUMNS": "200", **(env or {})},
                          timeout=scaled(timeout))


# --- Quadlet: the real generator over every .container we write --------------------------


@pytest.mark.build
@pytest.mark.parametrize("target", TARGETS, ids=lambda t: f"podman-{t[0]}.{t[1]}")
@pytest.mark.parametrize("recipe_path", RECIPES, ids=lambda p: p.stem)
def test_trixie_quadlet_generator_takes_every_container_file(trixie: VmImage, tmp_path: Path,
                                                            recipe_path: Path,
                                                            target: tuple[int, int]) -> None:
    """podman 5.4's own `quadlet -dryrun` turns each file into a unit with every key; a file
    for a newer podman is refused by it for exactly the keys 5.4 does not have."""
    assert quadlet_version(trixie.root).startswith("5.4")
    recipe = load_recipe(recipe_path)
    spec = host_spec(recipe, image="registry.example:5000/edge/img:1")
    quadlet = render_artefacts(spec, recipe, ("quadlet",), target)[0]
    (tmp_path / quadlet.filename).write_text(quadlet.content)
    done = quadlet_dryrun(trixie.root, tmp_path)
    newer = sorted({k for k, _ in unit_sections(quadlet.content)["Container"]
                    if QUADLET_KEY_SINCE.get(k, (0, 0)) > PODMAN_IN_VM})
    if newer:
        assert not done.ok or "unsupported key" in done.stderr, done.output
        for key in newer:
            assert f"unsupported key '{key}'" in done.stderr, done.stderr
        return
    assert done.ok, done.output
    assert "unsupported" not in done.stderr and "error" not in done.stderr.lower(), done.stderr
    unit = done.stdout
    assert f"---{spec.name}.service---" in unit, unit
    service = unit_sections(unit.split(f"---{spec.name}.service---", 1)[1])["Service"]
    command = dict(service)["ExecStart"]
    assert "podman run" in command and spec.image in command and "--name " + spec.name in \
        command.replace("--name=", "--name "), command
    for port in spec.ports:
        assert port.option in command, (port.option, command)


# --- Ignition: the real engine ------------------------------------------------------------


def test_ignition_engine_writes_every_file_of_the_bundle(tmp_path: Path) -> None:
    recipe = load_recipe(ROOT / "recipes" / "edge-lite.yaml")
    spec = host_spec(recipe)
    bundle = host_bundle(spec, recipe)
    config = tmp_path / "host.ign"
    config.write_text(render_ignition(bundle))
    root = tmp_path / "root"
    root.mkdir()
    applied = apply_ignition(config, root)
    for file in bundle.files:
        path = root / file.path.lstrip("/")
        assert path.read_text() == file.content
        assert path.stat().st_mode & 0o7777 == file.mode
        assert file.path.lstrip("/") in applied.files
    plain = next(u for u in bundle.units if u.content is not None)
    assert (root / "etc/systemd/system" / plain.name).read_text() == plain.content
    preset = (root / "etc/systemd/system-preset/20-ignition.preset").read_text()
    assert "enable podman-auto-update.timer" in preset
    assert f"disable {plain.name}" in preset
    assert not (root / "etc/selinux").exists()   # the stand-in's config went again


def test_ignition_engine_rejection_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.ign"
    config.write_text(json.dumps({"ignition": {"version": "3.3.0"},
                                  "storage": {"files": [{"path": "relative/path"}]}}))
    (tmp_path / "root").mkdir()
    with pytest.raises(IgnitionRejected) as error:
        apply_ignition(config, tmp_path / "root")
    assert "\n" not in str(error.value) and "bad.ign" in str(error.value), str(error.value)


# --- the VM -------------------------------------------------------------------------------


@pytest.mark.build
@pytest.mark.boot
@pytest.mark.vm
def test_boot_vm_runs_edge_lite_through_quadlet_and_every_service_answers(
        edge_lite: EdgeLite, trixie: VmImage, scratch: Path) -> None:
    done = cli(edge_lite.reference, "--vm", "--recipe", str(edge_lite.path), "--json")
    report = json.loads(done.stdout) if done.stdout.startswith("{") else {}
    assert done.returncode == 0, (report.get("problems"), report.get("log_tail"),
                                  done.stderr[-2000:])
    assert report["ok"] and report["healthy"] and report["problems"] == []
    assert report["accelerator"] in ("kvm", "tcg")
    name = edge_lite.recipe.name
    assert f"etc/containers/systemd/{name}.container" in report["ignition_files"]
    assert f"etc/monoimage/{name}.env" in report["ignition_files"]
    assert f"/run/systemd/generator/{name}.service" in report["generated_unit"]
    assert report["unit_state"]["ActiveState"] == "active"
    assert {s["name"] for s in report["services"]} == {s.name for s in edge_lite.recipe.services}
    assert all(s["state"] == "ready" for s in report["services"]), report["services"]
    answered = {(p["service"], p["port"]) for p in report["probes"] if p["outcome"] == "ok"}
    assert answered == {(s.name, str(p)) for s in edge_lite.recipe.services for p in s.ports}
    assert report["pulled_bytes"] > 10_000_000     # the image's layers came over the wire
    assert report["stop_result"] == "success" and report["exit_code"] == 0
    assert report["reference"].startswith("10.0.2.100:5000/")


@pytest.mark.build
@pytest.mark.boot
@pytest.mark.vm
def test_an_image_the_vm_cannot_pull_fails_with_podmans_reason(
        edge_lite: EdgeLite, trixie: VmImage, scratch: Path) -> None:
    def lose_blobs(registry) -> None:   # the registry keeps the manifest, not the layers
        shutil.rmtree(registry.root / "data/docker/registry/v2/blobs")

    report = boot_vm(edge_lite.reference, edge_lite.recipe, environ=SECRET, timeout=scaled(300),
                     on_pushed=lose_blobs)
    assert not report.ok and not report.healthy
    assert any("could not pull" in p for p in report.problems), report.problems


@pytest.mark.build
def test_an_ignition_config_the_engine_rejects_is_one_line_and_leaves_nothing(
        edge_lite: EdgeLite, trixie: VmImage, scratch: Path) -> None:
    def break_it(text: str) -> str:
        return text.replace('"version": "3.3.0"', '"version": "9.9.9"')

    with pytest.raises(UserError) as error:
        boot_vm(edge_lite.reference, edge_lite.recipe, environ=SECRET, on_ignition=break_it)
    assert "\n" not in str(error.value) and "ignition" in str(error.value), str(error.value)


@pytest.mark.build
def test_a_vm_that_never_boots_in_time_is_stopped(edge_lite: EdgeLite, trixie: VmImage,
                                                  scratch: Path) -> None:
    done = cli(edge_lite.reference, "--vm", "--recipe", str(edge_lite.path),
               "--boot-timeout", "1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "the VM did not boot within 1 s" in done.stdout, done.stdout


def test_no_qemu_is_one_line_exit_2(tmp_path: Path, scratch: Path) -> None:
    bin_dir = tmp_path / "bin"      # the build host's programs, QEMU apart
    bin_dir.mkdir()
    for folder in ("/usr/bin", "/usr/sbin"):
        for program in Path(folder).iterdir():
            if not program.name.startswith("qemu-system") and not (bin_dir / program.name
                                                                   ).exists():
                (bin_dir / program.name).symlink_to(program)
    done = cli("localhost/edge-lite:latest", "--vm",
               "--recipe", str(ROOT / "recipes/edge-lite.yaml"), env={"PATH": str(bin_dir)})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        ("monoimage: qemu-system-x86_64: not found on PATH; install the Debian package "
         "'qemu-system-x86' (scripts/setup does)")]


@pytest.mark.build
def test_a_vm_image_without_a_kernel_is_one_line_exit_2(edge_lite: EdgeLite, trixie: VmImage,
                                                        tmp_path: Path,
                                                        scratch: Path) -> None:
    cache = tmp_path / "cache" / "monoimage"
    (cache / "vm").mkdir(parents=True)
    copy = cache / "vm" / trixie.folder.name
    subprocess.run(["cp", "-al", str(trixie.folder), str(copy)], check=True)
    (copy / "vmlinuz").unlink()     # a link of the copy: the cache keeps its kernel
    done = cli(edge_lite.reference, "--vm", "--recipe", str(edge_lite.path),
               env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no kernel" in lines[0], lines
    assert trixie.kernel.exists()


@pytest.mark.build
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_vm_boot_removes_the_vm_and_its_registry(
        edge_lite: EdgeLite, trixie: VmImage, scratch: Path, sig: signal.Signals) -> None:
    process = subprocess.Popen([*CLI, "boot", edge_lite.reference, "--vm", "--recipe",
                                str(edge_lite.path)], env={**podman_env(), **SECRET},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + scaled(300)
    while not processes(f"qemu-system.*{scratch}"):
        assert process.poll() is None and time.monotonic() < deadline, process.stderr
        time.sleep(0.5)
    time.sleep(2)
    os.kill(process.pid, sig)
    _, err = process.communicate(timeout=scaled(120))
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == \
        "monoimage: boot interrupted: the VM and its registry were removed"
