"""`monoimage boot IMAGE --vm`: the image on a real small container-OS host, in QEMU.

The host is the Debian trixie VM image (`pipeline/vm_image.py`), provisioned with the
Ignition config `monoimage host` writes (applied by the real engine), running the image
through podman 5.4's Quadlet generator and systemd, pulling it from a loopback registry
(`pipeline/vm_session.py`). The report shows what Ignition wrote, the unit the generator made,
systemd's view of it, the init's health check and every service's readiness (the table of
`boot`), probes of every published port from the build host through QEMU's `hostfwd`, the
bytes the VM pulled, boot/ready/stop times and the exit. Exit codes are `boot`'s.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from monoimage.errors import UserError
from monoimage.image import STATUS_CMD
from monoimage.pipeline.boot import ServiceStatus, read_table, services_of, site_values
from monoimage.pipeline.host_probes import HostProbe, probe_port
from monoimage.pipeline.vm_image import vm_image as cached_vm_image
from monoimage.pipeline.vm_session import VmSession, vm_session
from monoimage.plan.image_facts import recipe_from_image
from monoimage.recipe.model import Recipe
from monoimage.tools import podman
from monoimage.tools.cache_dir import default_cache_dir
from monoimage.tools.guest_agent import AgentError
from monoimage.tools.qemu import Accelerator, probe_kvm, require_qemu, require_tool
from monoimage.tools.registry import Registry
from monoimage.tools.run import Completed

POLL = 2.0                    # seconds between looks into the VM
PULL_ATTEMPTS = 3             # restarts of the unit before a failed pull is final
UNIT_PROPERTIES = ("ActiveState", "SubState", "Result", "NRestarts", "ExecMainStatus")


@dataclass(frozen=True)
class VmReport:
    image: str
    reference: str                       # what the VM pulled
    accelerator: Accelerator
    accelerator_note: str
    vm_image: str                        # the cache folder of the VM image
    vm_image_built_seconds: float | None  # None: from the cache
    ignition_files: tuple[str, ...]
    generated_unit: str                  # the Quadlet generator's unit, as systemctl cat shows
    unit_state: dict[str, str]
    healthy: bool
    services: tuple[ServiceStatus, ...]
    probes: tuple[HostProbe, ...]
    pulled_bytes: int | None
    pull_requests: int | None
    boot_seconds: float | None           # QEMU start → guest agent answers
    systemd_time: str                    # `systemd-analyze time` in the guest
    ready_seconds: float | None          # QEMU start → health check passes
    stop_seconds: float | None
    exit_code: int | None
    stop_result: str | None
    kept: bool = False
    keep_instructions: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    log_tail: str = ""
    forwards: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems


def choose_accelerator(kernel: Path) -> tuple[Accelerator, str]:
    """KVM when a probe guest runs under it, TCG otherwise; and why."""
    works, why = probe_kvm(kernel)
    return ("kvm", why) if works else ("tcg", f"TCG (no KVM: {why})")


def boot_vm(image: str, recipe: Recipe | None = None, *, timeout: float = 600.0,
            boot_timeout: float = 900.0, keep: bool = False,
            site: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None,
            cache_dir: Path | None = None, recipe_from: str = "image",
            on_pushed: Callable[[Registry], None] | None = None,
            on_ignition: Callable[[str], str] | None = None,
            progress: Callable[[str], None] = lambda _: None) -> VmReport:
    """Boot `image` on the VM host and report (see the module's docstring).

    `boot_timeout`: seconds from QEMU's start to the guest agent's answer; `timeout`: seconds
    from then until every service is ready."""
    require_qemu()
    require_tool("mke2fs", "e2fsprogs")
    inspect = podman.image_inspect(image)
    notes: list[str] = []
    if recipe is None:
        recipe, notes = recipe_from_image(image, inspect, read_table(image))
    values = site_values(recipe, site or {}, os.environ if environ is None else environ)
    built = cached_vm_image(cache_dir or default_cache_dir(), progress)
    accelerator, why = choose_accelerator(built.kernel)
    with vm_session(image, recipe, values, built, accelerator, keep=keep, on_pushed=on_pushed,
                    on_ignition=on_ignition, progress=progress) as session:
        session.notes += notes
        return observe(session, image, built.folder, built.built_seconds, why, timeout,
                       boot_timeout, recipe_from, progress)


def observe(session: VmSession, image: str, vm_folder: Path, built: float | None, why: str,
            timeout: float, boot_timeout: float, recipe_from: str,
            progress: Callable[[str], None]) -> VmReport:
    problems: list[str] = []
    progress("waiting for the VM to boot (its guest agent)")
    boot_seconds = ready = stop = None
    systemd_time = unit_text = ""
    state: dict[str, str] = {}
    services: tuple[ServiceStatus, ...] = ()
    probes: tuple[HostProbe, ...] = ()
    exit_code = None
    stop_result = None
    healthy = False
    log_tail = ""
    try:
        session.agent.wait(session.started + boot_timeout, session.vm.running)
        boot_seconds = time.monotonic() - session.started
        progress(f"booted in {boot_seconds:.0f} s; waiting for {session.unit}")
        healthy, why_not = wait_ready(session, time.monotonic() + timeout)
        if healthy:
            ready = time.monotonic() - session.started
        else:
            problems.append(why_not)
        state = unit_state(session)
        unit_text = guest(session, "systemctl", "cat", "--", session.unit).stdout
        status = read_status(session)
        services = services_of(status)
        not_ready = [f"{s.name} ({s.state})" for s in services
                     if s.state not in ("ready", "done", "skipped")]
        if healthy and not_ready:
            problems.append(f"not ready: {', '.join(not_ready)}")
        if healthy:
            progress("probing the services from the build host (hostfwd)")
            probes = probe_forwarded(session)
            problems += [f"{p.service} {p.port}: {p.detail}" for p in probes
                         if p.outcome == "failed"]
        systemd_time = guest(session, "systemd-analyze", "time").stdout.strip()
        if problems:
            log_tail = guest(session, "journalctl", "-u", session.unit, "-o", "cat", "-n",
                             "40", "--no-pager").stdout
        if not session.kept:
            progress(f"systemctl stop {session.unit}")
            began = time.monotonic()
            guest(session, "systemctl", "stop", "--", session.unit,
                  timeout=session.spec.systemd_stop_timeout + 60)
            stop = time.monotonic() - began
            after = unit_state(session)
            stop_result = after.get("Result")
            exit_code = int(after.get("ExecMainStatus", "-1") or -1)
            if healthy and (stop_result != "success" or exit_code != 0):
                problems.append(f"systemctl stop: result {stop_result}, exit code {exit_code}")
    except AgentError as error:
        problems.append(str(error) if boot_seconds is not None else
                        f"the VM did not boot within {boot_timeout:g} s ({error})")
        log_tail = "\n".join(session.vm.console().splitlines()[-25:])
    pulled = session.proxy.take()
    forwards = tuple(f"127.0.0.1:{f.host_port} → VM {f.guest_port}/{f.protocol}"
                     for f in session.forwards)
    return VmReport(
        image=image, reference=session.spec.image, accelerator=session.vm.accelerator,
        accelerator_note=why, vm_image=str(vm_folder), vm_image_built_seconds=built,
        ignition_files=session.applied.files, generated_unit=unit_text, unit_state=state,
        healthy=healthy, services=services, probes=probes,
        pulled_bytes=pulled.bytes_served,
        pull_requests=len(pulled.requests), boot_seconds=boot_seconds,
        systemd_time=systemd_time, ready_seconds=ready, stop_seconds=stop,
        exit_code=exit_code, stop_result=stop_result, kept=session.kept,
        keep_instructions=keep_instructions(session) if session.kept else (),
        problems=tuple(problems), notes=tuple(session.notes), log_tail=log_tail,
        forwards=forwards)


def guest(session: VmSession, *argv: str, timeout: float = 60.0) -> Completed:
    """Run a program in the VM through its guest agent."""
    return session.agent.run(argv, timeout=timeout)


def unit_state(session: VmSession) -> dict[str, str]:
    done = guest(session, "systemctl", "show", *(f"--property={p}" for p in UNIT_PROPERTIES),
                 "--", session.unit)
    return dict(line.partition("=")[::2] for line in done.stdout.splitlines() if "=" in line)


def wait_ready(session: VmSession, deadline: float) -> tuple[bool, str]:
    """Until `podman healthcheck run` passes in the VM: (True, ""), or (False, why not): the
    unit failed, the VM could not pull the image, or time ran out.

    A failed pull is final once systemd has restarted the unit `PULL_ATTEMPTS` times and
    the last start failed on it too: the first may fail before the guest's network is up."""
    name = session.spec.name
    while True:
        state = unit_state(session)
        if state.get("ActiveState") == "active" and \
                guest(session, "podman", "healthcheck", "run", "--", name).ok:
            return True, ""
        restarts = int(state.get("NRestarts") or 0)
        if restarts >= PULL_ATTEMPTS or state.get("ActiveState") == "failed":
            pull_error = last_pull_failure(session, state.get("ActiveState") == "failed")
            if pull_error:
                return False, f"the VM could not pull {session.spec.image}: {pull_error}"
        if state.get("ActiveState") == "failed":
            return False, (f"{session.unit} failed ({state.get('Result')}, exit "
                           f"{state.get('ExecMainStatus')}) after {restarts} restart(s)")
        if time.monotonic() >= deadline:
            return False, (f"{session.unit} not healthy in time ({state.get('ActiveState')}/"
                           f"{state.get('SubState')}, {restarts} restart(s))")
        time.sleep(POLL)


def last_pull_failure(session: VmSession, ended: bool) -> str | None:
    """podman's own error line when the unit's last finished start (the last one when the
    unit has `ended`, else the one before the start in progress) failed to pull the image."""
    log = guest(session, "journalctl", "-u", session.unit, "-o", "cat", "--no-pager").stdout
    lines = log.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Starting ")] or [0]
    if ended:
        finished = lines[starts[-1]:]
    else:
        finished = lines[starts[-2]:starts[-1]] if len(starts) >= 2 else []
    for line in reversed(finished):
        if line.startswith("Error:") and ("pull" in line or "initializing source" in line
                                          or "manifest" in line or "blob" in line):
            return line.removeprefix("Error:").strip()[:300]
    return None


def read_status(session: VmSession) -> dict[str, object]:
    done = guest(session, "podman", "exec", "--", session.spec.name, *STATUS_CMD)
    if not done.ok:
        return {"services": []}
    try:
        return dict(json.loads(done.stdout))
    except ValueError:
        raise UserError(f"in the VM, monoimage-init status said: {done.stdout[:200]}") from None


def probe_forwarded(session: VmSession) -> tuple[HostProbe, ...]:
    """Every service port, from the build host through its hostfwd (a GET where the service's
    readiness probe is an http probe on that port, as `boot` does)."""
    by_port = {(f.guest_port, f.protocol): f.host_port for f in session.forwards}
    return tuple(probe_port(service.name, port, by_port.get((port.number, port.protocol)),
                            ready=service.ready)
                 for service in session.recipe.services for port in service.ports)


def keep_instructions(session: VmSession) -> tuple[str, ...]:
    folder = session.run_dir
    return (f"the VM runs on (QEMU pid {session.vm.pid}); its folder is {folder}",
            f"console (root, no password): socat -,raw,echo=0 UNIX-CONNECT:{folder}/console.sock",
            f"guest agent: {folder}/agent.sock (qemu-guest-agent JSON)",
            *(f"port {f.guest_port}/{f.protocol}: 127.0.0.1:{f.host_port}"
              for f in session.forwards),
            "the registry it pulled from is gone: the VM keeps the image it has",
            f"end it: kill {session.vm.pid} && rm -rf {folder}")
