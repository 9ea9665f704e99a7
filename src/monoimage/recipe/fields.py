"""Typed, located access to one YAML mapping of a recipe.

Every read names the key it reads, so every error can say where it is and what is wrong;
`done()` rejects the keys nobody read (typos such as `dependson`).
"""

from __future__ import annotations

from typing import Any

from monoimage.recipe.located_yaml import KeyPath, LocatedDocument


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

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> Any:
        value = self.required(key) if required else self.raw(key, None)
        if value is None:
            return default
        if not isinstance(value, str) or not value:
            raise self.error(key, f"must be a non-empty string, not {_kind(value)}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {_kind(value)}")
        return value

    def whole(self, key: str, default: int, *, minimum: int = 0) -> int:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be a whole number, not {_kind(value)}")
        if value < minimum:
            raise self.error(key, f"must be at least {minimum}, not {value}")
        return value

    def number(self, key: str, default: float, *, minimum: float = 0.0) -> float:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"must be a number, not {_kind(value)}")
        if value < minimum:
            raise self.error(key, f"must be at least {minimum}, not {value}")
        return float(value)

    def items(self, key: str) -> list[Any]:
        value = self.raw(key, None)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(key, f"must be a list, not {_kind(value)}")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        items = self.items(key)
        for i, item in enumerate(items):
            if not isinstance(item, str) or not item:
                raise self.doc.error(self.at(key) + (i,),
                                     f"must be a non-empty string, not {_kind(item)}")
        return tuple(items)

    def mapping(self, key: str) -> Fields:
        value = self.raw(key, None)
        return Fields(self.doc, self.at(key), {} if value is None else value)

    def one_of(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.raw(key, default)
        if value not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}, not {value!r}")
        return str(value)

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
        return f"a string ({value!r})" if value else "an empty string"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
