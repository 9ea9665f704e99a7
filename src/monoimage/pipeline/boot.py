"""`monoimage boot`: run the golden image the way a small container-OS host would, and prove it.

Start it with podman under the run profile (`run_profile.container_spec`, the same spec the host
artefacts are rendered from) with every port on a free loopback port, wait until
`monoimage-init health` passes, probe each service from the host through its published port,
read the init's status, then stop it with `podman stop` and check it ended cleanly in time.
The container is always removed (unless kept on request), on failure and Ctrl-C too.

What boot needs to know (ports, capabilities, state volumes, limits, probes, stop timeouts)
comes from the recipe when given, else from the image itself: its config (exposed ports,
volumes), its labels (capabilities, limits) and its service table (`plan/image_facts.py`).
The probes from the host are in `pipeline/host_probes.py`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monoimage.errors import UserError
from monoimage.image import SITE_ENV_PREFIX, STATUS_CMD, TABLE_PATH
from monoimage.pipeline.host_probes import HostProbe, probe_from_host
from monoimage.plan.image_facts import recipe_from_image
from monoimage.plan.run_profile import (
    ContainerSpec,
    ProfileName,
    container_spec,
    podman_run_args,
    unmet_needs,
)
from monoimage.recipe.limits import MAX_TEXT, text_problem
from monoimage.recipe.model import Recipe
from monoimage.tools import podman

POLL = 0.1                    # seconds between health checks
TIMEOUT = 120.0               # seconds to wait for health, unless the image allows for more

@dataclass(frozen=True)
class ServiceStatus:
    """One service as the init reported it."""

    name: str
    state: str
    ready_after_ms: int | None
    rss_kib: int | None
    restarts: int
    pid: int | None
    detail: str | None = None         # the init's last word on it: an exit, why it was skipped


@dataclass(frozen=True)
class BootReport:
    image: str
    container: str
    profile: ProfileName
    recipe_from: str                  # "recipe FILE" or "image"
    healthy: bool                     # monoimage-init health passed before the timeout
    time_to_ready_ms: float | None    # container start → every service ready (init's clock)
    time_to_healthy_ms: float | None  # container start → health check seen passing (host)
    services: tuple[ServiceStatus, ...]
    probes: tuple[HostProbe, ...]
    init_rss_kib: int | None
    zombies: tuple[str, ...]          # `pid comm` of zombie processes seen before the stop
    stop_timeout: int
    stop_seconds: float | None        # None when kept or never started
    exit_code: int | None
    kept: bool = False
    problems: tuple[str, ...] = ()
    log_tail: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """Healthy, every host probe answered, stopped cleanly in time, exit 0, no zombie."""
        return not self.problems


def boot(image: str, recipe: Recipe | None = None, *, profile: ProfileName = "small-host",
         timeout: float | None = None, keep: bool = False, name: str | None = None,
         recipe_from: str = "image", site: Mapping[str, str] | None = None,
         environ: Mapping[str, str] | None = None,
         progress: Callable[[str], None] = lambda _: None) -> BootReport:
    """Boot `image` under `profile` and report; `recipe` None reads the facts from the image.

    `site` (from `--site NAME=VALUE`) and `MONOIMAGE_SITE_<NAME>` in `environ` give site
    values; a value the image has no default for (a secret) must come from one of them.
    `timeout` None: TIMEOUT, or the health check's start period (every readiness timeout,
    capped) when longer."""
    inspect = podman.image_inspect(image)
    notes: list[str] = []
    if recipe is None:
        recipe, notes = recipe_from_image(image, inspect, read_table(image))
    values = site_values(recipe, site or {}, os.environ if environ is None else environ)
    name = name or f"monoimage-boot-{recipe.name}-{secrets.token_hex(3)}"
    private = Path(tempfile.mkdtemp(prefix="monoimage-boot-"))
    try:
        env_file = private / "site.env"
        env_file.touch(mode=0o600)
        env_file.write_text("".join(f"{SITE_ENV_PREFIX}{k.upper()}={v}\n"
                                    for k, v in values.items()), encoding="utf-8")
        spec = boot_spec(recipe, image=image, name=name, profile=profile,
                         env_files=(str(env_file),) if values else ())
        check_needs(recipe, spec)
        check_host_grants(spec, recipe)
        if spec.network == "host" and recipe.ports:
            notes.append("on the host's network: the services listen on the host's own "
                         f"ports ({', '.join(map(str, recipe.ports))}); nothing is published")
        progress(f"starting {name} ({profile})")
        started = time.time()
        began = time.monotonic()
        try:
            podman.run_detached(podman_run_args(spec))
            shutil.rmtree(private, ignore_errors=True)  # podman has read it: no copy stays
            wait = timeout if timeout is not None else max(TIMEOUT, spec.health.start_period)
            return _observe(spec, recipe, started, began, wait, keep, recipe_from, notes,
                            progress)
        finally:
            if not keep:
                podman.remove(name)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def boot_spec(recipe: Recipe, *, image: str, name: str, profile: ProfileName,
              env_files: tuple[str, ...] = ()) -> ContainerSpec:
    """The spec boot runs: the host's own (`host_spec`) but with anonymous state volumes and
    every port on a free loopback port; the same grants."""
    return container_spec(recipe, image=image, name=name, profile=profile, ephemeral=True,
                          host_ip="127.0.0.1", random_host_ports=True, env_files=env_files)


def check_needs(recipe: Recipe, spec: ContainerSpec) -> None:
    """A UserError, before anything starts, naming the first service whose needs the run
    profile does not grant (the service would fail at start, or be skipped, with less to say)."""
    unmet = unmet_needs(recipe, spec)
    if unmet:
        service, need = unmet[0]
        others = f" (and {len(unmet) - 1} more)" if len(unmet) > 1 else ""
        raise UserError(f"{spec.image}: {service} needs {need}, which the run profile "
                        f"{spec.profile} does not grant{others}: give it in the recipe's "
                        f"runtime: ({_runtime_key(need)})")


def _runtime_key(need: str) -> str:
    word = need.partition("=")[0]
    return {"device": "runtime.devices", "privileged": "runtime.privileged"}.get(
        word, f"runtime.{word}: host")


def check_host_grants(spec: ContainerSpec, recipe: Recipe) -> None:
    """A UserError, before anything starts, when the spec grants a device or mounts a host path
    this host does not have (podman would fail on it with less to say), naming the services
    that need the device."""
    for device in spec.devices:
        if not os.path.exists(device):
            users = [s.name for s in recipe.services if f"device={device}" in s.needs]
            needed = f", needed by {', '.join(users)}" if users else ""
            raise UserError(f"{spec.image}: the run profile gives the container the device "
                            f"{device}{needed}, which this host does not have "
                            f"(runtime.devices)")
    for mount in spec.host_mounts:
        if not os.path.exists(mount.source):
            raise UserError(f"{spec.image}: the run profile mounts the host's {mount.source} "
                            f"at {mount.target}, which this host does not have "
                            f"(runtime.host_mounts)")


def site_values(recipe: Recipe, given: Mapping[str, str], environ: Mapping[str, str]
                ) -> dict[str, str]:
    """The site values to pass: `given` first, then `MONOIMAGE_SITE_<NAME>` from `environ`;
    a UserError when a value without a default is given by neither, or a name is unknown."""
    names = recipe.site_names
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise UserError(f"--site {unknown[0]}: not a site value of {recipe.name} "
                        f"(site values: {', '.join(names) or 'none'})")
    values = {n: environ[SITE_ENV_PREFIX + n.upper()] for n in names
              if SITE_ENV_PREFIX + n.upper() in environ}
    values.update(given)
    missing = [n for n in recipe.site_required if n not in values]
    if missing:
        raise UserError(f"{recipe.name} needs the site value {missing[0]!r}, which has no "
                        f"default in the image: give --site {missing[0]}=VALUE or "
                        f"{SITE_ENV_PREFIX}{missing[0].upper()} in the environment")
    for name, value in values.items():
        if text_problem(value):  # the rule the recipe's values follow; a secret is not shown
            raise UserError(f"site value {name!r}: give one line without control characters, "
                            f"at most {MAX_TEXT} characters")
    return values


def _observe(spec: ContainerSpec, recipe: Recipe, started: float, began: float,
             timeout: float, keep: bool, recipe_from: str, notes: list[str],
             progress: Callable[[str], None]) -> BootReport:
    problems: list[str] = []
    progress("waiting for monoimage-init health")
    healthy, healthy_after, ended = wait_healthy(spec.name, began + timeout)
    time_to_healthy = (healthy_after - began) * 1000 if healthy_after is not None else None
    if ended is not None:
        problems.append(f"the container exited (code {ended}) before it was healthy")
    elif not healthy:
        problems.append(f"not healthy within {timeout:g} s")
    services: tuple[ServiceStatus, ...] = ()
    probes: tuple[HostProbe, ...] = ()
    init_rss = None
    zombies: tuple[str, ...] = ()
    time_to_ready = None
    if ended is None:
        status = read_status(spec.name)
        services = services_of(status)
        ready_since = [s.get("ready_since") for s in status.get("services", [])
                       if s.get("state") != "skipped"]   # a skipped service is never ready
        if healthy and ready_since and all(isinstance(t, (int, float)) for t in ready_since):
            time_to_ready = (max(ready_since) - started) * 1000
        not_ready = [f"{s.name} ({s.state})" for s in services
                     if s.state not in ("ready", "done", "skipped")]
        if not_ready:
            problems.append(f"not ready: {', '.join(not_ready)}")
        skipped = frozenset(s.name for s in services if s.state == "skipped")
        notes += [f"{s.name} cannot run on this host and was not started ({s.detail})"
                  for s in services if s.state == "skipped"]
        progress("probing the services from the host")
        probes = probe_from_host(recipe, podman.container_inspect(spec.name) or {},
                                 host_network=spec.network == "host", skipped=skipped)
        problems += [f"{p.service} {p.port}: {p.detail}" for p in probes if p.outcome == "failed"]
        init_rss = init_rss_kib(spec.name)
        zombies = tuple(f"{p['pid']} {p.get('comm', '')}" for p in podman.processes(spec.name)
                        if p.get("state", "").startswith("Z"))
        if zombies:
            problems.append(f"zombie processes: {', '.join(zombies)}")
    log_tail = podman.logs(spec.name) if problems else ""
    stop_seconds = exit_code = None
    if not keep:
        progress(f"stopping (podman stop -t {spec.stop_timeout})")
        if ended is None:
            stop_seconds = podman.stop(spec.name, spec.stop_timeout)
            if stop_seconds >= spec.stop_timeout:
                problems.append(f"the stop took {stop_seconds:.1f} s: SIGKILL after the "
                                f"{spec.stop_timeout} s stop timeout")
        state = (podman.container_inspect(spec.name) or {}).get("State", {})
        exit_code = state.get("ExitCode", ended)
        if exit_code != 0 and ended is None:
            problems.append(f"exit code {exit_code} after podman stop")
    return BootReport(
        image=spec.image, container=spec.name, profile=spec.profile, recipe_from=recipe_from,
        healthy=healthy, time_to_ready_ms=time_to_ready, time_to_healthy_ms=time_to_healthy,
        services=services, probes=probes, init_rss_kib=init_rss, zombies=zombies,
        stop_timeout=spec.stop_timeout, stop_seconds=stop_seconds, exit_code=exit_code,
        kept=keep, problems=tuple(problems), log_tail=log_tail, notes=tuple(notes))


def wait_healthy(name: str, deadline: float) -> tuple[bool, float | None, int | None]:
    """Poll `podman healthcheck run` (which runs `monoimage-init health` in the container)
    until it passes or `deadline`: (healthy, when, exit code if the container ended)."""
    while True:
        state = (podman.container_inspect(name) or {}).get("State", {})
        if not state.get("Running", False):
            return False, None, int(state.get("ExitCode", -1))
        if podman.healthcheck(name).exit_code == 0:
            return True, time.monotonic(), None
        if time.monotonic() >= deadline:
            return False, None, None
        time.sleep(POLL)


def read_status(name: str) -> dict[str, Any]:
    """The init's status (`monoimage-init status --json` in the container)."""
    done = podman.exec_in(name, *STATUS_CMD)
    if done.exit_code != 0:
        return {"services": []}
    return dict(json.loads(done.stdout))


def services_of(status: dict[str, Any]) -> tuple[ServiceStatus, ...]:
    def number(value: object) -> int | None:
        return int(value) if isinstance(value, (int, float)) else None

    return tuple(ServiceStatus(name=str(s.get("name")), state=str(s.get("state")),
                               ready_after_ms=number(s.get("ready_after_ms")),
                               rss_kib=number(s.get("rss_kib")),
                               restarts=number(s.get("restarts")) or 0,
                               pid=number(s.get("pid")),
                               detail=None if s.get("last_exit") is None
                               else str(s.get("last_exit")))
                 for s in status.get("services", []))


def init_rss_kib(name: str) -> int | None:
    """VmRSS of the container's PID 1 (monoimage-init), read from the host's /proc."""
    pid = (podman.container_inspect(name) or {}).get("State", {}).get("Pid")
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


# --- the recipe's facts, read back from the image ---------------------------------------------

def read_table(image: str) -> str:
    """The service table text, read from the image without starting it."""
    try:
        return podman.read_image_file(image, TABLE_PATH)
    except OSError as error:
        raise UserError(f"image {image}: no monoimage service table at {TABLE_PATH} "
                        f"({error.strerror}); is it a monoimage image? "
                        f"Give --recipe otherwise") from None
