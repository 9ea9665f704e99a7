"""Command-line values checked before any work starts: image references and folders.

A reference buildah or podman would refuse, or read as one of its options, never reaches them;
a folder that cannot be made is refused before a build spends minutes, not after.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from monoimage.errors import UserError
from monoimage.recipe.reference import ReferenceError, check_image, check_tag, parse_reference


def reference_argument(text: str, option: str) -> str:
    """`text` if it is an image reference ([HOST[:PORT]/]NAME[:TAG][@DIGEST])."""
    return _checked(parse_reference, text, option)


def image_argument(text: str, option: str) -> str:
    """`text` if it names a local image: a reference or an image id."""
    return _checked(check_image, text, option)


def tag_argument(text: str, option: str) -> str:
    """`text` if it is an image tag."""
    return _checked(check_tag, text, option)


def usable_folder(path: Path, option: str) -> Path:
    """`path` if it is a folder this run can write in, or one it can make (parents too)."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {path}: exists and is not a directory")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{option} {path}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: cannot write in {existing}")
    return path


def _checked(check: Callable[[str], object], text: str, option: str) -> str:
    try:
        check(text)
    except ReferenceError as err:
        raise UserError(f"{option}: {err}") from None
    return text
