"""Readers of the values both recipe files use: names, users, modes, paths, ports, signals,
package lists and name→value maps. Each checks one value and says where it is wrong; every
pattern is matched whole (`fullmatch`: `$` would let a trailing newline through)."""

from __future__ import annotations

import math
import posixpath
import re
import signal
from typing import Any

from monoimage.recipe.fields import Fields
from monoimage.recipe.limits import MAX_NAME, MAX_PACKAGE, MAX_USER, shown
from monoimage.recipe.located_yaml import KeyPath, LocatedDocument
from monoimage.recipe.model import PackageRequest
from monoimage.recipe.versions import Family, parse_constraint

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]*")
USER_RE = re.compile(r"[a-z_][a-z0-9_-]*\$?")
VARIABLE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SIGNALS = frozenset(s.name for s in signal.Signals if not s.name.startswith("SIG_"))
# Signals whose default action is not to end the process, or that cannot be caught: a stop
# signal of these never stops a service; a reload signal of these, or SIGKILL, never reloads.
_NOT_STOPPING = frozenset({"SIGSTOP", "SIGCONT", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGCHLD",
                           "SIGWINCH", "SIGURG"})
_NOT_RELOADING = _NOT_STOPPING | {"SIGKILL"}
# Debian Policy 5.6.1; rpm's Name: (alphanumerics and `_ . + -`, not first `-` or `.`).
PACKAGE_NAME_RE = {Family.APT: re.compile(r"[a-z0-9][a-z0-9+.-]+"),
                   Family.DNF: re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_+-]|\.(?!\.))*")}
PACKAGE_GRAMMAR = {Family.APT: "lower-case letters, digits, '+', '.', '-', starting with a "
                               "letter or digit, at least two characters",
                   Family.DNF: "letters, digits, '_', '+', '.', '-', starting with a letter, "
                               "digit or '_', no '..'"}


def read_name(fields: Fields, key: str) -> str:
    """A required name of an image, service or distribution."""
    value: str = fields.text(key, required=True)
    if len(value) > MAX_NAME or not NAME_RE.fullmatch(value):
        raise fields.error(key, f"{shown(value)} is not a valid name (lower-case letters, "
                                f"digits, '.', '_', '-'; at most {MAX_NAME} characters)")
    return value


def read_user(fields: Fields, key: str) -> Any:
    """A user or group name; absent, its default (`root` for owners, None for groups)."""
    value = fields.text(key)
    if value is not None and (len(value) > MAX_USER or not USER_RE.fullmatch(value)):
        raise fields.error(key, f"{shown(value)} is not a valid user or group name "
                                f"(lower-case letters, digits, '_', '-'; at most {MAX_USER})")
    return value


def read_mode(fields: Fields, key: str) -> int:
    value = fields.raw(key, None)
    if value is None:
        return int(fields.setting(key, "mode").default)
    if not isinstance(value, str) or not re.fullmatch(r"0?[0-7]{3,4}", value):
        raise fields.error(key, f"give the mode as a quoted octal string such as \"0644\", "
                                f"not {shown(value)}")
    return int(value, 8)


def read_path(fields: Fields, key: str, *, required: bool = False) -> Any:
    """An absolute, normal path inside the image."""
    value = fields.text(key, required=required)
    if value is not None:
        check_image_path(fields.doc, fields.at(key), value)
    return value


def read_paths(fields: Fields, key: str) -> tuple[str, ...]:
    paths = fields.texts(key)
    for i, path in enumerate(paths):
        check_image_path(fields.doc, fields.at(key) + (i,), path)
    return paths


def check_image_path(doc: LocatedDocument, where: KeyPath, value: str) -> None:
    if not value.startswith("/"):
        raise doc.error(where, f"{shown(value)} must be an absolute path inside the image")
    if value != "/" and (".." in value.split("/") or posixpath.normpath(value) != value):
        raise doc.error(where, f"{shown(value)} leaves the image root or is not a normal path")
    if any(len(part) > 255 for part in value.split("/")):
        raise doc.error(where, f"{shown(value)} has a part longer than 255 characters")


def read_port_number(fields: Fields, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise fields.error(key, f"{shown(value)} is not a port number 1-65535")
    return value


def read_signal(fields: Fields, key: str, *, purpose: str) -> str:
    """A signal name, `SIG` added when left off (`HUP` → `SIGHUP`), that can `purpose` (stop
    or reload) a service."""
    value = fields.text(key, limit=32).upper()
    if not value.startswith("SIG"):
        value = "SIG" + value
    if value not in SIGNALS:
        raise fields.error(key, f"{shown(value)} is not a signal name")
    if value in (_NOT_STOPPING if purpose == "stop" else _NOT_RELOADING):
        raise fields.error(key, f"{value} cannot {purpose} a service")
    return str(value)


def read_packages(fields: Fields, key: str, family: Family) -> tuple[PackageRequest, ...]:
    """A list of packages of `family`, each optionally constrained (`openvswitch-switch >= 3.1`)."""
    result = []
    names: set[str] = set()
    for i, text in enumerate(fields.texts(key)):
        where = fields.at(key) + (i,)
        try:
            name, constraint = parse_constraint(text)
        except ValueError as err:
            raise fields.doc.error(where, str(err)) from None
        check_package_name(fields.doc, where, name, family)
        if name in names:
            raise fields.doc.error(where, f"package '{name}' is listed twice")
        names.add(name)
        line = fields.doc.line_of(where)
        result.append(PackageRequest(name, constraint, f"{fields.doc.file}:{line}"))
    return tuple(result)


def read_package_names(fields: Fields, key: str, family: Family) -> tuple[str, ...]:
    """A list of bare package names of `family` (no constraints)."""
    names = fields.texts(key)
    for i, name in enumerate(names):
        check_package_name(fields.doc, fields.at(key) + (i,), name, family)
    return names


def check_package_name(doc: LocatedDocument, where: KeyPath, name: str, family: Family) -> None:
    if len(name) > MAX_PACKAGE or not PACKAGE_NAME_RE[family].fullmatch(name):
        raise doc.error(where, f"{shown(name)} is not a {family.value} package name "
                               f"({PACKAGE_GRAMMAR[family]})")


def read_values(fields: Fields, bad_name: str) -> tuple[tuple[str, str], ...]:
    """A mapping of variable-like names to strings or numbers (`run.env`, `site`), in order.

    A value is one line: an env file (`--env-file`) holds one variable a line, and the init's
    table and execve hold no NUL."""
    return tuple((key, read_value(fields, key, bad_name)) for key in list(fields.value))


def read_value(fields: Fields, key: str, bad_name: str) -> str:
    """One value of a name→value mapping, as text."""
    value = fields.raw(key)
    check_variable_name(fields, key, bad_name)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise fields.error(key, "must be a string or a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise fields.error(key, f"must be a finite number, not {value}")
    text = value if isinstance(value, str) else str(value)
    return text if text == "" else fields.check_text(fields.at(key), text)


def check_variable_name(fields: Fields, key: str, bad_name: str) -> None:
    """`key` must be a variable-like name (`run.env`, `site`): it becomes `NAME=` or
    `MONOIMAGE_SITE_NAME=`."""
    if len(key) > 255 or not VARIABLE_RE.fullmatch(key):
        raise fields.error(key, bad_name)
