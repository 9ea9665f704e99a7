"""End to end: build edge-lite, boot it as a small host would, and run the plain systemd unit's
own podman command line; plus a broken image and a Ctrl-C, which must leave nothing behind.

Builds real images (about 30 s each with a warm package cache) under `monoimage-test-` names
and removes them afterwards.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from monoimage.hosts.ignition import render_site_env
from monoimage.hosts.spec import host_spec
from monoimage.hosts.systemd import render_systemd_unit
from monoimage.pipeline.boot import boot
from monoimage.pipeline.build import BuildOptions, build
from monoimage.recipe.load import load_recipe
from monoimage.recipe.model import Recipe
from test_hosts import unit_sections
from test_runprofile import podman_env

pytestmark = [pytest.mark.build, pytest.mark.boot]

REPO = Path(__file__).resolve().parent.parent
# A recipe under development can stand in for the committed one.
EDGE_LITE = Path(os.environ.get("MONOIMAGE_TEST_EDGE_LITE", REPO / "recipes" / "edge-lite.yaml"))


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], check=check, env=podman_env(),
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's own package cache: the shared one is not safe for concurrent builds."""
    return tmp_path_factory.mktemp("package-cache")


def build_image(recipe: Recipe, tmp: Path, cache: Path) -> str:
    ref = f"localhost/monoimage-test-{recipe.name.removeprefix('monoimage-test-')}:" \
          f"{uuid.uuid4().hex[:8]}"
    build(recipe, BuildOptions(tag=ref, out_dir=tmp / "out", cache_dir=cache))
    return ref


@pytest.fixture(scope="module")
def edge_lite(tmp_path_factory: pytest.TempPathFactory, cache: Path
              ) -> Iterator[tuple[str, Recipe]]:
    recipe = load_recipe(EDGE_LITE)
    ref = build_image(recipe, tmp_path_factory.mktemp("edge-lite"), cache)
    yield ref, recipe
    podman("rmi", "--force", ref, check=False)


def containers_of(image: str) -> list[str]:
    return podman("ps", "--all", "--filter", f"ancestor={image}", "--format",
                  "{{.Names}}").stdout.split()


def test_edge_lite_boots_healthy_and_answers_from_the_host(edge_lite):
    """Read from the image alone: every service ready and answering through its published
    port; `podman stop` ends it within its stop timeout, exit 0, no zombie, nothing left."""
    ref, recipe = edge_lite
    report = boot(ref, name=f"monoimage-test-boot-{uuid.uuid4().hex[:6]}", timeout=90)
    assert report.problems == (), report.log_tail
    assert report.healthy and report.ok
    assert {s.name for s in report.services} == {s.name for s in recipe.services}
    assert all(s.state == "ready" for s in report.services)
    answered = {(p.service, p.port) for p in report.probes if p.outcome == "ok"}
    assert answered == {(s.name, str(p)) for s in recipe.services for p in s.ports}
    assert report.exit_code == 0 and report.zombies == ()
    assert report.stop_seconds is not None and report.stop_seconds < report.stop_timeout
    assert report.init_rss_kib and report.time_to_ready_ms
    assert containers_of(ref) == []


def test_the_plain_units_podman_command_boots_edge_lite_healthy(edge_lite, tmp_path):
    """The unit's ExecStart as systemd would run it (specifiers filled in: %t a temporary
    runtime dir, %n the unit), with two changes for a shared test host: host ports become
    free loopback ports, and the site values file lives in the temporary dir."""
    ref, recipe = edge_lite
    recipe = replace(recipe, name=f"monoimage-test-unit-{uuid.uuid4().hex[:6]}")
    spec = host_spec(recipe, image=ref)
    unit = render_systemd_unit(spec, recipe)
    env_file = tmp_path / f"{spec.name}.env"
    env_file.write_text(render_site_env(spec, recipe))
    service = dict(unit_sections(unit)["Service"])

    def command(key: str) -> list[str]:
        argv = [a.replace("%%", "%").replace("$$", "$") for a in shlex.split(service[key])]
        argv = [a.replace("%t", str(tmp_path)).replace("%n", f"{spec.name}-podman.service")
                for a in argv]
        argv = [re.sub(r"^(\d+):(\d+/(tcp|udp))$", r"127.0.0.1::\2", a) for a in argv]
        return [str(env_file) if a == f"/etc/monoimage/{spec.name}.env" else a for a in argv]

    start = command("ExecStart")
    assert "--sdnotify=conmon" in start and f"--cidfile={tmp_path}/" in " ".join(start)
    try:
        subprocess.run(start, check=True, env=podman_env(), capture_output=True, text=True)
        deadline = time.monotonic() + 90
        while podman("healthcheck", "run", spec.name, check=False).returncode != 0:
            assert time.monotonic() < deadline, podman("logs", spec.name).stderr[-3000:]
            time.sleep(0.2)
        inspect = json.loads(podman("container", "inspect", spec.name).stdout)[0]
        assert inspect["HostConfig"]["ReadonlyRootfs"] is True
        waiter = subprocess.Popen(["podman", "wait", spec.name], env=podman_env(),
                                  stdout=subprocess.PIPE, text=True)
        began = time.monotonic()
        subprocess.run(command("ExecStop"), check=True, env=podman_env(), capture_output=True)
        stopped = time.monotonic() - began
        exit_code = waiter.communicate(timeout=60)[0].strip()
        subprocess.run(command("ExecStopPost"), check=True, env=podman_env(),
                       capture_output=True)
        assert exit_code in ("0", "")   # "" when --rm removed it before wait could report
        assert stopped < spec.stop_timeout
        assert podman("container", "exists", spec.name, check=False).returncode == 1
    finally:
        podman("rm", "--force", "--time", "0", spec.name, check=False)
        podman("volume", "rm", "--force", *(v.name for v in spec.volumes if v.name),
               check=False)


BROKEN_IMAGE = """\
image: {{name: {name}}}
distro: {{name: debian, release: bookworm, packager: apt}}
services: [web, never]
runtime: {{memory: 128m, pids_limit: 64, read_only: true}}
"""
WEB = """\
name: web
packages: [busybox]
ports: [8081/tcp]
run: {argv: [busybox, httpd, -f, -p, "8081", -h, /usr/share]}
ready: {tcp: 8081, timeout: 10}
capabilities: []
"""
NEVER = """\
name: never
packages: [busybox]
ports: [9/tcp]
run: {argv: [busybox, sleep, "1000"]}
ready: {tcp: 9, timeout: %s}
restart: {policy: never}
"""


@pytest.fixture(scope="module")
def slow_image(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> Iterator[list[str]]:
    """A service that is never ready: within 4 s it fails the container; 300 s keeps it
    starting (for Ctrl-C)."""
    root = tmp_path_factory.mktemp("broken")
    (root / "services").mkdir()
    (root / "services" / "web.yaml").write_text(WEB)
    refs = []
    for timeout in (4, 300):
        (root / "services" / "never.yaml").write_text(NEVER % timeout)
        name = f"monoimage-test-never-{timeout}"
        (root / f"{name}.yaml").write_text(textwrap.dedent(BROKEN_IMAGE.format(name=name)))
        refs.append(build_image(load_recipe(root / f"{name}.yaml"), root, cache))
    yield refs
    for ref in refs:
        podman("rmi", "--force", ref, check=False)


def test_a_service_that_never_gets_ready_fails_the_boot_and_leaves_nothing(slow_image):
    failing, _ = slow_image
    report = boot(failing, timeout=60, name=f"monoimage-test-boot-{uuid.uuid4().hex[:6]}")
    assert not report.ok
    assert any("exited (code 4) before it was healthy" in p for p in report.problems)
    assert "never" in report.log_tail
    assert containers_of(failing) == []


# The `monoimage` command of this interpreter's environment.
CLI = "from monoimage.cli import main; main()"


def test_ctrl_c_removes_the_container(slow_image):
    _, starting = slow_image
    cli = subprocess.Popen([sys.executable, "-c", CLI, "boot", starting], env=podman_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not containers_of(starting):
        assert time.monotonic() < deadline and cli.poll() is None
        time.sleep(0.2)
    time.sleep(1)
    cli.send_signal(signal.SIGINT)
    _, err = cli.communicate(timeout=60)
    assert cli.returncode == 130, err
    assert "interrupted" in err
    assert containers_of(starting) == []


def test_cli_boot_exits_1_for_an_unhealthy_image(slow_image):
    failing, _ = slow_image
    done = subprocess.run([sys.executable, "-c", CLI, "boot", failing, "--json"], check=False,
                          env=podman_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False and report["healthy"] is False
    assert containers_of(failing) == []
