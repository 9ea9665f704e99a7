"""Rate limits on a link, in the kernel: a `tc` token bucket filter (tbf) on a device's egress.

This kernel has no `netem` (`tc qdisc add … netem` answers "Specified qdisc kind is unknown",
and there is no module to load), so `tc` shapes the rate only; the link's delay comes from a
delaying relay in the site's namespace (tools/delay_relay.py).
"""

from __future__ import annotations

from monoimage.tools.run import run

MTU = 1500
# Queue at most this long before the bucket drops: long enough that TCP never sees a drop at
# these rates (the relay's buffers sit behind the shaper, not in front of it).
QUEUE_SECONDS = 0.5


def burst_bytes(rate_bps: float) -> int:
    """The bucket: 10 ms of traffic, and never less than a few full frames."""
    return max(4 * MTU, int(rate_bps / 8 * 0.010))


def shape(namespace: str, device: str, rate_bps: float) -> None:
    """Limit what leaves `device` in `namespace` to `rate_bps` bits per second."""
    run(["tc", "-n", namespace, "qdisc", "replace", "dev", device, "root", "tbf",
         "rate", f"{int(rate_bps)}bit", "burst", str(burst_bytes(rate_bps)),
         "latency", f"{int(QUEUE_SECONDS * 1000)}ms"], package="iproute2", what="tc")

