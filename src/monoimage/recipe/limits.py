"""The bounds every recipe value is held to, declared once (the docs' reference lists them).

A recipe may come from anyone: these keep a hostile or careless one from costing time, memory
or a crash later (a 1 MB user name, an alias bomb, a NUL byte the init's table cannot hold).
"""

from __future__ import annotations

import re

MAX_RECIPE_BYTES = 4 * 1024 * 1024   # one recipe or service YAML file
MAX_DEPTH = 64                        # nesting of lists and mappings in one file
MAX_ALIASES = 100                     # `*name` uses in one file
MAX_NODES = 50_000                    # values in one file, aliases expanded
MAX_SOURCE_BYTES = 1024 * 1024        # one template `source:` file, or inline `content:`
MAX_TEXT = 4096                       # any other single string (argv items, values, paths)
MAX_NAME = 63                         # image, service and distribution names
MAX_USER = 32                         # user and group names (useradd's limit)
MAX_PACKAGE = 255                     # a package name
MAX_SECONDS = 86400.0                 # any duration
MAX_COUNT = 1_000_000                 # any count

LIMITS: tuple[tuple[str, str], ...] = (
    ("size of a recipe or service file", f"{MAX_RECIPE_BYTES // 1024 // 1024} MiB"),
    ("nesting of lists and mappings", f"{MAX_DEPTH} levels"),
    ("aliases (`*name`) in one file", f"{MAX_ALIASES}"),
    ("values in one file, aliases expanded", f"{MAX_NODES}"),
    ("a template (`source:` file or `content:`)",
     f"{MAX_SOURCE_BYTES // 1024 // 1024} MiB of UTF-8 text"),
    ("image, service and distribution names", f"{MAX_NAME} characters"),
    ("user and group names", f"{MAX_USER} characters"),
    ("package names", f"{MAX_PACKAGE} characters"),
    ("any other text (argv items, values, paths)",
     f"{MAX_TEXT} characters, no control characters (tab allowed)"),
    ("durations", f"finite, at most {MAX_SECONDS:g} s"),
    ("counts", f"at most {MAX_COUNT}"),
)

# C0 and C1 control characters and DEL; a tab is allowed in text.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_IN_CONTENT_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def shown(value: object, width: int = 60) -> str:
    """`value` quoted for a one-line message, cut to `width` characters."""
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def text_problem(value: str, limit: int = MAX_TEXT) -> str | None:
    """What is wrong with one line of text (a control character, too long), or None."""
    if len(value) > limit:
        return f"{shown(value)} is longer than {limit} characters"
    control = _CONTROL_RE.search(value)
    if control:
        what = "a newline" if control.group() in "\n\r" else f"U+{ord(control.group()):04X}"
        return f"{shown(value)} contains {what}: give one line without control characters"
    return None


def content_problem(value: str) -> str | None:
    """What is wrong with a file's text (a NUL or other control character, too long), or None."""
    if len(value.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        return f"is larger than {MAX_SOURCE_BYTES} bytes"
    control = _CONTROL_IN_CONTENT_RE.search(value)
    if control:
        line = value.count("\n", 0, control.start()) + 1
        return f"line {line} contains U+{ord(control.group()):04X}, which a text file cannot hold"
    return None
