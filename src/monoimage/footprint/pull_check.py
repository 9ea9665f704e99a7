"""Pull checks (pure): what a real registry served to a site, next to what footprint computed.

`tools/registry.py` runs the registry, the sites and the pulls; this module holds what they
measure (request by request, as the counting proxy saw it) and compares it with the figures of
a `FootprintReport`, first deploy and day 2.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from monoimage.footprint.figures import FootprintReport


@dataclass(frozen=True)
class Served:
    """One request answered: method, path, status, response body bytes written, and the
    client's address when the registry's log says it."""

    method: str
    path: str
    status: int
    body_bytes: int
    client: str = ""


@dataclass(frozen=True)
class PullMeasure:
    """What the registry served during one site pull, request by request."""

    requests: tuple[Served, ...]

    @property
    def bytes_served(self) -> int:
        """Response body bytes of every request (pings and errors included)."""
        return sum(r.body_bytes for r in self.requests)

    @property
    def blob_bytes(self) -> int:
        """Bytes of successful manifest and blob GETs: what the footprint counts (a registry's
        access log records a manifest HEAD with the manifest's length, though it sends none)."""
        return sum(r.body_bytes for r in self.requests
                   if r.status == 200 and r.method == "GET"
                   and ("/blobs/" in r.path or "/manifests/" in r.path))

    def count(self, method: str, kind: str) -> int:
        """How many `method` requests went to `kind` ('manifests' or 'blobs')."""
        return sum(1 for r in self.requests if r.method == method and f"/{kind}/" in r.path)


@dataclass(frozen=True)
class Deployment:
    """The local images one strategy's site runs; `updated`: the same images after an update."""

    name: str
    images: tuple[str, ...]
    updated: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.updated and len(self.updated) != len(self.images):
            raise ValueError(f"{self.name}: {len(self.images)} images but "
                             f"{len(self.updated)} updated images")


@dataclass(frozen=True)
class MeasuredPull:
    """Bytes a real registry served to an empty site, and then for the day-2 update."""

    name: str
    first_deploy: PullMeasure
    day2: PullMeasure | None


def repo_tags(deployment: Deployment) -> tuple[str, ...]:
    """Registry repo:tag names for a deployment's images: `<strategy>/<image>:site`."""
    def clean(text: str) -> str:
        return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "image"

    names = []
    for index, ref in enumerate(deployment.images):
        base = clean(ref.split("@")[0].rsplit("/", 1)[-1].split(":")[0])
        names.append(f"{clean(deployment.name)}/{index:02d}-{base}:site")
    return tuple(names)


@dataclass(frozen=True)
class PullCheck:
    """One computed figure next to the bytes a real registry served for it."""

    name: str
    figure: str  # "first-deploy" or "day-2"
    computed: int
    served: int

    @property
    def relative_error(self) -> float:
        if self.computed == 0:
            return 0.0 if self.served == 0 else math.inf
        return abs(self.served - self.computed) / self.computed

    def agrees(self, tolerance: float = 0.01) -> bool:
        """Within `tolerance` (relative; the design asks for 1%)."""
        return self.relative_error <= tolerance


def check_pulls(report: FootprintReport, measured: Sequence[MeasuredPull]
                ) -> tuple[PullCheck, ...]:
    """Each strategy's computed first-deploy and day-2 bytes against what was served."""
    served = {m.name: m for m in measured}
    checks = []
    for figures in report.strategies:
        pull = served.get(figures.name)
        if pull is None:
            continue
        checks.append(PullCheck(figures.name, "first-deploy", figures.first_deploy.bytes,
                                pull.first_deploy.blob_bytes))
        if figures.day2 is not None and pull.day2 is not None:
            checks.append(PullCheck(figures.name, "day-2", figures.day2.bytes,
                                    pull.day2.blob_bytes))
    return tuple(checks)
