"""The working containers and temporary images of one build, removed whatever happens.

A build is atomic: everything it makes with buildah is named after its build id
(`monoimage-build-ID…` containers, `localhost/monoimage-tmp-ID…` images) and recorded here the
moment it exists, so that on success or on any failure (Ctrl-C included) `clean` removes it;
only the caller tags a finished image with its real name.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from monoimage.tools import buildah

TEMP_PREFIX = "localhost/monoimage-tmp-"
CONTAINER_PREFIX = "monoimage-build-"


class Workspace:
    """The containers and temporary images one build made, in the order it made them."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.containers: list[str] = []
        self.images: list[str] = []

    def container(self, image: str = "scratch", suffix: str | None = None) -> str:
        """A new working container over `image` (a local image, or scratch)."""
        name = self._name(CONTAINER_PREFIX, suffix, self.containers)
        if image == "scratch":
            return buildah.from_scratch(name)
        return buildah.from_image(name, image)

    def temporary_image(self, suffix: str | None = None) -> str:
        """A temporary image name of this build, recorded before anything commits to it."""
        return self._name(TEMP_PREFIX, suffix, self.images)

    def _name(self, prefix: str, suffix: str | None, made: list[str]) -> str:
        """PREFIX + build id + `suffix`; without one, the first is the bare name and the
        others are numbered. Recorded in `made` at once."""
        if suffix is None:
            suffix = f"-{len(made)}" if made else ""
        made.append(f"{prefix}{self.token}{suffix}")
        return made[-1]

    def commit(self, container: str, *, timestamp: int, image_format: str = "oci",
               squash: bool = False, suffix: str | None = None) -> str:
        """Commit `container` under a new temporary name; returns that name."""
        image = self.temporary_image(suffix)
        buildah.commit(container, image, timestamp=timestamp, image_format=image_format,
                       squash=squash)
        return image

    def drop(self, container: str) -> None:
        """Remove a finished container now (its image is committed)."""
        buildah.remove_container(container)
        self.containers.remove(container)

    def clean(self) -> None:
        """Remove every container, then every temporary image name (top first)."""
        for action, targets in ((buildah.remove_container, list(reversed(self.containers))),
                                (buildah.remove_image, list(reversed(self.images)))):
            for target in targets:
                _remove(action, target)


def _remove(action: Callable[[str], None], target: str) -> None:
    for attempt in range(3):
        try:
            action(target)
            return
        except buildah.BuildahError as err:
            if "not known" in str(err) or "unknown" in str(err) or attempt == 2:
                return  # never made, already gone, or the error that brought us here wins
            # an interrupted installer's last child may still be writing there
            time.sleep(2 * (attempt + 1))


@contextmanager
def workspace(token: str) -> Iterator[Workspace]:
    """A workspace cleaned when the block ends; a second Ctrl-C cannot stop the cleaning."""
    work = Workspace(token)
    try:
        yield work
    finally:
        uninterrupted(work.clean)


def uninterrupted(action: Callable[[], None]) -> None:
    """Run `action` with Ctrl-C ignored: a second Ctrl-C must not stop a cleanup."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: signals are not ours to manage
        previous = None
    try:
        action()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
