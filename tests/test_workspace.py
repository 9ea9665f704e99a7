"""What every build checks and cleans: the installed packages against the resolution, and the
removal of its temporaries, retried while something still holds them."""

from __future__ import annotations

import secrets

import pytest

from monoimage.errors import UserError
from monoimage.pipeline.rootfs import check_installed
from monoimage.pipeline.workspace import _remove
from monoimage.plan.resolution import InstalledPackage, ResolvedPackage
from monoimage.tools import buildah


def resolved(name: str, version: str) -> ResolvedPackage:
    return ResolvedPackage(name, version, "amd64", 1, 1)


def installed(name: str, version: str) -> InstalledPackage:
    return InstalledPackage(name, version, "amd64", 1)


def test_the_installed_packages_must_be_the_resolved_ones() -> None:
    check_installed([resolved("libc6", "2.36-9"), resolved("nginx", "1.22.1-9")],
                    [installed("nginx", "1.22.1-9"), installed("libc6", "2.36-9")])


def test_a_root_that_differs_from_the_resolution_names_what_is_extra_and_missing() -> None:
    with pytest.raises(UserError) as caught:
        check_installed([resolved("libc6", "2.36-9"), resolved("nginx", "1.22.1-9")],
                        [installed("libc6", "2.36-9"), installed("nginx", "1.22.1-9+deb12u1"),
                         installed("adduser", "3.134")],
                        what="a layered image's packages")
    assert str(caught.value) == (
        "a layered image's packages differ from the resolution (did the repositories change "
        "during the build?): extra adduser=3.134, nginx=1.22.1-9+deb12u1; missing "
        "nginx=1.22.1-9")


def test_nothing_missing_is_said_so() -> None:
    with pytest.raises(UserError, match=r"extra adduser=3\.134; missing none$"):
        check_installed([], [installed("adduser", "3.134")])


@pytest.mark.tools
def test_a_removal_that_fails_while_something_holds_the_image_is_retried() -> None:
    """A temporary image still used by a working container (as when an interrupted
    installer's last child still holds it): the first `buildah rmi` really fails; once the
    container is gone, the retry removes the image."""
    token = secrets.token_hex(4)
    holder = buildah.from_scratch(f"monoimage-test-holder-{token}")
    image = f"localhost/monoimage-test-held-{token}:t"
    attempts: list[str] = []
    try:
        buildah.commit(holder, image, timestamp=0)
        user = buildah.from_image(f"monoimage-test-user-{token}", image)

        def remove_image(ref: str) -> None:
            try:
                buildah.remove_image(ref)
                attempts.append("removed")
            except buildah.BuildahError as err:
                attempts.append(str(err))
                buildah.remove_container(user)   # what held it is gone now
                raise

        _remove(remove_image, image)
    finally:
        for container in (holder, f"monoimage-test-user-{token}"):
            _remove(buildah.remove_container, container)
        _remove(buildah.remove_image, image)
    assert len(attempts) == 2 and attempts[1] == "removed", attempts
    assert "image is in use by a container" in attempts[0]
    assert buildah.image_id(image) is None


@pytest.mark.tools
def test_a_temporary_that_is_already_gone_is_not_retried() -> None:
    attempts: list[str] = []

    def remove_container(name: str) -> None:
        attempts.append(name)
        buildah.remove_container(name)

    _remove(remove_container, f"monoimage-test-never-made-{secrets.token_hex(4)}")
    assert len(attempts) == 1
