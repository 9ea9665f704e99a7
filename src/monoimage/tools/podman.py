"""A thin adapter over the `podman` CLI (through `sh`): plain values in, plain values out.

Every call goes through the one runner (`tools.run`): monoimage's own containers.conf (runc and
ulimits within this host's hard limits, see data/containers.conf) unless the user set
CONTAINERS_CONF; the host's configuration is never touched.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from monoimage.errors import UserError
from monoimage.tools.in_root import resolve_in_root
from monoimage.tools.run import Completed, ToolTimeout, run


class PodmanError(UserError):
    """A podman command failed; the message holds the command and podman's own last line."""


def call(*args: str, timeout: float | None = None, input: str | None = None) -> Completed:
    """Run `podman ARGS…` to its end, whatever its exit code (`input` on its stdin)."""
    try:
        return run(["podman", *args], check=False, timeout=timeout, input=input)
    except ToolTimeout:
        raise PodmanError(f"podman {' '.join(args[:2])}: no answer within {timeout:g} s") \
            from None


def podman(*args: str, timeout: float | None = None) -> str:
    """Run `podman ARGS…`; its stdout, or PodmanError with its stderr's last line."""
    done = call(*args, timeout=timeout)
    if done.exit_code != 0:
        raise PodmanError(f"podman {' '.join(args[:2])} failed: {last_line(done)}")
    return done.stdout


def last_line(done: Completed) -> str:
    """Podman's own message, without the systemd noise of hosts where systemd is not PID 1."""
    return done.last_line(ignore=("unable to get systemd connection",)).removeprefix("Error: ")


def image_inspect(ref: str) -> dict[str, Any]:
    """`podman image inspect REF`, or a UserError naming the image when it is not here."""
    done = call("image", "inspect", "--", ref)
    if done.exit_code != 0:
        raise PodmanError(f"image {ref}: not in local storage ({last_line(done)}); "
                          f"build it with `monoimage build` or pull it first")
    return dict(json.loads(done.stdout)[0])


def image_mount(ref: str) -> Path:
    """Mount the image read-only; unmount with `image_unmount`."""
    return Path(podman("image", "mount", "--", ref).strip())


def image_unmount(ref: str) -> None:
    call("image", "unmount", "--", ref)


def read_image_file(ref: str, path: str) -> str:
    """The text of `path` inside image `ref`, without starting it; links are resolved inside
    the image (one there must not read a file of this host). OSError when it is not there."""
    root = image_mount(ref)
    try:
        return (root / resolve_in_root(root, path).lstrip("/")).read_text(encoding="utf-8")
    finally:
        image_unmount(ref)


def run_detached(args: list[str]) -> str:
    """`podman run --detach ARGS…`: the new container's id."""
    return podman("run", "--detach", *args).strip()


def container_inspect(name: str) -> dict[str, Any] | None:
    """`podman container inspect NAME`, None once the container is gone."""
    done = call("container", "inspect", name)
    if done.exit_code != 0:
        return None
    return dict(json.loads(done.stdout)[0])


def healthcheck(name: str) -> Completed:
    """`podman healthcheck run NAME`: exit 0 healthy, 1 unhealthy, 125 an error."""
    return call("healthcheck", "run", name, timeout=60)


def exec_in(name: str, *argv: str, timeout: float = 30, options: tuple[str, ...] = (),
            input: str | None = None) -> Completed:
    """`podman exec [OPTIONS] NAME ARGV…`; `input` goes to the command's stdin (a secret
    stays off every argv)."""
    interactive = ("--interactive",) if input is not None else ()
    return call("exec", *interactive, *options, name, *argv, timeout=timeout, input=input)


def processes(name: str) -> list[dict[str, str]]:
    """The container's processes as `podman top` sees them: pid, ppid, state, comm."""
    done = call("top", name, "pid", "ppid", "state", "comm")
    if done.exit_code != 0:
        return []
    rows = [line.split(None, 3) for line in done.stdout.splitlines()[1:] if line.strip()]
    return [dict(zip(("pid", "ppid", "state", "comm"), row, strict=False)) for row in rows]


def stop(name: str, timeout: int) -> float:
    """`podman stop -t TIMEOUT NAME`; the seconds it took."""
    began = time.monotonic()
    podman("stop", "--time", str(timeout), name, timeout=timeout + 60)
    return time.monotonic() - began


def logs(name: str, tail: int = 40) -> str:
    done = call("logs", "--tail", str(tail), name)
    return done.stdout + done.stderr


def remove(name: str) -> None:
    """Remove the container and its anonymous volumes, running or not; gone is fine."""
    call("rm", "--force", "--volumes", "--time", "0", name)
