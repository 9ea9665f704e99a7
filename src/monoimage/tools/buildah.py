"""A thin adapter over the `buildah` CLI (through `sh`): plain values in, plain values out.

Every call goes through the one runner (`tools.run`): monoimage's own containers.conf unless
the user set CONTAINERS_CONF, Ctrl-C passed on to buildah's process group and awaited, so that a
commit cannot finish behind our back after the cleanup removed the temporary names.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monoimage.errors import UserError
from monoimage.image import BASE_ANNOTATIONS
from monoimage.plan.image_config import ImageConfig
from monoimage.tools.run import Completed
from monoimage.tools.run import run as run_program


class BuildahError(UserError):
    """A buildah command failed; the message holds the command and buildah's own last lines."""


def buildah(*args: str) -> str:
    """Run `buildah ARGS…`; its stdout, or BuildahError with its stderr's last line."""
    return call(*args, check=True).stdout


def call(*args: str, check: bool = False) -> Completed:
    """Run `buildah ARGS…` to its end; with `check`, a failure is a BuildahError."""
    done = run_program(["buildah", *args], check=False)
    if check and not done.ok:
        raise BuildahError(f"buildah {args[0]} failed: {done.last_line()}")
    return done


def from_scratch(name: str) -> str:
    """A new working container over no image; returns its name."""
    return buildah("from", "--name", name, "scratch").strip()


def from_image(name: str, image: str) -> str:
    """A new working container over a local image (never pulled); returns its name."""
    return buildah("from", "--name", name, "--pull-never", "--", image).strip()




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


def unset_labels(container: str, keys: Sequence[str]) -> None:
    """Remove these labels from a working container's config (a base image's, say)."""
    if keys:
        buildah("config", *(arg for key in keys for arg in ("--label", f"{key}-")), container)


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
        # buildah splits the text after CMD into words itself (a JSON list would be words too)
        args += ["--healthcheck", "CMD " + shlex.join(config.healthcheck),
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
                  "--rm=false", "--", container, image)
    return out.strip().splitlines()[-1]


def tag(image: str, *names: str) -> None:
    buildah("tag", "--", image, *names)


def remove_image(ref: str) -> None:
    """Remove a name; the image itself goes only once it has no other name."""
    buildah("rmi", "--", ref)


def image_id(ref: str) -> str | None:
    """The id of the image `ref` names, or None if there is none."""
    try:
        return inspect_image(ref)["FromImageID"]  # type: ignore[no-any-return]
    except BuildahError:
        return None


def inspect_image(ref: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(buildah("inspect", "--type", "image", "--", ref))
    return data


def containers() -> list[dict[str, Any]]:
    """Every working container: [{id, name, image, …}] as `buildah containers --json` says."""
    return _listing("containers")


def images() -> list[dict[str, Any]]:
    return _listing("images")


def _listing(kind: str, attempts: int = 5) -> list[dict[str, Any]]:
    """`buildah KIND --json`; a listing that raced another run's removal ("image not known",
    "container not known") is taken again."""
    for _ in range(attempts):
        done = call(kind, "--json")
        if done.ok or "not known" not in done.stderr:
            break
    if not done.ok:
        raise BuildahError(f"buildah {kind} failed: {done.last_line()}")
    out = done.stdout.strip()
    return list(json.loads(out)) if out and out != "null" else []


def run(container: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """Run a command inside a working container; its stdout."""
    return run_in(container, argv, env=env, hosts=True, check=True).stdout


def run_in(container: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
           volumes: Sequence[tuple[Path, str, str]] = (), hosts: bool = False,
           check: bool = False) -> Completed:
    """`buildah run` in `container` (chroot isolation), whatever its exit code.

    `hosts`: let buildah provide /etc/hosts (an install must not find a file buildah made).

    `volumes`: (host path, container path, "ro"|"rw") bind mounts for this run only. The whole
    output comes back, so a caller can show the program's own lines, not only buildah's last.
    """
    args = ["run", "--isolation", "chroot", *(() if hosts else ("--no-hosts",))]
    for host_path, path, mode in volumes:
        args += ["--volume", f"{host_path}:{path}:{mode}"]
    for key, value in (env or {}).items():
        args += ["--env", f"{key}={value}"]
    return call(*args, container, "--", *argv, check=check)
