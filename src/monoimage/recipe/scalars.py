"""Readers of the values both recipe files use: names, users, modes, paths, ports, signals,
package lists and name→value maps. Each checks one value and says where it is wrong."""

from __future__ import annotations

import posixpath
import re
import signal
from typing import Any

from monoimage.recipe.fields import Fields
from monoimage.recipe.located_yaml import KeyPath, LocatedDocument
from monoimage.recipe.model import PackageRequest
from monoimage.recipe.versions import parse_constraint

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
USER_RE = re.compile(r"^[a-z_][a-z0-9_-]*\$?$")
VARIABLE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SIGNALS = frozenset(s.name for s in signal.Signals if not s.name.startswith("SIG_"))


def read_name(fields: Fields, key: str) -> str:
    """A required name of an image, service or distribution."""
    value: str = fields.text(key, required=True)
    if not NAME_RE.match(value):
        raise fields.error(key, f"{value!r} is not a valid name (lower-case letters, digits, "
                                "'.', '_', '-')")
    return value


def read_user(fields: Fields, key: str) -> Any:
    """A user or group name; absent, its default (`root` for owners, None for groups)."""
    value = fields.text(key)
    if value is not None and not USER_RE.match(value):
        raise fields.error(key, f"{value!r} is not a valid user or group name")
    return value


def read_mode(fields: Fields, key: str) -> int:
    value = fields.raw(key, None)
    if value is None:
        return int(fields.setting(key, "mode").default)
    if not isinstance(value, str) or not re.fullmatch(r"0?[0-7]{3,4}", value):
        raise fields.error(key, f"give the mode as a quoted octal string such as \"0644\", "
                                f"not {value!r}")
    return int(value, 8)


def read_path(fields: Fields, key: str, *, required: bool = False) -> Any:
    """An absolute, normal path inside the image."""
    value = fields.text(key, required=required)
    if value is not None:
        _check_image_path(fields.doc, fields.at(key), value)
    return value


def read_paths(fields: Fields, key: str) -> tuple[str, ...]:
    paths = fields.texts(key)
    for i, path in enumerate(paths):
        _check_image_path(fields.doc, fields.at(key) + (i,), path)
    return paths


def _check_image_path(doc: LocatedDocument, where: KeyPath, value: str) -> None:
    if not value.startswith("/"):
        raise doc.error(where, f"{value!r} must be an absolute path inside the image")
    if value != "/" and (".." in value.split("/") or posixpath.normpath(value) != value):
        raise doc.error(where, f"{value!r} leaves the image root or is not a normal path")


def read_port_number(fields: Fields, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise fields.error(key, f"{value!r} is not a port number 1-65535")
    return value


def read_signal(fields: Fields, key: str) -> str:
    """A signal name, `SIG` added when left off (`HUP` → `SIGHUP`)."""
    value = fields.text(key).upper()
    if not value.startswith("SIG"):
        value = "SIG" + value
    if value not in SIGNALS:
        raise fields.error(key, f"{value!r} is not a signal name")
    return str(value)


def read_packages(fields: Fields, key: str) -> tuple[PackageRequest, ...]:
    """A list of packages, each optionally constrained (`openvswitch-switch >= 3.1`)."""
    result = []
    names: set[str] = set()
    for i, text in enumerate(fields.texts(key)):
        try:
            name, constraint = parse_constraint(text)
        except ValueError as err:
            raise fields.doc.error(fields.at(key) + (i,), str(err)) from None
        if name in names:
            raise fields.doc.error(fields.at(key) + (i,), f"package '{name}' is listed twice")
        names.add(name)
        result.append(PackageRequest(name, constraint))
    return tuple(result)


def read_values(fields: Fields, bad_name: str) -> tuple[tuple[str, str], ...]:
    """A mapping of variable-like names to strings or numbers (`run.env`, `site`), in order."""
    result = []
    for key, value in fields.value.items():
        fields.raw(key)
        if not VARIABLE_RE.fullmatch(key):
            raise fields.error(key, bad_name)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise fields.error(key, "must be a string or a number")
        result.append((key, str(value)))
    return tuple(result)
