"""End to end: boot the session's edge-lite build as a small host would (the library, the
command with its options, and the plain systemd unit's own podman command line); plus a broken
image, a Ctrl-C and a SIGTERM, which must leave nothing behind.

edge-lite is built once per session (tests/conftest.py); the two broken images here are tiny
(busybox) builds from the shared package cache, removed afterwards.
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from footprint_support import EdgeLite
from monoimage.hosts.ignition import render_site_env
from monoimage.hosts.spec import host_spec
from monoimage.hosts.systemd import render_systemd_unit
from monoimage.pipeline.boot import BootReport, boot
from monoimage.pipeline.build import BuildOptions, build
from monoimage.pipeline.host_probes import probe_from_host
from monoimage.recipe.load import load_recipe
from monoimage.recipe.model import Recipe
from monoimage.tools.cache_dir import default_cache_dir
from notify_socket import NotifySocket
from test_hosts import unit_sections
from test_runprofile import podman_env
from timing import scaled

pytestmark = [pytest.mark.build, pytest.mark.boot, pytest.mark.tools]

# The `monoimage` command of this interpreter's environment.
CLI = (sys.executable, "-c", "from monoimage.cli import main; main()")
# What a boot of edge-lite needs besides the image: its secrets, as an operator gives them
# (`MONOIMAGE_SITE_<NAME>`); every boot here (library, command, unit) takes them from this.
BOOT_ENV = {"MONOIMAGE_SITE_REDIS_PASSWORD": f"monoimage-test-{uuid.uuid4().hex[:12]}"}


@pytest.fixture(autouse=True)
def site_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in BOOT_ENV.items():
        monkeypatch.setenv(name, value)


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], check=check, env=podman_env(),
                          capture_output=True, text=True)


def boot_edge_lite(edge_lite: EdgeLite, **options: Any) -> BootReport:
    """The library's boot of the session's edge-lite, under a unique container name."""
    return boot(edge_lite.reference, name=f"monoimage-test-boot-{uuid.uuid4().hex[:6]}",
                timeout=scaled(90), **options)


def cli_boot(*args: str) -> subprocess.CompletedProcess[str]:
    """`monoimage boot ARGS…` run as a user runs it (wide output, no terminal)."""
    return subprocess.run([*CLI, "boot", *args], check=False, capture_output=True, text=True,
                          env={**podman_env(), **BOOT_ENV, "COLUMNS": "200"},
                          timeout=scaled(240))


def build_image(recipe: Recipe, tmp: Path) -> str:
    ref = f"localhost/monoimage-test-{recipe.name.removeprefix('monoimage-test-')}:" \
          f"{uuid.uuid4().hex[:8]}"
    build(recipe, BuildOptions(tag=ref, out_dir=tmp / "out", cache_dir=default_cache_dir()))
    return ref


def containers_of(image: str) -> list[str]:
    return podman("ps", "--all", "--filter", f"ancestor={image}", "--format",
                  "{{.Names}}").stdout.split()


def events(container: str, event: str, since: float) -> list[dict[str, Any]]:
    """podman's recorded `event`s of `container` since `since` (a time.time())."""
    out = podman("events", "--since", str(int(since)), "--until", str(int(time.time()) + 1),
                 "--filter", f"container={container}", "--filter", f"event={event}",
                 "--format", "json").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def wait_for(what: str, happened: Callable[[], object], seconds: float = 90) -> None:
    """Poll until `happened()` is true; fail after `seconds` (scaled for slow machines)."""
    deadline = time.monotonic() + scaled(seconds)
    while not happened():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


# --- edge-lite --------------------------------------------------------------------------------


def test_edge_lite_boots_healthy_and_answers_from_the_host(edge_lite: EdgeLite) -> None:
    """Read from the image alone: every service ready and answering through its published
    port; `podman stop` ends it gracefully (exit 0, so no SIGKILL), no zombie, nothing left."""
    report = boot_edge_lite(edge_lite)
    recipe = edge_lite.recipe
    assert report.problems == (), report.log_tail
    assert report.healthy and report.ok and report.recipe_from == "image"
    assert {s.name for s in report.services} == {s.name for s in recipe.services}
    assert all(s.state == "ready" for s in report.services)
    answered = {(p.service, p.port) for p in report.probes if p.outcome == "ok"}
    assert answered == {(s.name, str(p)) for s in recipe.services for p in s.ports}
    assert report.exit_code == 0 and report.zombies == ()
    assert report.stop_seconds is not None and report.init_rss_kib and report.time_to_ready_ms
    assert containers_of(edge_lite.reference) == []


def test_cli_boot_with_the_recipe_and_the_default_profile_prints_the_report(
        edge_lite: EdgeLite) -> None:
    done = cli_boot(edge_lite.reference, "--recipe", str(edge_lite.path), "--profile",
                    "default")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line.rstrip() for line in done.stdout.splitlines()]
    title = " ".join(x.strip() for x in lines[:next(i for i, x in enumerate(lines)
                                                    if x.startswith("┏"))])  # rich wraps it
    assert title == (f"{edge_lite.reference} — profile default, facts from recipe "
                     f"{edge_lite.path}")
    for service in edge_lite.recipe.services:
        row = next(line for line in lines if line.startswith(f"│ {service.name} "))
        assert " ready " in row and "✓" in row and "✗" not in row, row
    assert re.search(rf"^container \S+ \({re.escape(edge_lite.reference)}, profile default\)$",
                     done.stdout, re.MULTILINE), done.stdout
    assert re.search(r"^podman stop: \d+\.\d\d s \(stop timeout \d+ s\), exit code 0, "
                     r"0 zombie\(s\)$", done.stdout, re.MULTILINE), done.stdout
    assert lines[-1] == ("healthy: every service ready and answering from the host; stopped "
                         "cleanly")
    assert containers_of(edge_lite.reference) == []


def test_cli_boot_keep_leaves_it_running_and_says_how_to_stop_it(edge_lite: EdgeLite) -> None:
    done = cli_boot(edge_lite.reference, "--keep")
    kept = re.search(r"^kept running: (podman stop -t \d+ (\S+)) && (podman rm \S+)$",
                     done.stdout, re.MULTILINE)
    assert kept, done.stdout + done.stderr
    name = kept.group(2)
    try:
        assert done.returncode == 0, done.stdout
        state = json.loads(podman("container", "inspect", name).stdout)[0]["State"]
        assert state["Running"] is True
        for command in (kept.group(1), kept.group(3)):   # what the report says to run
            podman(*shlex.split(command)[1:])
        assert podman("container", "exists", name, check=False).returncode == 1
    finally:
        podman("rm", "--force", "--volumes", "--time", "0", name, check=False)


def test_the_plain_units_podman_command_boots_edge_lite_healthy(edge_lite: EdgeLite,
                                                                 tmp_path: Path) -> None:
    """The unit's ExecStart as systemd would run it (specifiers filled in: %t a temporary
    runtime dir, %n the unit), with two changes for a shared test host: host ports become
    free loopback ports, and the site values file lives in the temporary dir. The exit code
    comes from podman's `died` event: `--rm` removes the container before anyone can ask.
    With systemd's NOTIFY_SOCKET (a socket of the test's), READY=1 comes once every service
    answers."""
    recipe = replace(edge_lite.recipe, name=f"monoimage-test-unit-{uuid.uuid4().hex[:6]}")
    spec = host_spec(recipe, image=edge_lite.reference)
    unit = render_systemd_unit(spec, recipe)
    env_file = tmp_path / f"{spec.name}.env"
    env_file.write_text(render_site_env(spec, recipe)
                        + "".join(f"{k}={v}\n" for k, v in BOOT_ENV.items()))  # the operator's
    service = dict(unit_sections(unit)["Service"])

    def command(key: str) -> list[str]:
        argv = [a.replace("%%", "%").replace("$$", "$") for a in shlex.split(service[key])]
        argv = [a.replace("%t", str(tmp_path)).replace("%n", f"{spec.name}-podman.service")
                for a in argv]
        argv = [re.sub(r"^(\d+):(\d+/(tcp|udp))$", r"127.0.0.1::\2", a) for a in argv]
        return [str(env_file) if a == f"/etc/monoimage/{spec.name}.env" else a for a in argv]

    start = command("ExecStart")
    assert "--rm" in start and "--sdnotify=container" in start
    assert f"--cidfile={tmp_path}/" in " ".join(start)
    # systemd's notify socket, as Type=notify gives the unit one: a real AF_UNIX datagram
    # socket the test binds; podman hands it to the container, where monoimage-init uses it
    notify = NotifySocket(tmp_path / "notify.sock")
    since = time.time() - 1
    try:
        started = subprocess.run(start, check=False, env={**podman_env(),
                                 "NOTIFY_SOCKET": notify.address}, capture_output=True,
                                 text=True, timeout=scaled(240))
        assert started.returncode == 0, started.stderr
        # "started" means every service answers: READY=1 has come, and at that moment the
        # health check passes and every published port answers from the host (nginx: GET /)
        ready_at = notify.wait_line("READY=1", log=lambda: podman("logs", spec.name).stdout)
        assert podman("healthcheck", "run", spec.name, check=False).returncode == 0
        inspect = json.loads(podman("container", "inspect", spec.name).stdout)[0]
        probes = probe_from_host(recipe, inspect)
        assert [p for p in probes if p.outcome != "ok"] == [], probes
        assert ("nginx", "http", "http GET / 200") in {(p.service, p.kind, p.detail)
                                                       for p in probes}
        # podman says MAINPID (conmon) itself; runc, the runtime here, passes on READY=1 alone
        # of what the init sends (STATUS= and STOPPING=1 are proven on init alone, tests/init)
        assert [line.partition("=")[0] for line in notify.lines()] == ["MAINPID", "READY"]
        assert ready_at == 1
        assert inspect["HostConfig"]["ReadonlyRootfs"] is True
        assert inspect["HostConfig"]["AutoRemove"] is True
        subprocess.run(command("ExecStop"), check=True, env=podman_env(), capture_output=True)
        subprocess.run(command("ExecStopPost"), check=True, env=podman_env(),
                       capture_output=True)
        assert podman("container", "exists", spec.name, check=False).returncode == 1
        # podman's cleanup process writes the event, maybe after the stop returned (seen
        # under load): wait for it
        wait_for("podman's died event", lambda: events(spec.name, "died", since))
        died = events(spec.name, "died", since)
        # Stopped gracefully, not by SIGKILL (137); podman's JSON leaves out a zero code.
        assert [e.get("ContainerExitCode", 0) for e in died] == [0]
        assert len(events(spec.name, "remove", since)) == 1
    finally:
        notify.close()
        podman("rm", "--force", "--time", "0", spec.name, check=False)
        podman("volume", "rm", "--force", *(v.name for v in spec.volumes if v.name),
               check=False)


# --- a broken image ---------------------------------------------------------------------------

BROKEN_IMAGE = """\
image: {{name: {name}}}
distro: {{name: debian, release: bookworm, packager: apt}}
services: [web, never]
runtime: {{memory: 128m, pids_limit: 64, read_only: true}}
layering: {{policy: single}}
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
def slow_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """A service that is never ready: after 4 s the init fails the container; 300 s keeps it
    starting (for the interrupts)."""
    root = tmp_path_factory.mktemp("broken")
    (root / "services").mkdir()
    (root / "services" / "web.yaml").write_text(WEB)
    refs = []
    try:
        for timeout in (4, 300):
            (root / "services" / "never.yaml").write_text(NEVER % timeout)
            name = f"monoimage-test-never-{timeout}"
            (root / f"{name}.yaml").write_text(textwrap.dedent(BROKEN_IMAGE.format(name=name)))
            refs.append(build_image(load_recipe(root / f"{name}.yaml"), root))
        yield refs
    finally:
        for ref in refs:
            podman("rmi", "--force", ref, check=False)


def test_a_service_that_never_gets_ready_fails_the_boot_and_leaves_nothing(
        slow_image: list[str]) -> None:
    failing, _ = slow_image
    report = boot(failing, timeout=scaled(60),
                  name=f"monoimage-test-boot-{uuid.uuid4().hex[:6]}")
    assert not report.ok
    assert "the container exited (code 4) before it was healthy" in report.problems
    assert "never" in report.log_tail
    assert containers_of(failing) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupt_removes_the_container(slow_image: list[str], signum: int) -> None:
    _, starting = slow_image
    since = time.time() - 1
    cli = subprocess.Popen([*CLI, "boot", starting], env=podman_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for("boot's container", lambda: containers_of(starting) or cli.poll() is not None)
        assert cli.poll() is None
        (name,) = containers_of(starting)
        # The event: boot is waiting for health (podman recorded a health check it ran).
        wait_for("boot's first health check",
                 lambda: events(name, "health_status", since) or cli.poll() is not None)
        cli.send_signal(signum)
        _, err = cli.communicate(timeout=scaled(60))
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 130, err
    assert err.strip().splitlines()[-1] == \
        "monoimage: boot interrupted: the container was removed"
    assert containers_of(starting) == []


def test_cli_boot_exits_1_for_an_unhealthy_image(slow_image: list[str]) -> None:
    failing, _ = slow_image
    done = cli_boot(failing, "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False and report["healthy"] is False
    assert report["problems"][0] == "the container exited (code 4) before it was healthy"
    assert containers_of(failing) == []
