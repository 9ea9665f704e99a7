"""Typed, located access to one YAML mapping of a recipe.

Every read names the key it reads, so every error can say where it is and what is wrong;
`done()` rejects the keys nobody read (typos such as `dependson`). A key's default, minimum
and choices are not given by the reader: they come from `settings.SETTINGS`, found by the key's
path (`ready` + `timeout` → `ready.timeout`).
"""

from __future__ import annotations

import math
from typing import Any

from monoimage.recipe.limits import MAX_COUNT, MAX_SECONDS, MAX_TEXT, shown, text_problem
from monoimage.recipe.located_yaml import KeyPath, LocatedDocument, format_path
from monoimage.recipe.settings import Kind, Setting, setting_at


class Fields:
    """The keys of one mapping at `path` in `doc`, read one by one."""

    def __init__(self, doc: LocatedDocument, path: KeyPath, value: Any) -> None:
        if not isinstance(value, dict):
            raise doc.error(path, f"must be a mapping, not {_kind(value)}")
        self.doc = doc
        self.path = path
        self.value: dict[str, Any] = value
        self._read: set[str] = set()

    def at(self, key: str | int) -> KeyPath:
        return self.path + (key,)

    def error(self, key: str | int, message: str) -> Exception:
        return self.doc.error(self.at(key), message)

    def has(self, key: str) -> bool:
        return key in self.value

    def raw(self, key: str, default: Any = None) -> Any:
        self._read.add(key)
        return self.value.get(key, default)

    def required(self, key: str) -> Any:
        self._read.add(key)
        if key not in self.value or self.value[key] is None:
            raise self.doc.error(self.path, f"missing required key '{key}'")
        return self.value[key]

    def text(self, key: str, *, required: bool = False, limit: int = MAX_TEXT) -> Any:
        """A non-empty line of text; when absent, its default from the settings table, else
        None."""
        value = self.required(key) if required else self.raw(key, None)
        if value is None:
            return self.default(key)
        return self.check_text(self.at(key), value, limit)

    def check_text(self, where: KeyPath, value: Any, limit: int = MAX_TEXT) -> str:
        """`value` if it is a non-empty line of at most `limit` characters."""
        if not isinstance(value, str) or not value:
            raise self.doc.error(where, f"must be a non-empty string, not {_kind(value)}")
        problem = text_problem(value, limit)
        if problem:
            raise self.doc.error(where, problem)
        return value

    def flag(self, key: str) -> bool:
        value = self.raw(key, self.setting(key, "flag").default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {_kind(value)}")
        return value

    def whole(self, key: str) -> int:
        setting = self.setting(key, "whole")
        value = self.raw(key, setting.default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be a whole number, not {_kind(value)}")
        self._check_bounds(key, setting, value, MAX_COUNT)
        return value

    def number(self, key: str) -> float:
        setting = self.setting(key, "number")
        value = self.raw(key, setting.default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"must be a number, not {_kind(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(key, f"must be a finite number, not {value}")
        self._check_bounds(key, setting, value, MAX_SECONDS)
        return float(value)

    def _check_bounds(self, key: str, setting: Setting, value: float, maximum: float) -> None:
        if setting.minimum is not None and value < setting.minimum:
            raise self.error(key, f"must be at least {setting.minimum}, not {shown(value)}")
        maximum = setting.maximum if setting.maximum is not None else maximum
        if value > maximum:
            raise self.error(key, f"must be at most {maximum:g}, not {shown(value)}")

    def items(self, key: str) -> list[Any]:
        value = self.raw(key, None)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(key, f"must be a list, not {_kind(value)}")
        return value

    def texts(self, key: str, limit: int = MAX_TEXT) -> tuple[str, ...]:
        items = self.items(key)
        for i, item in enumerate(items):
            self.check_text(self.at(key) + (i,), item, limit)
        return tuple(items)

    def mapping(self, key: str) -> Fields:
        value = self.raw(key, None)
        return Fields(self.doc, self.at(key), {} if value is None else value)

    def one_of(self, key: str) -> str:
        setting = self.setting(key, "choice")
        value = self.raw(key, setting.default)
        if not isinstance(value, str) or value not in setting.choices:
            raise self.error(key, f"must be one of {', '.join(setting.choices)}, "
                                  f"not {shown(value)}")
        return str(value)

    def setting(self, key: str, kind: Kind) -> Setting:
        """The settings-table entry of `key` here; a key missing or of another kind is a bug."""
        setting = setting_at(self.at(key))
        if setting is None or setting.kind != kind:
            raise LookupError(f"no {kind} setting {format_path(self.at(key))} in settings.py")
        return setting

    def default(self, key: str) -> Any:
        """The default of `key` here from the settings table, or None when it has none."""
        setting = setting_at(self.at(key))
        return None if setting is None else setting.default

    def done(self) -> None:
        """Reject keys that no reader asked for."""
        for key in self.value:
            if key not in self._read:
                raise self.error(key, "unknown key")


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, str):
        return f"a string ({shown(value)})" if value else "an empty string"
    if isinstance(value, int | float):
        return f"a number ({shown(value)})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
