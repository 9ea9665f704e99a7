"""The service table: the one input of monoimage-init, read and validated before anything runs.

The build writes it as a single Python literal (read like `ast.literal_eval`, because Debian's
python3-minimal has no `json` and a literal cannot execute code; with the built-in `_ast`
nodes: the `ast` module would cost PID 1 half a MiB of RSS for its whole life). Validation is strict (unknown
keys are errors, so a typo in the build never silently turns a setting off) and complete enough
that the supervisor can trust every value it reads. Optional keys get the defaults listed in
`SERVICE_DEFAULTS`, `READY_DEFAULTS` and `RESTART_DEFAULTS`.
"""

import _ast
import re
import signal
from typing import Any, NamedTuple

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]*\Z")
VARIABLE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
HTTP_PATH_RE = re.compile(r"/[\x21-\x7e]*\Z")
READY_KINDS = ("tcp", "http", "unix", "file", "command", "none")
RESTART_POLICIES = ("always", "on-failure", "never")


class TableError(Exception):
    """The table cannot be used; the message says where (`services[1] (redis).ready.port`)."""


class RuntimeDir(NamedTuple):
    path: str
    owner: str
    group: str | None
    mode: int


class Template(NamedTuple):
    target: str
    content: str
    mode: int
    owner: str
    group: str | None


class Command(NamedTuple):
    argv: tuple[str, ...]
    user: str
    group: str | None
    timeout: float | None


class Ready(NamedTuple):
    kind: str
    host: str
    port: int | None
    path: str | None
    argv: tuple[str, ...] | None
    timeout: float
    interval: float
    status: int = 200          # http: the status the GET of `path` must answer


class Restart(NamedTuple):
    policy: str
    backoff_initial: float
    backoff_max: float
    max_restarts: int
    window: float


class Service(NamedTuple):
    name: str
    argv: tuple[str, ...]
    user: str
    group: str | None
    env: tuple[tuple[str, str], ...]
    workdir: str
    depends_on: tuple[str, ...]
    runtime_dirs: tuple[RuntimeDir, ...]
    templates: tuple[Template, ...]
    commands: tuple[Command, ...]
    ready: Ready
    restart: Restart
    stop_signal: int
    stop_timeout: float
    critical: bool
    reload_signal: int | None
    condition: tuple[str, ...] = ()   # paths that must exist, else the service is skipped


class Table(NamedTuple):
    version: int
    image: str
    site: tuple[tuple[str, str], ...]
    services: tuple[Service, ...]

    def service(self, name: str) -> Service:
        """The service called `name` (KeyError if there is none)."""
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)


SERVICE_DEFAULTS: dict[str, Any] = {
    "user": "root", "group": None, "env": {}, "workdir": "/", "depends_on": [],
    "runtime_dirs": [], "templates": [], "commands": [], "ready": None, "restart": None,
    "stop_signal": "SIGTERM", "stop_timeout": 10.0, "critical": True, "reload_signal": "SIGHUP",
    "condition": [],
}
READY_DEFAULTS: dict[str, Any] = {
    "kind": "none", "host": "127.0.0.1", "port": None, "path": None, "argv": None,
    "timeout": 30.0, "interval": 0.1, "status": 200,
}
RESTART_DEFAULTS: dict[str, Any] = {
    "policy": "always", "backoff_initial": 0.5, "backoff_max": 30.0, "max_restarts": 5,
    "window": 60.0,
}


def load_table(path: str) -> Table:
    """Read and validate the table file at `path`."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise TableError(f"{path}: cannot read the service table: {error.strerror}") from None
    return parse_table(text, path)


def parse_table(text: str, origin: str = "<table>") -> Table:
    """Validate the table literal `text`; `origin` prefixes every error message."""
    try:
        data = literal_eval(text)
    except (SyntaxError, ValueError) as error:
        line = getattr(error, "lineno", None)
        where = f"{origin}:{line}" if line else origin
        detail = re.sub(r"<ast\.(\w+) object at 0x[0-9a-f]+>", r"a \1 expression", str(error))
        raise TableError(f"{where}: not a Python literal: {detail}") from None
    try:
        return _table(data)
    except TableError as error:
        raise TableError(f"{origin}: {error}") from None


def literal_eval(text: str) -> Any:
    """`ast.literal_eval` for what a table holds: constants, dicts, lists, tuples, signed
    numbers; ValueError naming the first other expression."""
    tree: Any = compile(text.lstrip(" \t"), "<table>", "eval", _ast.PyCF_ONLY_AST)
    return _literal(tree.body)


def _literal(node: Any) -> Any:
    if isinstance(node, _ast.Constant):
        return node.value
    if isinstance(node, _ast.Dict) and None not in node.keys:
        return {_literal(key): _literal(value) for key, value in zip(node.keys, node.values)}
    if isinstance(node, _ast.List):
        return [_literal(element) for element in node.elts]
    if isinstance(node, _ast.Tuple):
        return tuple(_literal(element) for element in node.elts)
    if (isinstance(node, _ast.UnaryOp) and isinstance(node.op, (_ast.USub, _ast.UAdd))
            and isinstance(node.operand, _ast.Constant)
            and type(node.operand.value) in (int, float)):
        value: Any = node.operand.value
        return -value if isinstance(node.op, _ast.USub) else value
    raise ValueError(f"malformed node or string on line {getattr(node, 'lineno', '?')}: "
                     f"a {type(node).__name__} expression")


def _table(data: object) -> Table:
    top = _mapping(data, "table", required=("version", "services"),
                   optional={"image": "", "site": {}})
    if top["version"] != 1 or isinstance(top["version"], bool):
        raise TableError(f"version: expected 1, got {top['version']!r}")
    image = _string(top["image"], "image")
    site = _string_map(top["site"], "site", keys=VARIABLE_RE)
    entries = _list(top["services"], "services")
    services: list[Service] = []
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        where = f"services[{index}] ({name})" if isinstance(name, str) else f"services[{index}]"
        services.append(_service(entry, where, [s.name for s in services]))
    return Table(1, image, site, tuple(services))


def _service(data: object, where: str, earlier: list[str]) -> Service:
    entry = _mapping(data, where, required=("name", "argv"), optional=SERVICE_DEFAULTS)
    name = _string(entry["name"], f"{where}.name")
    if not NAME_RE.match(name):
        raise TableError(f"{where}.name: {name!r} is not a service name "
                         f"(letters, digits, _ . @ -; no spaces)")
    if name in earlier:
        raise TableError(f"{where}.name: {name!r} is listed twice")
    depends_on = tuple(_string(d, f"{where}.depends_on")
                       for d in _list(entry["depends_on"], f"{where}.depends_on"))
    for dependency in depends_on:
        if dependency not in earlier:
            raise TableError(f"{where}.depends_on: {dependency!r} is not a service listed "
                             f"before {name!r} (the table must be in dependency order)")
    reload_signal = entry["reload_signal"]
    return Service(
        name=name,
        argv=_argv(entry["argv"], f"{where}.argv"),
        user=_string(entry["user"], f"{where}.user"),
        group=_optional_string(entry["group"], f"{where}.group"),
        env=_string_map(entry["env"], f"{where}.env"),
        workdir=_absolute(entry["workdir"], f"{where}.workdir"),
        depends_on=depends_on,
        runtime_dirs=tuple(_runtime_dir(d, f"{where}.runtime_dirs[{i}]")
                           for i, d in enumerate(_list(entry["runtime_dirs"],
                                                       f"{where}.runtime_dirs"))),
        templates=tuple(_template(t, f"{where}.templates[{i}]")
                        for i, t in enumerate(_list(entry["templates"], f"{where}.templates"))),
        commands=tuple(_command(c, f"{where}.commands[{i}]")
                       for i, c in enumerate(_list(entry["commands"], f"{where}.commands"))),
        ready=_ready(entry["ready"], f"{where}.ready"),
        restart=_restart(entry["restart"], f"{where}.restart"),
        stop_signal=_signal(entry["stop_signal"], f"{where}.stop_signal"),
        stop_timeout=_positive(entry["stop_timeout"], f"{where}.stop_timeout"),
        critical=_bool(entry["critical"], f"{where}.critical"),
        reload_signal=(None if reload_signal is None
                       else _signal(reload_signal, f"{where}.reload_signal")),
        condition=tuple(_absolute(p, f"{where}.condition")
                        for p in _list(entry["condition"], f"{where}.condition")),
    )


def _runtime_dir(data: object, where: str) -> RuntimeDir:
    entry = _mapping(data, where, required=("path",),
                     optional={"owner": "root", "group": None, "mode": 0o755})
    return RuntimeDir(_absolute(entry["path"], f"{where}.path"),
                      _string(entry["owner"], f"{where}.owner"),
                      _optional_string(entry["group"], f"{where}.group"),
                      _mode(entry["mode"], f"{where}.mode"))


def _template(data: object, where: str) -> Template:
    entry = _mapping(data, where, required=("target", "content"),
                     optional={"mode": 0o644, "owner": "root", "group": None})
    return Template(_absolute(entry["target"], f"{where}.target"),
                    _string(entry["content"], f"{where}.content"),
                    _mode(entry["mode"], f"{where}.mode"),
                    _string(entry["owner"], f"{where}.owner"),
                    _optional_string(entry["group"], f"{where}.group"))


def _command(data: object, where: str) -> Command:
    entry = _mapping(data, where, required=("argv",),
                     optional={"user": "root", "group": None, "timeout": None})
    timeout = entry["timeout"]
    return Command(_argv(entry["argv"], f"{where}.argv"),
                   _string(entry["user"], f"{where}.user"),
                   _optional_string(entry["group"], f"{where}.group"),
                   None if timeout is None else _positive(timeout, f"{where}.timeout"))


def _ready(data: object, where: str) -> Ready:
    entry = _mapping({} if data is None else data, where, required=(), optional=READY_DEFAULTS)
    kind = entry["kind"]
    if kind not in READY_KINDS:
        raise TableError(f"{where}.kind: expected one of {', '.join(READY_KINDS)}, got {kind!r}")
    port = entry["port"]
    if port is not None and (not isinstance(port, int) or isinstance(port, bool)
                             or not 0 < port < 65536):
        raise TableError(f"{where}.port: expected a TCP port number, got {port!r}")
    if kind in ("tcp", "http") and port is None:
        raise TableError(f"{where}.port: {'an' if kind == 'http' else 'a'} {kind} probe "
                         f"needs a port")
    path = _optional_string(entry["path"], f"{where}.path")
    if kind in ("unix", "file") and not path:
        raise TableError(f"{where}.path: a {kind} probe needs a path")
    if kind == "http" and not (path and HTTP_PATH_RE.match(path)):
        raise TableError(f"{where}.path: an http probe needs a request path such as /healthz "
                         f"(printable ASCII, no spaces), got {path!r}")
    status = entry["status"]
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise TableError(f"{where}.status: expected an HTTP status 100-599, got {status!r}")
    argv = None if entry["argv"] is None else _argv(entry["argv"], f"{where}.argv")
    if kind == "command" and argv is None:
        raise TableError(f"{where}.argv: a command probe needs an argv")
    return Ready(kind, _string(entry["host"], f"{where}.host"), port, path, argv,
                 _positive(entry["timeout"], f"{where}.timeout"),
                 _positive(entry["interval"], f"{where}.interval"), status)


def _restart(data: object, where: str) -> Restart:
    entry = _mapping({} if data is None else data, where, required=(),
                     optional=RESTART_DEFAULTS)
    policy = entry["policy"]
    if policy not in RESTART_POLICIES:
        raise TableError(f"{where}.policy: expected one of {', '.join(RESTART_POLICIES)}, "
                         f"got {policy!r}")
    max_restarts = entry["max_restarts"]
    if not isinstance(max_restarts, int) or isinstance(max_restarts, bool) or max_restarts < 0:
        raise TableError(f"{where}.max_restarts: expected a count >= 0, got {max_restarts!r}")
    return Restart(policy, _non_negative(entry["backoff_initial"], f"{where}.backoff_initial"),
                   _non_negative(entry["backoff_max"], f"{where}.backoff_max"),
                   max_restarts, _positive(entry["window"], f"{where}.window"))


def _mapping(data: object, where: str, required: tuple[str, ...],
             optional: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TableError(f"{where}: expected a dict, got {type(data).__name__}")
    unknown = sorted(str(key) for key in data if key not in required and key not in optional)
    if unknown:
        raise TableError(f"{where}: unknown key(s) {', '.join(unknown)}")
    missing = [key for key in required if key not in data]
    if missing:
        raise TableError(f"{where}: missing key(s) {', '.join(missing)}")
    return {**optional, **data}


def _list(data: object, where: str) -> list[Any]:
    if not isinstance(data, (list, tuple)):
        raise TableError(f"{where}: expected a list, got {type(data).__name__}")
    return list(data)


def _string(data: object, where: str) -> str:
    if not isinstance(data, str):
        raise TableError(f"{where}: expected a string, got {data!r}")
    return data


def _optional_string(data: object, where: str) -> str | None:
    return None if data is None else _string(data, where)


def _absolute(data: object, where: str) -> str:
    path = _string(data, where)
    if not path.startswith("/"):
        raise TableError(f"{where}: expected an absolute path, got {path!r}")
    return path


def _argv(data: object, where: str) -> tuple[str, ...]:
    argv = tuple(_string(arg, where) for arg in _list(data, where))
    if not argv or not argv[0]:
        raise TableError(f"{where}: expected a non-empty argument list")
    return argv


def _string_map(data: object, where: str,
                keys: re.Pattern[str] | None = None) -> tuple[tuple[str, str], ...]:
    if not isinstance(data, dict):
        raise TableError(f"{where}: expected a dict, got {type(data).__name__}")
    pairs = []
    for key, value in data.items():
        if not isinstance(key, str) or (keys is not None and not keys.match(key)):
            raise TableError(f"{where}: {key!r} is not a valid name")
        pairs.append((key, _string(value, f"{where}.{key}")))
    return tuple(pairs)


def _number(data: object, where: str) -> float:
    if not isinstance(data, (int, float)) or isinstance(data, bool):
        raise TableError(f"{where}: expected a number, got {data!r}")
    return float(data)


def _positive(data: object, where: str) -> float:
    value = _number(data, where)
    if value <= 0:
        raise TableError(f"{where}: expected a number > 0, got {data!r}")
    return value


def _non_negative(data: object, where: str) -> float:
    value = _number(data, where)
    if value < 0:
        raise TableError(f"{where}: expected a number >= 0, got {data!r}")
    return value


def _bool(data: object, where: str) -> bool:
    if not isinstance(data, bool):
        raise TableError(f"{where}: expected True or False, got {data!r}")
    return data


def _mode(data: object, where: str) -> int:
    if not isinstance(data, int) or isinstance(data, bool) or not 0 <= data <= 0o7777:
        raise TableError(f"{where}: expected a file mode such as 0o644, got {data!r}")
    return data


def _signal(data: object, where: str) -> int:
    name = _string(data, where)
    full = name if name.startswith("SIG") else f"SIG{name}"
    try:
        return int(signal.Signals[full])
    except KeyError:
        raise TableError(f"{where}: {name!r} is not a signal name") from None
