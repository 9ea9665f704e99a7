"""Image references as the OCI distribution spec writes them: `[host[:port]/]path[:tag][@digest]`.

One grammar for every place a user names an image: a recipe's `image.name` and `image.tag`,
`build -t`, `host --image`, `boot IMAGE`, `--previous`. Checked before any work starts, so a
reference podman or buildah would refuse (or read as an option) never reaches them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The distribution spec's grammar (distribution/reference), with its limits.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_HOST_PART}(?:\.{_HOST_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}"

NAME_RE = re.compile(rf"(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*")
TAG_RE = re.compile(_TAG, re.ASCII)
REFERENCE_RE = re.compile(
    rf"(?P<name>{NAME_RE.pattern})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?", re.ASCII)
IMAGE_ID_RE = re.compile(r"(?:sha256:)?[0-9a-f]{12,64}")
MAX_NAME = 255  # the spec's limit on a repository name, host included


class ReferenceError(ValueError):
    """A text that is not an image reference; the message says what is wrong."""


@dataclass(frozen=True)
class Reference:
    name: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        return (self.name + (f":{self.tag}" if self.tag else "")
                + (f"@{self.digest}" if self.digest else ""))


def parse_reference(text: str) -> Reference:
    """The reference in `text`, or ReferenceError saying why it is not one."""
    match = REFERENCE_RE.fullmatch(text)
    if match is None:
        raise ReferenceError(f"{_shown(text)} is not an image reference "
                             "([HOST[:PORT]/]NAME[:TAG][@DIGEST], lower-case name)")
    if len(match["name"]) > MAX_NAME:
        raise ReferenceError(f"image name of {len(match['name'])} characters is longer than "
                             f"{MAX_NAME}")
    return Reference(match["name"], match["tag"], match["digest"])


def check_image(text: str) -> str:
    """`text` if it names an image a tool can look up (a reference or an image id)."""
    if IMAGE_ID_RE.fullmatch(text):
        return text
    parse_reference(text)
    return text


def check_name(text: str) -> str:
    """`text` if it is a repository name (no tag, no digest)."""
    if len(text) > MAX_NAME or not NAME_RE.fullmatch(text):
        raise ReferenceError(f"{_shown(text)} is not an image name (lower-case letters, digits, "
                             f"'.', '_', '-', '/' between parts; at most {MAX_NAME} characters)")
    return text


def check_tag(text: str) -> str:
    if not TAG_RE.fullmatch(text):
        raise ReferenceError(f"{_shown(text)} is not an image tag (letters, digits, '_', '.', "
                             "'-', not first; at most 128 characters)")
    return text


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")
