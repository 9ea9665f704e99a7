"""One edge site's pull client, run as its own process inside the site's network namespace.

    python -m monoimage.tools.site_agent pull|update ROOT REGISTRY GO_FILE REPO:TAG...
    python -m monoimage.tools.site_agent poll - REGISTRY GO_FILE INTERVAL SECONDS REPO:TAG...

Every site of a rollout is started ahead of time, says `waiting`, and waits until GO_FILE
exists (looking every 20 ms), so Python's start-up does not count as rollout time and every
site starts within 20 ms of the others. `pull` copies every image into the site's own
containers-storage ROOT with skopeo
(tools/registry.py's `Site`); `update` does what `podman auto-update` does: a manifest HEAD per
image, and a pull of the images whose digest changed; `poll` sends the HEADs every INTERVAL
seconds for SECONDS, as a fleet of idle sites checking for updates does. It prints one JSON
line: when it started and ended, and what it pulled.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from monoimage.tools.registry import Site, remote_digest


def _wait_for(go: Path) -> float:
    print("waiting", flush=True)
    while not go.exists():
        if not go.parent.is_dir():  # the run is gone: nobody will say go
            raise SystemExit("site_agent: the fleet run ended before it started")
        time.sleep(0.02)  # 100 sites looking more often would load the host
    return time.monotonic()


def _client_cpu() -> float:
    """CPU seconds of the programs this client ran (skopeo), user and system."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def main(argv: list[str]) -> int:
    mode, root, registry, go = argv[0], argv[1], argv[2], Path(argv[3])
    if mode == "poll":
        interval, seconds, tags = float(argv[4]), float(argv[5]), argv[6:]
        start = _wait_for(go)
        checks, due = 0, start
        while due < start + seconds:
            for tag in tags:
                remote_digest(registry, tag)
                checks += 1
            due += interval
            time.sleep(max(0.0, due - time.monotonic()))
        print(json.dumps({"start": start, "checks": checks, "end": time.monotonic()}))
        return 0
    tags = argv[4:]
    site = Site(Path(root))
    start = _wait_for(go)
    if mode == "pull":
        site.pull(registry, tags)
        pulled = tuple(tags)
    elif mode == "update":
        pulled = site.update(registry, tags)
    else:
        raise SystemExit(f"site_agent: unknown mode {mode!r}")
    print(json.dumps({"start": start, "end": time.monotonic(), "pulled": list(pulled),
                      "cpu": _client_cpu()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
