"""Network namespaces and veth pairs with `ip` (iproute2): the fleet simulation's wiring.

Every namespace this module makes is named `monoimage-fleet-<token>-<role>`, so a run finds and
removes exactly its own (`remove_all(token)`) and never another program's. A veth pair is made
with both ends already in their namespaces, so no address ever appears in the host's own
network namespace; deleting a namespace deletes the veth ends inside it (and so their peers).

Processes inside a namespace are not stopped by `ip netns delete`: the caller stops them first
(pipeline/fleet_net.py does, through tools/run.py's process groups).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from monoimage.tools.run import run

PREFIX = "monoimage-fleet-"


@dataclass(frozen=True)
class Counters:
    """A device's byte counters as the kernel keeps them (frames on the wire, headers included)."""

    tx_bytes: int
    rx_bytes: int


def name(token: str, role: str) -> str:
    """The namespace name of one role (`core`, `s12`) of the run `token`."""
    return f"{PREFIX}{token}-{role}"


def ip(*args: str) -> str:
    """Run `ip ARGS…`; its stdout."""
    return run(["ip", *args], package="iproute2", what="ip").stdout


def add(namespace: str) -> None:
    """A new namespace with its loopback up."""
    ip("netns", "add", namespace)
    ip("-n", namespace, "link", "set", "lo", "up")


def delete(namespace: str) -> None:
    """Remove a namespace (and the devices in it); one already gone is fine."""
    run(["ip", "netns", "delete", namespace], check=False, package="iproute2")


def ours(token: str) -> list[str]:
    """The namespaces of run `token` that exist now."""
    return [n for n in _listed() if n.startswith(f"{PREFIX}{token}-")]


def _listed() -> list[str]:
    listed = run(["ip", "-j", "netns", "list"], package="iproute2", check=False).stdout
    return [entry["name"] for entry in json.loads(listed or "[]")]


def remove_all(token: str, wait: float = 60.0) -> None:
    """Delete every namespace of run `token`.

    A namespace's file under /run/netns stays busy while another mount namespace holds a copy
    of its mount (one made meanwhile by any program: a build's unshare, say), and `ip netns
    delete` fails: what is left is tried again every half second for up to `wait` seconds."""
    deadline = time.monotonic() + wait
    left = ours(token)
    while left:
        for namespace in left:
            delete(namespace)
        left = ours(token)
        if left:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.5)


def in_namespace(namespace: str, argv: Sequence[str]) -> list[str]:
    """`argv` run inside `namespace` (network only: files and processes are the host's)."""
    return ["ip", "netns", "exec", namespace, *argv]


def veth(first: tuple[str, str], second: tuple[str, str]) -> None:
    """A veth pair from (namespace, device) to (namespace, device), both ends up."""
    (ns_a, dev_a), (ns_b, dev_b) = first, second
    ip("link", "add", dev_a, "netns", ns_a, "type", "veth", "peer", "name", dev_b,
       "netns", ns_b)
    ip("-n", ns_a, "link", "set", dev_a, "up")
    ip("-n", ns_b, "link", "set", dev_b, "up")


def address(namespace: str, device: str, cidr: str) -> None:
    """Give `device` in `namespace` the address `cidr` (10.x.y.z/30)."""
    ip("-n", namespace, "addr", "add", cidr, "dev", device)


def counters(namespace: str) -> dict[str, Counters]:
    """The kernel's byte counters of every device in `namespace` (`ip -s -j`: /sys is the
    host's inside a netns)."""
    shown = json.loads(ip("-n", namespace, "-s", "-j", "link", "show"))
    return {dev["ifname"]: Counters(int(dev["stats64"]["tx"]["bytes"]),
                                    int(dev["stats64"]["rx"]["bytes"])) for dev in shown}
