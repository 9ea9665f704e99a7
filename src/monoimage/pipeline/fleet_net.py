"""The fleet's network, made and always unmade: namespaces, shaped veths, relays, registries.

    core namespace:  origin docker-registry on :5000, mirror k (pull-through cache of the
                     origin) on :5001+k, one veth end `s<i>` per site (10.x.y.1/30)
    site namespace:  veth end `eth0` (10.x.y.2/30), a delaying relay on its loopback:
                     127.0.0.1:5000 → origin, 127.0.0.1:5001 → the site's mirror

Both ends of every site link are shaped with tc tbf to the site's bandwidth; the relay adds the
round-trip time (no netem here: tools/shaping.py). Addresses exist only inside these
namespaces. `fleet_network()` tears everything down when its block ends, however it ends
(an exception, Ctrl-C, SIGTERM turned into KeyboardInterrupt by the CLI): processes first, then
the namespaces, then the storage roots.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from monoimage.errors import UserError
from monoimage.tools import netns
from monoimage.tools.registry import Registry, serve_in_namespace, unmount_under
from monoimage.tools.run import Running, is_running, require, spawn, stop_group
from monoimage.tools.shaping import shape

ORIGIN_PORT = 5000
RELAY_GRACE = (5.0, 5.0)


@dataclass(frozen=True)
class SiteLink:
    """One site: its namespace, its link's two ends, and which mirror serves it."""

    index: int
    namespace: str
    core_device: str
    address: str
    core_address: str
    mirror: int

    @property
    def origin(self) -> str:
        """The origin registry as the site's pull client reaches it (through the relay)."""
        return f"127.0.0.1:{ORIGIN_PORT}"

    @property
    def via_mirror(self) -> str:
        return f"127.0.0.1:{ORIGIN_PORT + 1}"


@dataclass(frozen=True)
class FleetNetwork:
    """The running fleet network of one run."""

    token: str
    core: str
    origin: Registry
    mirrors: tuple[Registry, ...]
    sites: tuple[SiteLink, ...]
    scratch: Path

    def storage_root(self, site: SiteLink) -> Path:
        return self.scratch / f"site-{site.index}"

    def reset_storage(self) -> None:
        """Every site back to an empty containers-storage root."""
        for site in self.sites:
            root = self.storage_root(site)
            unmount_under(root)
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)


def site_addresses(index: int) -> tuple[str, str]:
    """The /30 of site `index`: (core end, site end), from 10.200.0.0/14."""
    second, third, slot = 200 + index // 16384, index // 64 % 256, index % 64
    base = f"10.{second}.{third}."
    return f"{base}{slot * 4 + 1}", f"{base}{slot * 4 + 2}"


@contextmanager
def fleet_network(sites: int, mirrors: int, bandwidth_bps: float, rtt_s: float,
                  start_timeout: float = 30.0) -> Iterator[FleetNetwork]:
    """Make the network for `sites` sites behind `mirrors` mirrors; unmake it afterwards."""
    if os.geteuid() != 0:
        raise UserError("monoimage fleet: network namespaces, veths and tc need root")
    for program in ("ip", "tc"):
        require(program)
    require("docker-registry")
    token = secrets.token_hex(3)
    scratch = Path(tempfile.mkdtemp(prefix=f"monoimage-fleet-{token}-", dir="/var/tmp"))
    with ExitStack() as stack:
        stack.callback(_remove_scratch, scratch)
        stack.callback(netns.remove_all, token)
        core = netns.name(token, "core")
        netns.add(core)
        origin = stack.enter_context(serve_in_namespace(core, ORIGIN_PORT))
        caches = tuple(stack.enter_context(serve_in_namespace(
            core, ORIGIN_PORT + 1 + k, remote=f"http://127.0.0.1:{ORIGIN_PORT}"))
            for k in range(mirrors))
        links = tuple(_site(token, core, i, i % mirrors, bandwidth_bps)
                      for i in range(sites))
        relays: list[Running] = []
        stack.callback(_stop_all, relays)
        for link in links:
            relays.append(_relay(link, rtt_s, scratch))
        _wait_ready(relays, links, scratch, start_timeout)
        network = FleetNetwork(token, core, origin, caches, links, scratch)
        network.reset_storage()
        yield network


def _site(token: str, core: str, index: int, mirror: int, bandwidth_bps: float) -> SiteLink:
    namespace = netns.name(token, f"s{index}")
    netns.add(namespace)
    core_end, site_end = site_addresses(index)
    device = f"s{index}"
    netns.veth((core, device), (namespace, "eth0"))
    netns.address(core, device, f"{core_end}/30")
    netns.address(namespace, "eth0", f"{site_end}/30")
    shape(core, device, bandwidth_bps)       # downloads: what the site pulls
    shape(namespace, "eth0", bandwidth_bps)  # uploads: its requests
    return SiteLink(index, namespace, device, site_end, core_end, mirror)


def _relay(link: SiteLink, rtt_s: float, scratch: Path) -> Running:
    argv = [sys.executable, "-m", "monoimage.tools.delay_relay", f"{rtt_s:.6f}",
            f"{ORIGIN_PORT}={link.core_address}:{ORIGIN_PORT}",
            f"{ORIGIN_PORT + 1}={link.core_address}:{ORIGIN_PORT + 1 + link.mirror}"]
    return spawn(netns.in_namespace(link.namespace, argv),
                 stdout=scratch / f"relay-{link.index}.log")


def _wait_ready(relays: list[Running], links: tuple[SiteLink, ...], scratch: Path,
                timeout: float) -> None:
    deadline = time.monotonic() + timeout + 0.2 * len(relays)
    for relay, link in zip(relays, links, strict=True):
        log = scratch / f"relay-{link.index}.log"
        while "ready" not in log.read_text(errors="replace"):
            if not is_running(relay) or time.monotonic() > deadline:
                raise UserError(f"site {link.index}'s delaying relay did not start: "
                                f"{log.read_text(errors='replace').strip()[-300:] or 'no output'}")
            time.sleep(0.05)


def _stop_all(processes: list[Running]) -> None:
    for process in processes:
        stop_group(process, RELAY_GRACE)


def _remove_scratch(scratch: Path, wait: float = 60.0) -> None:
    """Unmount what is under the run's folder and remove it. A mount point in it can stay busy
    for a while, as a namespace's file can (tools/netns.py: `remove_all`): tried again every
    half second for up to `wait` seconds."""
    deadline = time.monotonic() + wait
    while scratch.exists():
        unmount_under(scratch)
        shutil.rmtree(scratch, ignore_errors=True)
        if not scratch.exists() or time.monotonic() >= deadline:
            return
        time.sleep(0.5)
