"""YAML documents that remember where every value came from.

Recipe errors must say `FILE:LINE: key.path: what is wrong`, and PyYAML's plain loader forgets
lines. We compose the node tree with the safe loader and convert it ourselves, recording the line
of every key and list item, and rejecting duplicate keys that PyYAML would silently overwrite.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from monoimage.errors import RecipeError

KeyPath = tuple[str | int, ...]


def format_path(path: KeyPath) -> str:
    """`("run", "argv", 0)` → `run.argv[0]`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


@dataclass(frozen=True)
class LocatedDocument:
    """One parsed YAML file: its data and the line of every key path in it."""

    file: str
    data: Any
    lines: dict[KeyPath, int]

    def line_of(self, path: KeyPath) -> int:
        """The line of `path`, or of its nearest located ancestor."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line:
                return line
        return 1

    def error(self, path: KeyPath, message: str) -> RecipeError:
        return RecipeError(self.file, self.line_of(path), format_path(path), message)


def load_located(path: Path, shown_as: str | None = None) -> LocatedDocument:
    """Read one YAML file; syntax errors become a located RecipeError."""
    shown = shown_as or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(shown, 0, "", "no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise RecipeError(shown, 0, "", f"cannot read: {err}") from None
    return parse_located(text, shown)


def parse_located(text: str, shown_as: str) -> LocatedDocument:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else 0
        raise RecipeError(shown_as, line, "", f"not valid YAML: {err.problem}") from None
    except yaml.YAMLError as err:
        raise RecipeError(shown_as, 0, "", f"not valid YAML: {err}") from None
    lines: dict[KeyPath, int] = {}
    if node is None:
        return LocatedDocument(shown_as, None, {(): 1})
    data = _convert(node, (), lines, shown_as)
    return LocatedDocument(shown_as, data, lines)


def _convert(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], file: str) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            key_line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                raise RecipeError(file, key_line, format_path(path),
                                  f"key {key!r} must be a string")
            if key in result:
                raise RecipeError(file, key_line, format_path(path + (key,)),
                                  "duplicate key (already given above)")
            lines[path + (key,)] = key_line
            result[key] = _convert(value_node, path + (key,), lines, file)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, path + (i,), lines, file) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return node  # a complex key; the caller rejects it as not a string
    return _SCALARS.construct_object(node)  # type: ignore[no-untyped-call]


# Only its scalar constructors are used: plain strings, numbers, booleans, null.
_SCALARS = yaml.SafeLoader("")
