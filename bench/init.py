"""The golden image under podman, the way `monoimage boot --profile small-host` runs it:

- time from `podman run` until every service is ready (the init's own ready times, on the
  host's clock), and until podman's health check first passes;
- monoimage-init's own RSS (VmRSS of the container's PID 1) once everything runs, beside the
  RSS of a bare interpreter as PID 1 of the same image under the same options (`python3 -I -S`
  with the init's flags, sleeping): the floor the init cannot go below;
- time from SIGTERM to exit: `podman stop` as a host runs it, and `podman kill -s TERM`
  followed by waiting for the container to end (less podman bookkeeping).

Prints figures; asserts nothing. Usage:
    python bench/init.py [IMAGE] [--recipe RECIPE] [--runs N]      (default localhost/edge-lite:latest)
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from monoimage.image import IMAGE_PYTHON
from monoimage.init.render import SITE_ENV_PREFIX
from monoimage.pipeline.boot import (
    boot,
    init_rss_kib,
    read_table,
    recipe_from_image,
    wait_healthy,
)
from monoimage.plan.run_profile import ContainerSpec, container_spec, podman_run_args
from monoimage.recipe.load import load_recipe
from monoimage.recipe.model import Recipe
from monoimage.tools import podman


def bench_spec(image: str, recipe: Recipe) -> ContainerSpec:
    """The small-host spec `boot` uses, with a fresh container name."""
    return container_spec(recipe, image=image, name=f"monoimage-bench-{secrets.token_hex(3)}",
                          ephemeral=True, host_ip="127.0.0.1", random_host_ports=True)


def bare_interpreter_kib(image: str, recipe: Recipe) -> int:
    """VmRSS of `python3 -I -S` (the init's interpreter and flags) sleeping as PID 1 of the
    image, started with the same podman options as the init."""
    spec = bench_spec(image, recipe)
    args = podman_run_args(spec)
    sleeper = "import time; time.sleep(3600)"
    try:
        podman.run_detached(args[:-1] + ["--entrypoint", json.dumps([IMAGE_PYTHON, "-I", "-S",
                                                                     "-c", sleeper]),
                                         args[-1]])
        time.sleep(1.0)
        rss = init_rss_kib(spec.name)
        if rss is None:
            raise SystemExit(f"no RSS for the bare interpreter: {podman.logs(spec.name)}")
        return rss
    finally:
        podman.remove(spec.name)


def sigterm_to_exit(image: str, recipe: Recipe) -> float:
    """Seconds from `podman kill -s TERM` to the container's end, once it is healthy."""
    spec = bench_spec(image, recipe)
    # Site values without a default (secrets) come from this process's environment (main).
    given = [arg for name in recipe.site_required
             for arg in ("--env", SITE_ENV_PREFIX + name.upper())]
    try:
        podman.run_detached(given + podman_run_args(spec))
        healthy, _, _ = wait_healthy(spec.name, time.monotonic() + 120)
        if not healthy:
            raise SystemExit(f"{image} did not become healthy: {podman.logs(spec.name)}")
        began = time.monotonic()
        podman.podman("kill", "--signal", "TERM", spec.name)
        while (podman.container_inspect(spec.name) or {}).get("State", {}).get("Running"):
            time.sleep(0.005)
        return time.monotonic() - began
    finally:
        podman.remove(spec.name)


def line(label: str, values: list[float], unit: str) -> str:
    if not values:
        return f"{label:<38} -"
    digits = 2 if unit == "MiB" else 1
    return (f"{label:<38} median {statistics.median(values):8.{digits}f} {unit}   "
            f"min {min(values):8.{digits}f}   max {max(values):8.{digits}f}   (n={len(values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", default="localhost/edge-lite:latest")
    parser.add_argument("--recipe")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    recipe = load_recipe(args.recipe) if args.recipe else None
    facts = recipe or recipe_from_image(args.image, podman.image_inspect(args.image),
                                        read_table(args.image))[0]
    for name in facts.site_required:  # a throwaway value for each secret the image needs
        os.environ.setdefault(SITE_ENV_PREFIX + name.upper(), secrets.token_hex(12))

    ready, healthy, rss, bare, stop, term = [], [], [], [], [], []
    services: dict[str, list[float]] = {}
    for run in range(args.runs):
        report = boot(args.image, recipe, name=f"monoimage-bench-{secrets.token_hex(3)}")
        if not report.ok:
            raise SystemExit(f"run {run + 1}: not healthy: {'; '.join(report.problems)}")
        ready.append(report.time_to_ready_ms or 0.0)
        healthy.append(report.time_to_healthy_ms or 0.0)
        rss.append((report.init_rss_kib or 0) / 1024)
        stop.append((report.stop_seconds or 0.0) * 1000)
        for service in report.services:
            services.setdefault(service.name, []).append((service.rss_kib or 0) / 1024)
        term.append(sigterm_to_exit(args.image, facts) * 1000)
        bare.append(bare_interpreter_kib(args.image, facts) / 1024)

    print(f"{args.image}, profile small-host, {args.runs} runs, "
          f"{len(services)} services ({', '.join(services)})")
    print(line("podman run → every service ready", ready, "ms"))
    print(line("podman run → health check passes", healthy, "ms"))
    print(line("monoimage-init RSS (PID 1)", rss, "MiB"))
    print(line(f"bare {IMAGE_PYTHON} -I -S RSS (PID 1)", bare, "MiB"))
    print(f"{'  the init over the bare interpreter':<38} "
          f"       {statistics.median(rss) - statistics.median(bare):8.2f} MiB")
    print(line("podman stop (SIGTERM → exit, podman's)", stop, "ms"))
    print(line("kill -s TERM → container ended", term, "ms"))
    total = sum(statistics.median(v) for v in services.values())
    print(f"{'services RSS, sum of medians':<38} {total:8.1f} MiB")


if __name__ == "__main__":
    main()
