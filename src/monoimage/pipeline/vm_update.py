"""Day 2 on the VM host: a new image under the same tag, `podman auto-update` in the VM, and
its automatic rollback when the new image never becomes ready.

`update_in_vm()` pushes the new image to the session's registry under the tag the host runs,
runs `podman auto-update` (rollback on, podman's default) in the VM and reports what podman
said, the bytes the VM pulled (counted on the wire), how long it took, which image runs after
it and whether every service is ready again. podman restarts the unit with the new image; the
unit is "started" only when monoimage-init says READY=1 (Quadlet `Notify=true`), so a new image
whose critical service never gets ready fails the restart and podman goes back to the previous
image by itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from monoimage.pipeline.boot import ServiceStatus, services_of
from monoimage.pipeline.vm_boot import guest, read_status, wait_ready
from monoimage.pipeline.vm_session import VmSession
from monoimage.tools.registry import push


@dataclass(frozen=True)
class UpdateReport:
    pushed: str                       # the build host image pushed under the running tag
    auto_update: str                  # podman auto-update's own table
    outcome: str                      # podman's UPDATED column: true, false, rolled back…
    seconds: float                    # podman auto-update's wall time
    pulled_bytes: int
    pull_requests: int
    image_before: str                 # image ID the container ran before
    image_after: str                  # and after
    ready_after: bool                 # every service ready again (health check passed)
    ready_seconds: float | None       # auto-update start → health check passing again
    services: tuple[ServiceStatus, ...]


def running_image(session: VmSession) -> str:
    done = guest(session, "podman", "container", "inspect", "--format", "{{.Image}}", "--",
                 session.spec.name)
    return done.stdout.strip() if done.ok else ""


def update_in_vm(session: VmSession, new_image: str, timeout: float = 900.0) -> UpdateReport:
    """Push `new_image` under the running tag and let the VM's `podman auto-update` take it."""
    push(session.registry, new_image, session.repo_tag)
    session.proxy.take()
    before = running_image(session)
    began = time.monotonic()
    done = guest(session, "podman", "auto-update", "--format",
                 "{{.Unit}}\t{{.Image}}\t{{.Policy}}\t{{.Updated}}", timeout=timeout)
    seconds = time.monotonic() - began
    pulled = session.proxy.take()
    ours = [line.split("\t") for line in done.stdout.splitlines()
            if line.startswith(session.unit + "\t")]
    outcome = ours[0][3] if ours and len(ours[0]) > 3 else \
        f"podman auto-update exit {done.exit_code}: {done.last_line()}"
    healthy, _ = wait_ready(session, time.monotonic() + timeout)
    ready = time.monotonic() - began if healthy else None
    services = services_of(read_status(session)) if healthy else ()
    return UpdateReport(pushed=new_image, auto_update=(done.stdout + done.stderr).strip(),
                        outcome=outcome, seconds=seconds, pulled_bytes=pulled.bytes_served,
                        pull_requests=len(pulled.requests), image_before=before,
                        image_after=running_image(session), ready_after=healthy,
                        ready_seconds=ready, services=services)
