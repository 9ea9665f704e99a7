"""What `monoimage-init status` and `health` print: an aligned table, or JSON written by hand
(python3-minimal has no `json` module)."""

import math
import time

Records = list[tuple[str, dict[str, str]]]
INTEGER_KEYS = ("version", "pid", "restarts", "ready_after_ms", "rss_kib", "services",
                "log_dropped_lines")
FLOAT_KEYS = ("ready_since", "uptime_s")


def status_table(records: Records, now: float | None = None) -> str:
    """The status as an aligned text table, with a first line about init itself."""
    now = time.time() if now is None else now
    lines = []
    for kind, fields in records:
        if kind == "init":
            lines.append(f"init: {fields.get('state', '-')}, pid {fields.get('pid', '-')}, "
                         f"image {fields.get('image', '-')}, up {fields.get('uptime_s', '-')} s")
    rows = [["SERVICE", "STATE", "PID", "RESTARTS", "READY_MS", "READY_FOR", "RSS_KIB",
             "LAST_EXIT"]]
    for kind, fields in records:
        if kind != "service":
            continue
        since = fields.get("ready_since", "-")
        ready_for = "-" if since == "-" else _duration(now - float(since))
        rows.append([fields.get("name", "-"), fields.get("state", "-"), fields.get("pid", "-"),
                     fields.get("restarts", "-"), fields.get("ready_after_ms", "-"), ready_for,
                     fields.get("rss_kib", "-"), fields.get("last_exit", "-")])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return "\n".join(lines) + "\n"


def status_json(records: Records) -> str:
    """The status as one JSON object: {"init": {...}, "services": [{...}, ...], "healthy": b}."""
    document: dict[str, object] = {"init": None, "services": [], "healthy": False}
    services: list[object] = []
    for kind, fields in records:
        if kind == "init":
            document["init"] = _typed(fields)
        elif kind == "service":
            services.append(_typed(fields))
        elif kind == "end":
            document["healthy"] = fields.get("healthy") == "yes"
    document["services"] = services
    return to_json(document) + "\n"


def not_ready(records: Records) -> list[str]:
    """`name (state)` of every service that keeps the container from being healthy."""
    return [f"{fields.get('name', '?')} ({fields.get('state', '?')})"
            for kind, fields in records
            if kind == "service" and fields.get("state") not in ("ready", "done")]


def is_healthy(records: Records) -> bool:
    """Whether init said healthy=yes."""
    return any(kind == "end" and fields.get("healthy") == "yes" for kind, fields in records)


def _typed(fields: dict[str, str]) -> dict[str, object]:
    typed: dict[str, object] = {}
    for key, value in fields.items():
        if value == "-":
            typed[key] = None
        elif key in INTEGER_KEYS:
            typed[key] = int(value)
        elif key in FLOAT_KEYS:
            typed[key] = float(value)
        elif key == "critical":
            typed[key] = value == "yes"
        else:
            typed[key] = value
    return typed


def to_json(value: object) -> str:
    """JSON text for None, bool, int, float, str, list and dict with str keys."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "null"
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(to_json(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_json_string(str(key))}: {to_json(item)}"
                               for key, item in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b",
            "\f": "\\f"}


def _json_string(text: str) -> str:
    return '"' + "".join(_ESCAPES.get(char, char if ord(char) >= 0x20 else f"\\u{ord(char):04x}")
                         for char in text) + '"'


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"
