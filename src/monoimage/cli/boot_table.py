"""The services table `boot` prints, in both modes: state, readiness, RSS, restarts, probes."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from monoimage.pipeline.boot import ServiceStatus
from monoimage.pipeline.host_probes import HostProbe


def services_table(title: str, services: Sequence[ServiceStatus],
                   probes: Sequence[HostProbe]) -> Table:
    table = Table(title=title)
    for column in ("service", "state", "ready after", "RSS", "restarts", "from the host"):
        table.add_column(column, justify="right" if column in ("ready after", "RSS",
                                                               "restarts") else "left")
    by_service: dict[str, list[str]] = {}
    for probe in probes:
        mark = {"ok": "✓", "failed": "✗", "skipped": "–"}[probe.outcome]
        by_service.setdefault(probe.service, []).append(f"{mark} {probe.port} {probe.detail}")
    for service in services:
        table.add_row(service.name, service.state,
                      "-" if service.ready_after_ms is None else f"{service.ready_after_ms} ms",
                      "-" if service.rss_kib is None else f"{service.rss_kib / 1024:.1f} MiB",
                      str(service.restarts), "\n".join(by_service.get(service.name, [])))
    return table
