"""A thin adapter over the `buildah` CLI (through `sh`): plain values in, plain values out.

Every call runs with monoimage's own containers.conf (runc, ulimits within this host's hard
limits) unless the user already set CONTAINERS_CONF; the host's configuration is never touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sh

from monoimage.errors import MissingToolError, UserError
from monoimage.image import BASE_ANNOTATIONS

CONTAINERS_CONF = Path(__file__).parents[1] / "data" / "containers.conf"


class BuildahError(UserError):
    """A buildah command failed; the message holds the command and buildah's own last lines."""


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    return env


def buildah(*args: str) -> str:
    """Run `buildah ARGS…`; its stdout, or BuildahError with its stderr."""
    try:
        command = sh.Command("buildah")
    except sh.CommandNotFound:
        raise MissingToolError("buildah", "buildah") from None
    running = command(*args, _env=environment(), _tty_out=False, _bg=True, _bg_exc=False)
    try:
        running.wait()
    except sh.ErrorReturnCode as err:
        stderr = err.stderr.decode(errors="replace").strip().splitlines()
        raise BuildahError(f"buildah {args[0]} failed: "
                           f"{stderr[-1] if stderr else f'exit {err.exit_code}'}") from None
    except BaseException:
        # Ctrl-C: stop buildah as a terminal's Ctrl-C would, and wait, so that a commit
        # cannot finish behind our back after the cleanup removed the temporary names.
        _interrupt(running)
        raise
    return str(running)


def _interrupt(running: sh.RunningCommand) -> None:
    try:
        running.signal(signal.SIGINT)
        running.wait(timeout=60)
    except Exception:  # noqa: BLE001 - it has ended, or will be killed: nothing else to do
        with contextlib.suppress(Exception):
            running.kill()


def from_scratch(name: str) -> str:
    """A new working container over no image; returns its name."""
    return buildah("from", "--name", name, "scratch").strip()


def from_image(name: str, image: str) -> str:
    """A new working container over a local image (never pulled); returns its name."""
    return buildah("from", "--name", name, "--pull-never", image).strip()




def forget_base(container: str) -> None:
    """Drop the annotations naming the image a container was made from.

    `buildah commit` writes the base image's name and manifest digest into the new image's
    manifest; a temporary base's name (and so its digest) differs from build to build.
    """
    args = ["config"]
    for key in BASE_ANNOTATIONS:
        args += ["--annotation", f"{key}-"]
    buildah(*args, container)


def mount(container: str) -> Path:
    return Path(buildah("mount", container).strip())


def umount(container: str) -> None:
    buildah("umount", container)


def remove_container(container: str) -> None:
    buildah("rm", container)


@dataclass(frozen=True)
class ImageConfig:
    """What `buildah config` sets: the runtime view of the image."""

    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    workingdir: str = "/"
    ports: tuple[str, ...] = ()  # "1883/tcp"
    volumes: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    stop_signal: str = "SIGTERM"
    healthcheck: tuple[str, ...] | None = None  # kept only in docker format
    healthcheck_interval: str = "30s"
    created_by: str = "monoimage build"


def configure(container: str, config: ImageConfig) -> None:
    """Apply `config` to a working container in one `buildah config` call."""
    args = ["config", "--entrypoint", json.dumps(list(config.entrypoint)),
            "--workingdir", config.workingdir, "--stop-signal", config.stop_signal,
            "--created-by", config.created_by]
    if config.cmd:
        args += ["--cmd", json.dumps(list(config.cmd))]
    for key, value in config.env:
        args += ["--env", f"{key}={value}"]
    for port in config.ports:
        args += ["--port", port]
    for volume in config.volumes:
        args += ["--volume", volume]
    for key, value in config.labels:
        args += ["--label", f"{key}={value}"]
    for key, value in config.annotations:
        args += ["--annotation", f"{key}={value}"]
    if config.healthcheck is not None:
        args += ["--healthcheck", "CMD " + json.dumps(list(config.healthcheck)),
                 "--healthcheck-interval", config.healthcheck_interval]
    buildah(*args, container)


def commit(container: str, image: str, *, timestamp: int, image_format: str = "oci",
           squash: bool = True) -> str:
    """Commit without history noise and at a fixed time; returns the new image id.

    `squash`: one layer for the whole root; without it, one new layer over the container's
    image, holding only what the container added.
    """
    out = buildah("commit", "--quiet", "--format", image_format, "--timestamp", str(timestamp),
                  "--omit-history", "--identity-label=false", *(("--squash",) if squash else ()),
                  "--rm=false", container, image)
    return out.strip().splitlines()[-1]


def tag(image: str, *names: str) -> None:
    buildah("tag", image, *names)


def remove_image(ref: str) -> None:
    """Remove a name; the image itself goes only once it has no other name."""
    buildah("rmi", ref)


def image_id(ref: str) -> str | None:
    """The id of the image `ref` names, or None if there is none."""
    try:
        return inspect_image(ref)["FromImageID"]  # type: ignore[no-any-return]
    except BuildahError:
        return None


def inspect_image(ref: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(buildah("inspect", "--type", "image", ref))
    return data


def containers() -> list[dict[str, Any]]:
    """Every working container: [{id, name, image, …}] as `buildah containers --json` says."""
    out = buildah("containers", "--json").strip()
    return list(json.loads(out)) if out and out != "null" else []


def images() -> list[dict[str, Any]]:
    out = buildah("images", "--json").strip()
    return list(json.loads(out)) if out and out != "null" else []


def run(container: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """Run a command inside a working container; its stdout."""
    args = ["run", "--isolation", "chroot"]
    for key, value in (env or {}).items():
        args += ["--env", f"{key}={value}"]
    return buildah(*args, container, "--", *argv)
