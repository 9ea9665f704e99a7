"""One service file, `services/<name>.yaml` → a `Service`."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

from monoimage.recipe.fields import Fields
from monoimage.recipe.limits import MAX_SOURCE_BYTES, content_problem, shown
from monoimage.recipe.located_yaml import LocatedDocument
from monoimage.recipe.model import (
    ConfigCommand,
    FamilyPackages,
    Port,
    Probe,
    RestartPolicy,
    RuntimeDir,
    Service,
    Template,
)
from monoimage.recipe.scalars import (
    read_mode,
    read_name,
    read_packages,
    read_path,
    read_paths,
    read_port_number,
    read_signal,
    read_user,
    read_values,
)
from monoimage.recipe.settings import default
from monoimage.recipe.versions import Family

# linux/capability.h, CAP_CHOWN (0) to CAP_CHECKPOINT_RESTORE (40).
CAPABILITIES = frozenset((
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
))


def parse_service(doc: LocatedDocument, family: Family, root: Path) -> Service:
    """One `services/<name>.yaml` file → a `Service` of an image of `family` whose recipe
    folder is `root` (template sources must lie inside it)."""
    top = Fields(doc, (), doc.data if doc.data is not None else {})
    name = read_name(top, "name")
    stem = Path(doc.file).stem
    if name != stem:
        raise top.error("name", f"service '{name}' must live in a file named {name}.yaml, "
                                f"not {stem}.yaml")
    packages = _family_packages(top, family)
    config = top.mapping("config")
    templates = tuple(_template(Fields(doc, config.at("templates") + (i,), item), root)
                      for i, item in enumerate(config.items("templates")))
    commands = tuple(_command(Fields(doc, config.at("commands") + (i,), item))
                     for i, item in enumerate(config.items("commands")))
    config.done()

    run = top.mapping("run")
    if not run.has("argv"):
        raise doc.error(top.at("run"), "missing required key 'argv'")
    argv = _argv(run, "argv")
    user = read_user(run, "user")
    group = read_user(run, "group")
    env = read_values(run.mapping("env"), "is not a valid environment variable name")
    workdir = read_path(run, "workdir")
    run.done()

    stop = top.mapping("stop")
    stop_signal = read_signal(stop, "signal", purpose="stop")
    stop_timeout = stop.number("timeout")
    stop.done()

    service = Service(
        name=name, source=doc.file, description=top.text("description"),
        packages=packages, templates=templates, commands=commands,
        argv=argv, user=user, group=group, env=env, workdir=workdir,
        ready=_probe(top.mapping("ready")),
        depends_on=_depends_on(top, name),
        restart=_restart(top.mapping("restart")),
        stop_signal=stop_signal, stop_timeout=stop_timeout,
        reload_signal=read_signal(top, "reload_signal", purpose="reload"),
        critical=top.flag("critical"),
        volumes=read_paths(top, "volumes"),
        runtime_dirs=tuple(_runtime_dir(Fields(doc, top.at("runtime_dirs") + (i,), item))
                           for i, item in enumerate(top.items("runtime_dirs"))),
        ports=tuple(_port(top, i, item) for i, item in enumerate(top.items("ports"))),
        capabilities=_capabilities(top),
        condition=_condition(top.mapping("condition")),
        needs=_needs(top.mapping("needs")),
    )
    top.done()
    return service


def _family_packages(top: Fields, family: Family) -> FamilyPackages:
    value = top.raw("packages", None)
    if value is None or isinstance(value, list):
        return FamilyPackages(common=read_packages(top, "packages", family))
    sub = top.mapping("packages")
    packages = FamilyPackages(common=read_packages(sub, "all", family),
                              apt=read_packages(sub, "apt", Family.APT),
                              dnf=read_packages(sub, "dnf", Family.DNF))
    sub.done()
    return packages


def _template(fields: Fields, root: Path) -> Template:
    dest = read_path(fields, "dest", required=True)
    has_content, has_source = fields.has("content"), fields.has("source")
    if has_content == has_source:
        raise fields.doc.error(fields.path, "give exactly one of 'content' or 'source'")
    key = "content" if has_content else "source"
    if has_content:
        content = fields.raw("content")
        if not isinstance(content, str):
            raise fields.error("content", "must be text")
    else:
        content = _read_source(fields, root)
    problem = content_problem(content)
    if problem:
        raise fields.error(key, problem)
    template = Template(dest=dest, content=content, mode=read_mode(fields, "mode"),
                        owner=read_user(fields, "owner"), group=read_user(fields, "group"))
    fields.done()
    return template


def _read_source(fields: Fields, root: Path) -> str:
    """The text of a template's `source:`, a regular UTF-8 file inside the recipe's folder."""
    name: str = fields.text("source", required=True)
    if name.startswith("/"):
        raise fields.error("source", f"{shown(name)} must be a path relative to the service "
                                     "file's folder")
    path = Path(fields.doc.file).parent / name
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise fields.error("source", f"cannot read {shown(str(path))}: no such file") from None
    if not real.is_relative_to(root.resolve()):
        raise fields.error("source", f"{shown(name)} leads out of the recipe's folder {root}")
    try:
        handle = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        raise fields.error("source", f"cannot read {shown(name)}: {err.strerror}") from None
    with os.fdopen(handle, "rb") as source:
        if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
            raise fields.error("source", f"{shown(name)} is not a regular file")
        data = source.read(MAX_SOURCE_BYTES + 1)
    if len(data) > MAX_SOURCE_BYTES:
        raise fields.error("source", f"{shown(name)} is larger than {MAX_SOURCE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise fields.error("source", f"{shown(name)} is not UTF-8 text (line {line}); "
                                     "a template is text") from None


def _command(fields: Fields) -> ConfigCommand:
    command = ConfigCommand(argv=_argv(fields, "argv"), user=read_user(fields, "user"))
    fields.done()
    return command


def _argv(fields: Fields, key: str) -> tuple[str, ...]:
    value = fields.raw(key, None)
    if isinstance(value, str):
        raise fields.error(key, "is a shell string; give the command as a list of arguments "
                                "(no shell runs it), e.g. [nginx, -g, 'daemon off;']")
    argv = fields.texts(key)
    if not argv:
        raise fields.error(key, "must name a command")
    return argv


def _probe(fields: Fields) -> Probe:
    kinds = [k for k in ("tcp", "http", "unix", "file", "command") if fields.has(k)]
    timeout = fields.number("timeout")
    interval = fields.number("interval")
    if len(kinds) > 1:
        raise fields.doc.error(fields.path, f"give one probe, not {' and '.join(kinds)}")
    if not kinds:
        fields.done()
        return Probe(kind="none", timeout=timeout, interval=interval)
    kind = kinds[0]
    probe: Probe
    if kind == "tcp":
        value = fields.raw("tcp")
        if isinstance(value, int) and not isinstance(value, bool):
            probe = Probe(kind="tcp", port=read_port_number(fields, "tcp", value),
                          timeout=timeout, interval=interval)
        else:
            tcp = fields.mapping("tcp")
            probe = Probe(kind="tcp", port=read_port_number(tcp, "port", tcp.required("port")),
                          host=tcp.text("host"), timeout=timeout, interval=interval)
            tcp.done()
    elif kind == "http":
        probe = _http_probe(fields, timeout, interval)
    elif kind == "command":
        probe = Probe(kind="command", argv=_argv(fields, "command"), timeout=timeout,
                      interval=interval)
    else:
        probe = Probe(kind=kind, path=read_path(fields, kind, required=True),  # type: ignore[arg-type]
                      timeout=timeout, interval=interval)
    fields.done()
    return probe


def _http_probe(fields: Fields, timeout: float, interval: float) -> Probe:
    """`http: 80` or `http: {port: 80, path: /healthz, status: 200}`: a GET on 127.0.0.1."""
    value = fields.raw("http")
    if isinstance(value, int) and not isinstance(value, bool):
        return Probe(kind="http", port=read_port_number(fields, "http", value),
                     path=default("ready.http.path"), status=default("ready.http.status"),
                     timeout=timeout, interval=interval)
    http = fields.mapping("http")
    port = read_port_number(http, "port", http.required("port"))
    path = http.text("path")
    if not _HTTP_PATH_RE.fullmatch(path):
        raise http.error("path", f"{shown(path)} is not a request path: it starts with / "
                                 "and holds printable ASCII without spaces")
    status = http.whole("status")
    http.done()
    return Probe(kind="http", port=port, path=path, status=status, timeout=timeout,
                 interval=interval)


_HTTP_PATH_RE = re.compile(r"/[\x21-\x7e]*")


def _restart(fields: Fields) -> RestartPolicy:
    policy = fields.one_of("policy")
    backoff = fields.mapping("backoff")
    initial = backoff.number("initial")
    maximum = backoff.number("max")
    if maximum < initial:
        raise backoff.error("max", f"must be at least backoff.initial ({initial})")
    backoff.done()
    restart = RestartPolicy(policy=policy, backoff_initial=initial,  # type: ignore[arg-type]
                            backoff_max=maximum, max_restarts=fields.whole("max_restarts"),
                            window=fields.number("window"))
    fields.done()
    return restart


def _depends_on(top: Fields, name: str) -> tuple[str, ...]:
    deps = top.texts("depends_on")
    for i, dep in enumerate(deps):
        if dep == name:
            raise top.doc.error(top.at("depends_on") + (i,), "a service cannot depend on itself")
        if dep in deps[:i]:
            raise top.doc.error(top.at("depends_on") + (i,), f"'{dep}' is listed twice")
    return deps


def _runtime_dir(fields: Fields) -> RuntimeDir:
    runtime_dir = RuntimeDir(path=read_path(fields, "path", required=True),
                             owner=read_user(fields, "owner"), group=read_user(fields, "group"),
                             mode=read_mode(fields, "mode"))
    fields.done()
    return runtime_dir


def _port(top: Fields, i: int, item: Any) -> Port:
    where = top.at("ports") + (i,)
    text = str(item) if isinstance(item, int) and not isinstance(item, bool) else item
    match = re.fullmatch(r"(\d+)(?:/(tcp|udp))?", text) if isinstance(text, str) else None
    if not match:
        raise top.doc.error(where, f"{item!r} is not a port such as 1883 or 53/udp")
    number = int(match.group(1))
    if not 1 <= number <= 65535:
        raise top.doc.error(where, f"port {number} is out of range 1-65535")
    return Port(number, match.group(2) or "tcp")  # type: ignore[arg-type]


def _condition(fields: Fields) -> tuple[str, ...]:
    """`condition: {path_exists: [...]}`: what the host must provide for the service to run
    (systemd's ConditionPathExists=); on a host without it the init skips the service."""
    paths = read_paths(fields, "path_exists")
    fields.done()
    return paths


def _needs(fields: Fields) -> tuple[str, ...]:
    """`needs: {network: host, devices: [/dev/kvm]}`: what the image's `runtime:` must grant
    (the image recipe is checked against it), as `Runtime.grants` words."""
    words = [f"{ns}=host" for ns in ("network", "pid", "ipc")
             if _host_namespace(fields, ns)]
    words += ["privileged"] if fields.has("privileged") and _need_flag(fields) else []
    words += [f"device={d}" for d in read_paths(fields, "devices")]
    fields.done()
    return tuple(words)


def _host_namespace(fields: Fields, key: str) -> bool:
    value = fields.raw(key)
    if value is not None and value != "host":
        raise fields.error(key, f"a service needs `{key}: host` or nothing, not {shown(value)}")
    return value == "host"


def _need_flag(fields: Fields) -> bool:
    if fields.raw("privileged") is not True:
        raise fields.error("privileged", "a service needs `privileged: true` or nothing")
    return True


def _capabilities(top: Fields) -> tuple[str, ...]:
    caps = []
    for i, text in enumerate(top.texts("capabilities", limit=64)):
        cap = text.upper().removeprefix("CAP_")
        if cap not in CAPABILITIES:
            raise top.doc.error(top.at("capabilities") + (i,),
                                f"{shown(text)} is not a Linux capability (CAP_NET_ADMIN, …; "
                                "ALL is not allowed: name each one)")
        caps.append(cap)
    return tuple(caps)
