"""monoimage-init against supervisord, s6, runit and tini (+ bash) in one run, on the same
edge-lite root filesystem, the same seven services and the same podman small-host profile.

One derived image (the edge-lite image + Debian's supervisor, s6, runit, tini packages, installed
with apt in a buildah container, + the generated configurations under /bench, see
bench/supervisor_configs.py) is run once per supervisor with a different entrypoint. Measured
from the host, never from the supervisor's word:

- podman run → every service port answers (tcp connect, DNS and NTP queries);
  the overhead over the slowest service alone (under tini, its own start, measured the same way);
- VmRSS of PID 1, and the sum over PID 1 and every supervision process, with the 7 services
  and with 43 extra `sleep infinity` services (50);
- SIGTERM (`podman kill`) → container gone, the exit code, how many service processes ended
  before PID 1 did (the others were SIGKILLed by the kernel), and the exit codes logged;
- zombies 1 s after 2,000 orphans re-parented to PID 1 (`podman exec`, 10 × 200);
- a crash-looping non-critical service for 12 s (starts, container state, PID 1's last word);
- a critical service exiting 3 (restart policy never): the container's exit code.

Usage: python bench/supervisors.py [IMAGE] [--recipe R] [--runs N] [--quick]
The image (default localhost/edge-lite:latest) is built with `monoimage build`; the redis
password is a throwaway value (MONOIMAGE_SITE_REDIS_PASSWORD if set).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import supervisor_configs as gen
from rich.console import Console
from rich.table import Table as RichTable

from monoimage.init.render import SITE_ENV_PREFIX, SiteValues
from monoimage.init.table import parse_table
from monoimage.pipeline import host_probes
from monoimage.pipeline.boot import read_table
from monoimage.plan.run_profile import container_spec, podman_run_args
from monoimage.recipe.load import load_recipe
from monoimage.recipe.model import Recipe
from monoimage.tools import buildah, podman

SUPERVISORS = ("monoimage-init", "supervisord", "s6", "runit", "tini")
PACKAGES = ("supervisor", "s6", "runit", "tini")
BENCH = "/bench"
VARIANTS = {"seven": [], "fifty": gen.idle_services(43), "crash": [gen.CRASHLOOP],
            "critical": [gen.CRITICAL]}
SUPERVISION = {"monoimage-init": set(), "supervisord": {"supervisord"},
               "s6": {"s6-svscan", "s6-supervise"}, "runit": {"runsvdir", "runsv"},
               "tini": {"tini", "bash"}}
STOP_LOG = {"monoimage-init": r"monoimage-init \| (\S+) stopped \((.*?)\)",
            "supervisord": r"stopped: (\S+) \((.*?)\)",
            "s6": r"finish (\S+): exit (.*)", "runit": r"finish (\S+): exit (.*)",
            "tini": r"stopped (\S+): exit (.*)"}
host_probes.PROBE_TIMEOUT = 0.2   # poll udp ports finely; a silent port is simply not ready yet


# --- the derived image --------------------------------------------------------------------

def derived_image(image: str, recipe: Recipe, password: str, tag: str) -> str:
    """The edge-lite image + the four supervisors + /bench/<variant>/…, committed as `tag`."""
    base = json.loads(json.dumps(eval_table(read_table(image))))   # a plain copy
    container = buildah.buildah("from", "--name", tag.split("/")[-1].split(":")[0] + "-work", image).strip()
    try:
        buildah.buildah("run", "--network", "host", "-v",
                        "/etc/apt/sources.list.d:/etc/apt/sources.list.d:ro", container, "--",
                        "sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
                        "apt-get install -y -qq --no-install-recommends " + " ".join(PACKAGES)
                        + " >/dev/null && rm -rf /var/lib/apt/lists/*")
        with tempfile.TemporaryDirectory() as staging:
            for variant, extra in VARIANTS.items():
                literal = repr({**base, "services": base["services"] + extra})
                table = parse_table(literal)
                lookup = SiteValues(dict(table.site), {**os.environ, **site_env(recipe, password)},
                                    "/nonexistent")
                where = f"{BENCH}/{variant}"
                for rel, (text, mode) in gen.bench_tree(table, lookup, where, literal).items():
                    path = Path(staging, variant, rel)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text)
                    path.chmod(mode)
            buildah.buildah("copy", container, staging, BENCH)
        buildah.buildah("commit", "--quiet", container, tag)
    finally:
        buildah.buildah("rm", container)
    return tag


def eval_table(text: str) -> dict:
    import ast
    return dict(ast.literal_eval(text))


def site_env(recipe: Recipe, password: str) -> dict[str, str]:
    return {SITE_ENV_PREFIX + name.upper(): os.environ.get(SITE_ENV_PREFIX + name.upper(),
                                                           password)
            for name in recipe.site_required}


# --- one container -------------------------------------------------------------------------

def start(recipe: Recipe, image: str, entrypoint: list[str], password: str) -> tuple[str, float]:
    name = f"monoimage-sup-{secrets.token_hex(4)}"
    spec = container_spec(recipe, image=image, name=name, ephemeral=True, host_ip="127.0.0.1",
                          random_host_ports=True)
    args = podman_run_args(spec)
    env = [a for k, v in site_env(recipe, password).items() for a in ("--env", f"{k}={v}")]
    began = time.monotonic()
    podman.run_detached(args[:-1] + env + ["--entrypoint", json.dumps(entrypoint), args[-1]])
    return name, began


def wait_answering(services: tuple, name: str, began: float, timeout: float = 30) -> float | None:
    """ms from `began` until every probed port answers from the host; None if not in time."""
    inspect = podman.container_inspect(name) or {}
    published = host_probes.published_ports(inspect)
    pending = [(s.name, p) for s in services for p in s.ports
               if host_probes.probe_kind(p) != "none"]
    while pending and time.monotonic() < began + timeout:
        pending = [(s, p) for s, p in pending
                   if host_probes.probe_port(s, p, published.get(str(p))).outcome != "ok"]
        if pending:
            time.sleep(0.005)
    return None if pending else (time.monotonic() - began) * 1000


def ns_processes(pid1: int) -> list[dict[str, object]]:
    """The container's processes, from the host's /proc: pid, ppid, comm, state, rss_kib."""
    try:
        ns = os.readlink(f"/proc/{pid1}/ns/pid")
    except OSError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") != ns:
                continue
            status = dict(line.split(":", 1) for line in
                          Path(f"/proc/{entry}/status").read_text().splitlines() if ":" in line)
        except OSError:
            continue
        found.append({"pid": int(entry), "ppid": int(status["PPid"]),
                      "comm": status["Name"].strip(), "state": status["State"].split()[0],
                      "rss_kib": int(status.get("VmRSS", "0 kB").split()[0])})
    return found


def pid1_of(name: str) -> int:
    return int((podman.container_inspect(name) or {}).get("State", {}).get("Pid") or 0)


def memory(kind: str, pid1: int) -> tuple[float, float]:
    """(PID 1's VmRSS, PID 1 + every supervision process) in MiB."""
    procs = ns_processes(pid1)
    own = sum(int(p["rss_kib"]) for p in procs if p["pid"] == pid1)  # type: ignore[call-overload]
    total = own + sum(int(p["rss_kib"]) for p in procs  # type: ignore[call-overload]
                      if p["pid"] != pid1 and p["comm"] in SUPERVISION[kind])
    return own / 1024, total / 1024


def orphans(name: str, pid1: int) -> int:
    """Zombies in the container 1 s after 2,000 orphans (10 batches of 200)."""
    podman.podman("exec", name, "sh", "-c", "for b in 1 2 3 4 5 6 7 8 9 10; do i=0; "
                  "while [ $i -lt 200 ]; do (sleep 0.01 &); i=$((i+1)); done; sleep 0.2; done",
                  timeout=120)
    time.sleep(1)
    return sum(1 for p in ns_processes(pid1) if p["state"] == "Z")


def sigterm(kind: str, name: str, pid1: int) -> dict[str, object]:
    """SIGTERM → gone: ms, exit code, service processes ended before PID 1, exit codes logged."""
    services = {int(p["pid"]) for p in ns_processes(pid1)  # type: ignore[call-overload]
                if p["pid"] != pid1 and p["comm"] not in SUPERVISION[kind]
                and p["state"] != "Z"}
    ended_before = 0
    began = time.monotonic()
    podman.podman("kill", "--signal", "TERM", name)
    alive = set(services)
    while os.path.exists(f"/proc/{pid1}") and Path(f"/proc/{pid1}/status").read_text().find(
            "State:\tZ") < 0:
        gone = {p for p in alive if not os.path.exists(f"/proc/{p}")}
        ended_before += len(gone)
        alive -= gone
        time.sleep(0.002)
    while (podman.container_inspect(name) or {}).get("State", {}).get("Running"):
        time.sleep(0.005)
    ms = (time.monotonic() - began) * 1000
    code = (podman.container_inspect(name) or {}).get("State", {}).get("ExitCode")
    logged = re.findall(STOP_LOG[kind], podman.logs(name, tail=400))
    return {"ms": ms, "exit": code, "before": ended_before, "of": len(services),
            "logged": len({n for n, _ in logged})}


# --- the measurements ------------------------------------------------------------------------

def timed_run(kind: str, recipe: Recipe, image: str, password: str) -> dict[str, object]:
    entry = gen.entrypoints(f"{BENCH}/seven")[kind]
    name, began = start(recipe, image, entry, password)
    try:
        ready = wait_answering(recipe.services, name, began)
        if ready is None:
            raise SystemExit(f"{kind}: not every port answered:\n{podman.logs(name)}")
        time.sleep(0.5)
        pid1 = pid1_of(name)
        rss1, rss = memory(kind, pid1)
        zombies = orphans(name, pid1)
        stop = sigterm(kind, name, pid1)
    finally:
        podman.remove(name)
    name, began = start(recipe, image, gen.entrypoints(f"{BENCH}/fifty")[kind], password)
    try:
        if wait_answering(recipe.services, name, began) is None:
            raise SystemExit(f"{kind} with 50 services: not ready:\n{podman.logs(name)}")
        time.sleep(1.0)
        rss50_1, rss50 = memory(kind, pid1_of(name))
    finally:
        podman.remove(name)
    return {"ready": ready, "rss1": rss1, "rss": rss, "rss50_1": rss50_1, "rss50": rss50,
            "zombies": zombies, **{f"stop_{k}": v for k, v in stop.items()}}


def behaviour(kind: str, recipe: Recipe, image: str, password: str) -> dict[str, str]:
    """The crash loop and the critical failure (once: these are behaviours, not timings)."""
    name, _ = start(recipe, image, gen.entrypoints(f"{BENCH}/crash")[kind], password)
    try:
        time.sleep(12)
        log = podman.logs(name, tail=2000)
        state = (podman.container_inspect(name) or {}).get("State", {})
        # the service's own line, not the init's "started crashloop …: sh -c 'echo …'"
        starts = sum(1 for line in log.splitlines()
                     if line.rstrip().endswith("crashloop started") and "echo" not in line)
        said = [line for line in log.splitlines()
                if "crashloop" in line and not line.rstrip().endswith("crashloop started")]
        crash = (f"{starts} starts in 12 s; "
                 + ("running" if state.get("Running") else f"container exited {state.get('ExitCode')}")
                 + (f"; «{said[-1].strip()[:70]}»" if said else "; PID 1 says nothing"))
    finally:
        podman.remove(name)
    name, began = start(recipe, image, gen.entrypoints(f"{BENCH}/critical")[kind], password)
    try:
        while time.monotonic() < began + 15:
            state = (podman.container_inspect(name) or {}).get("State", {})
            if not state.get("Running"):
                break
            time.sleep(0.05)
        critical = (f"exit {state.get('ExitCode')} after {time.monotonic() - began:.1f} s"
                    if not state.get("Running") else "still running after 15 s")
    finally:
        podman.remove(name)
    return {"crash": crash, "critical": critical}


def alone(recipe: Recipe, image: str,
          password: str) -> tuple[dict[str, float], dict[str, float], float]:
    """(each service's own start, its own stop, the slowest dependency chain's start) in ms:
    each service alone under tini, with the bench's prepare step, its own stop signal sent to
    the container. The chain: `podman run` until the container runs, then each service's own
    start after that (answering − running), summed along `depends_on`, the slowest chain."""
    table = parse_table(read_table(image))
    starts, stops, own, launches = {}, {}, {}, []
    for service in recipe.services:
        argv = table.service(service.name)
        launch = gen._as_user(argv.user, argv.group, argv.argv, "setpriv")
        entry = ["/usr/bin/tini", "--", "/bin/sh", "-c",
                 f"sh {BENCH}/seven/prepare.sh && {launch}"]
        name, began = start(recipe, image, entry, password)
        launched = (time.monotonic() - began) * 1000   # podman run -d returns once it runs
        try:
            ready = wait_answering((service,), name, began)
            if ready is None:
                raise SystemExit(f"{service.name} alone: not answering:\n{podman.logs(name)}")
            starts[service.name] = ready
            launches.append(launched)
            own[service.name] = ready - launched
            pid1 = pid1_of(name)
            stopped = time.monotonic()
            podman.podman("kill", "--signal", gen.signal_name(argv.stop_signal), name)
            while os.path.exists(f"/proc/{pid1}"):
                time.sleep(0.002)
            stops[service.name] = (time.monotonic() - stopped) * 1000
        finally:
            podman.remove(name)
    chains: dict[str, float] = {}
    for entry in table.services:   # dependency order
        if entry.name in own:
            chains[entry.name] = own[entry.name] + max(
                (chains[d] for d in entry.depends_on if d in chains), default=0.0)
    return starts, stops, statistics.median(launches) + max(chains.values())


def slowest(samples: list[dict[str, float]]) -> float:
    """The slowest service's median over the runs."""
    return max(statistics.median(s[name] for s in samples) for name in samples[0])


# --- the table ------------------------------------------------------------------------------

def spread(values: list[float], unit: str, fmt: str = "{:.0f}") -> str:
    if not values:
        return "-"
    median = fmt.format(statistics.median(values))
    if len(values) == 1:
        return f"{median} {unit}"
    return f"{median} {unit} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def ratio(values: list[float], ours: list[float]) -> str:
    if not values or not ours or statistics.median(ours) == 0:
        return ""
    return f" ×{statistics.median(values) / statistics.median(ours):.2f}"


def counted(runs: list[dict[str, object]], key: str, total: str | None) -> str:
    """`8/8` when every run agrees, else the range over the runs: `0–8/8`."""
    values = sorted(int(r[key]) for r in runs)  # type: ignore[call-overload]
    of = int(runs[-1][total]) if total else 7  # type: ignore[call-overload]
    seen = f"{values[0]}" if values[0] == values[-1] else f"{values[0]}–{values[-1]}"
    return f"{seen}/{of}"


def print_table(runs: dict[str, list[dict[str, object]]], behaviours: dict[str, dict[str, str]],
                own_start: list[dict[str, float]], own_stop: list[dict[str, float]],
                chain: list[float], image: str, count: int) -> None:
    def col(kind: str, key: str) -> list[float]:
        return [float(r[key]) for r in runs[kind]]  # type: ignore[arg-type]

    start_base = slowest(own_start)
    chain_base = statistics.median(chain)
    stop_base = slowest(own_stop)
    figures = [
        ("podman run → every port answers", "ready", "ms", "{:.0f}", 0.0),
        ("  overhead over the slowest service alone", "ready", "ms", "{:.0f}", start_base),
        ("  overhead over the slowest dependency chain alone", "ready", "ms", "{:.0f}",
         chain_base),
        ("PID 1 RSS, 7 services", "rss1", "MiB", "{:.1f}", 0.0),
        ("PID 1 + supervision RSS, 7 services", "rss", "MiB", "{:.1f}", 0.0),
        ("PID 1 RSS, 50 services", "rss50_1", "MiB", "{:.1f}", 0.0),
        ("PID 1 + supervision RSS, 50 services", "rss50", "MiB", "{:.1f}", 0.0),
        ("SIGTERM → container gone", "stop_ms", "ms", "{:.0f}", 0.0),
        ("  over the slowest service's own stop", "stop_ms", "ms", "{:.0f}", stop_base),
        ("zombies 1 s after 2,000 orphans", "zombies", "", "{:.0f}", 0.0),
    ]
    table = RichTable(title=f"{image}: 7 edge-lite services, small-host profile, {count} run(s); "
                      f"median (min–max) ×ratio to monoimage-init")
    table.add_column("")
    for kind in SUPERVISORS:
        table.add_column(kind, overflow="fold")
    for label, key, unit, fmt, base in figures:
        ours = [v - base for v in col("monoimage-init", key)]
        table.add_row(label, *(spread([v - base for v in col(k, key)], unit, fmt)
                               + ("" if unit == "" or base else ratio([v - base for v in col(k, key)],
                                                              ours))
                               for k in SUPERVISORS))
    table.add_row("services ended before PID 1 (rest SIGKILLed)", *(
        counted(runs[k], "stop_before", "stop_of") for k in SUPERVISORS))
    table.add_row("services whose exit was logged", *(
        counted(runs[k], "stop_logged", None) for k in SUPERVISORS))
    table.add_row("exit code after SIGTERM", *(
        ", ".join(sorted({str(r["stop_exit"]) for r in runs[k]})) for k in SUPERVISORS))
    table.add_row("crash-looping service", *(behaviours[k]["crash"] for k in SUPERVISORS))
    table.add_row("critical service exits 3", *(behaviours[k]["critical"] for k in SUPERVISORS))
    Console(width=200).print(table)
    print(f"slowest service alone (under tini, median per service): start {start_base:.0f} ms, "
          f"stop {stop_base:.0f} ms; slowest dependency chain alone: start {chain_base:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", default="localhost/edge-lite:latest")
    parser.add_argument("--recipe", default=str(Path(__file__).resolve().parents[1]
                                                / "recipes" / "edge-lite.yaml"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one run: a smoke test")
    args = parser.parse_args()
    count = 1 if args.quick else args.runs
    recipe = load_recipe(args.recipe)
    password = secrets.token_hex(12)
    tag = f"localhost/monoimage-sup-{secrets.token_hex(4)}:bench"
    print(f"building {tag} from {args.image} (+ {', '.join(PACKAGES)})", flush=True)
    image = derived_image(args.image, recipe, password, tag)
    try:
        runs: dict[str, list[dict[str, object]]] = {k: [] for k in SUPERVISORS}
        own_start, own_stop, chain = [], [], []
        name, _ = start(recipe, image, gen.entrypoints(f"{BENCH}/seven")["monoimage-init"],
                        password)   # a warm-up: the first container of a run starts cold
        wait_answering(recipe.services, name, time.monotonic())
        podman.remove(name)
        for run in range(count):
            print(f"run {run + 1}/{count}", flush=True)
            first, second, third = alone(recipe, image, password)
            own_start.append(first)
            own_stop.append(second)
            chain.append(third)
            for kind in SUPERVISORS:
                runs[kind].append(timed_run(kind, recipe, image, password))
        behaviours = {kind: behaviour(kind, recipe, image, password) for kind in SUPERVISORS}
        print_table(runs, behaviours, own_start, own_stop, chain, args.image, count)
    finally:
        podman.call("rmi", "--force", image)


if __name__ == "__main__":
    main()
