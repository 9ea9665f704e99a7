"""YAML documents that remember where every value came from.

Recipe errors must say `FILE:LINE: key.path: what is wrong`, and PyYAML's plain loader forgets
lines. We compose the node tree with the safe loader and convert it ourselves, recording the line
of every key and list item, and rejecting duplicate keys that PyYAML would silently overwrite.

A recipe may come from anyone, so the loader is bounded: the file's size, the nesting depth and
the number of aliases and of values are capped (an alias bomb or `[[[[…]]]]` is one error line,
not minutes and gigabytes or a RecursionError), control characters are refused before parsing,
and only plain data is built: strings, whole numbers, numbers, booleans, null, lists and
mappings. A custom tag, `!!binary`, `!!set` or a `!!int` that is not one is an error; a YAML
timestamp stays the string it was written as.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from monoimage.errors import RecipeError
from monoimage.recipe.limits import MAX_ALIASES, MAX_DEPTH, MAX_NODES, MAX_RECIPE_BYTES, shown

KeyPath = tuple[str | int, ...]

# YAML itself forbids these in a stream (tab, newline and carriage return apart).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff]")
_SCALAR_TAGS = {"tag:yaml.org,2002:" + t
                for t in ("str", "int", "float", "bool", "null", "timestamp")}
_SEQ_TAG, _MAP_TAG = "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"


def format_path(path: KeyPath) -> str:
    """`("run", "argv", 0)` → `run.argv[0]`; odd keys are shown quoted."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = part if re.fullmatch(r"[\w-]{1,64}", part) else shown(part)
            text += f".{name}" if text else name
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
    shown_name = shown_as or str(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise RecipeError(shown_name, 0, "", "is not a regular file")
            raw = handle.read(MAX_RECIPE_BYTES + 1)
    except FileNotFoundError:
        raise RecipeError(shown_name, 0, "", "no such file") from None
    except OSError as err:
        raise RecipeError(shown_name, 0, "", f"cannot read: {err.strerror}") from None
    if len(raw) > MAX_RECIPE_BYTES:
        raise RecipeError(shown_name, 0, "", f"is larger than {MAX_RECIPE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise RecipeError(shown_name, line, "", "is not UTF-8 text") from None
    return parse_located(text, shown_name)


def parse_located(text: str, shown_as: str) -> LocatedDocument:
    control = _CONTROL_RE.search(text)
    if control:
        line = text.count("\n", 0, control.start()) + 1
        raise RecipeError(shown_as, line, "", f"control character U+{ord(control.group()):04X} "
                                              "in the file (write it escaped in a quoted string)")
    loader = _BoundedLoader(text, shown_as)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else 0
        problem = " ".join(str(err.problem or err.context or "syntax error").split())
        raise RecipeError(shown_as, line, "", f"not valid YAML: {problem}") from None
    except yaml.YAMLError as err:
        raise RecipeError(shown_as, 0, "", "not valid YAML: " + " ".join(str(err).split())
                          ) from None
    finally:
        loader.dispose()
    lines: dict[KeyPath, int] = {}
    if node is None:
        return LocatedDocument(shown_as, None, {(): 1})
    data = _Converter(shown_as, lines).convert(node, ())
    return LocatedDocument(shown_as, data, lines)


class _BoundedLoader(yaml.SafeLoader):
    """The safe composer with a cap on nesting depth and on aliases."""

    def __init__(self, text: str, file: str) -> None:
        super().__init__(text)
        self.depth = 0
        self.aliases = 0
        self.file = file

    def compose_node(self, parent: Any, index: Any) -> Any:
        mark = self.peek_event().start_mark
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise RecipeError(self.file, mark.line + 1, "",
                                  f"more than {MAX_ALIASES} aliases (*name)")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise RecipeError(self.file, mark.line + 1, "",
                              f"nested deeper than {MAX_DEPTH} levels")
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Converter:
    """Nodes → plain data, counting every value (aliases included) against MAX_NODES."""

    def __init__(self, file: str, lines: dict[KeyPath, int]) -> None:
        self.file = file
        self.lines = lines
        self.nodes = 0
        self.open: set[int] = set()

    def fail(self, node: yaml.Node, path: KeyPath, message: str) -> RecipeError:
        return RecipeError(self.file, node.start_mark.line + 1, format_path(path), message)

    def convert(self, node: yaml.Node, path: KeyPath) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(node, path, f"more than {MAX_NODES} values (aliases expanded)")
        if len(path) > MAX_DEPTH:
            raise self.fail(node, path, f"nested deeper than {MAX_DEPTH} levels")
        if id(node) in self.open:
            raise self.fail(node, path, "an alias refers to a value that contains it")
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                self.check_tag(node, path, _MAP_TAG)
                return self.mapping(node, path)
            self.check_tag(node, path, _SEQ_TAG)
            return [self.convert(item, path + (i,)) for i, item in enumerate(node.value)]
        finally:
            self.open.discard(id(node))

    def check_tag(self, node: yaml.Node, path: KeyPath, allowed: str) -> None:
        if node.tag != allowed:
            raise self.fail(node, path, f"the tag {shown(node.tag)} is not allowed in a recipe")

    def mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, path, "a key must be a string, not a list or mapping")
            key = self.scalar(key_node, path)
            if not isinstance(key, str):
                raise self.fail(key_node, path, f"key {shown(key)} must be a string")
            if key in result:
                raise self.fail(key_node, path + (key,), "duplicate key (already given above)")
            self.lines[path + (key,)] = key_node.start_mark.line + 1
            result[key] = self.convert(value_node, path + (key,))
        return result

    def scalar(self, node: yaml.ScalarNode, path: KeyPath) -> Any:
        if node.tag not in _SCALAR_TAGS:
            raise self.fail(node, path, f"the tag {shown(node.tag)} is not allowed in a recipe")
        if node.tag.endswith((":str", ":timestamp")):
            return node.value
        try:
            return _SCALARS.construct_object(node)  # type: ignore[no-untyped-call]
        except (yaml.YAMLError, ValueError, OverflowError):
            kind = node.tag.rpartition(":")[2]
            raise self.fail(node, path, f"{shown(node.value)} is not a valid {kind}") from None


# Only its scalar constructors are used: whole numbers, numbers, booleans, null.
_SCALARS = yaml.SafeLoader("")
