"""YAML documents that remember where every value came from.

Recipe errors must say `FILE:LINE: key.path: what is wrong`, and PyYAML's plain loader forgets
lines. We compose the node tree from the parser's events and convert it ourselves, recording the
line of every key and list item, and rejecting duplicate keys that PyYAML would silently
overwrite.

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
    try:
        node = _BoundedComposer(text, shown_as).document()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else 0
        problem = " ".join(str(err.problem or err.context or "syntax error").split())
        raise RecipeError(shown_as, line, "", f"not valid YAML: {problem}") from None
    except yaml.YAMLError as err:
        raise RecipeError(shown_as, 0, "", "not valid YAML: " + " ".join(str(err).split())
                          ) from None
    lines: dict[KeyPath, int] = {}
    if node is None:
        return LocatedDocument(shown_as, None, {(): 1})
    data = _Converter(shown_as, lines).convert(node, ())
    return LocatedDocument(shown_as, data, lines)


class _BoundedComposer:
    """Nodes from libyaml's events (a C parser: fast on a large file), counted as they come:
    at most MAX_NODES nodes, MAX_ALIASES aliases, MAX_DEPTH levels, so a hostile file stops
    early instead of filling memory. Anchors, tags and implicit types as PyYAML's composer."""

    def __init__(self, text: str, file: str) -> None:
        self.loader = _LOADER(text)
        self.file = file
        self.anchors: dict[str, yaml.Node] = {}
        self.depth = self.nodes = self.aliases = 0

    def fail(self, event: yaml.Event, message: str) -> RecipeError:
        mark = event.start_mark
        return RecipeError(self.file, mark.line + 1 if mark else 0, "", message)

    def document(self) -> yaml.Node | None:
        try:
            self.loader.get_event()  # stream start
            if self.loader.check_event(yaml.StreamEndEvent):
                return None
            self.loader.get_event()  # document start
            node = self.node()
            self.loader.get_event()  # document end
            if not self.loader.check_event(yaml.StreamEndEvent):
                raise self.fail(self.loader.peek_event(), "more than one YAML document")
            return node
        finally:
            self.loader.dispose()

    def node(self) -> yaml.Node:
        event = self.loader.get_event()
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(event, f"more than {MAX_NODES} values")
        if isinstance(event, yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise self.fail(event, f"more than {MAX_ALIASES} aliases (*name)")
            if event.anchor not in self.anchors:
                raise self.fail(event, f"the alias *{event.anchor} names no anchor")
            return self.anchors[event.anchor]
        if event.anchor is not None and event.anchor in self.anchors:
            raise self.fail(event, f"the anchor &{event.anchor} is given twice")
        node: yaml.Node
        if isinstance(event, yaml.ScalarEvent):
            tag = event.tag if event.tag not in (None, "!") else self.loader.resolve(
                yaml.ScalarNode, event.value, event.implicit)
            node = yaml.ScalarNode(tag, event.value, event.start_mark,  # type: ignore[arg-type]
                                   event.end_mark, style=event.style)  # type: ignore[arg-type]
            if event.anchor is not None:
                self.anchors[event.anchor] = node
            return node
        is_map = isinstance(event, yaml.MappingStartEvent)
        kind = yaml.MappingNode if is_map else yaml.SequenceNode
        tag = event.tag if event.tag not in (None, "!") else self.loader.resolve(
            kind, None, event.implicit)
        node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
        if event.anchor is not None:
            self.anchors[event.anchor] = node  # before its items: `&a [*a]` is a cycle
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(event, f"nested deeper than {MAX_DEPTH} levels")
        end = yaml.MappingEndEvent if is_map else yaml.SequenceEndEvent
        while not self.loader.check_event(end):
            node.value.append((self.node(), self.node()) if is_map else self.node())
        node.end_mark = self.loader.get_event().end_mark
        self.depth -= 1
        return node


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


# libyaml's parser when PyYAML was built with it, else PyYAML's own (slower, same events).
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Only its scalar constructors are used: whole numbers, numbers, booleans, null.
_SCALARS = yaml.SafeLoader("")
