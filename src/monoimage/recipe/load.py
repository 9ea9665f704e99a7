"""Recipe files → a validated, frozen `Recipe`.

Every problem a user can make in a recipe is reported as `FILE:LINE: key.path: what is wrong`
(a `RecipeError`), and nothing is built from a recipe that did not load.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import signal
from pathlib import Path
from typing import Any

from monoimage.errors import RecipeError
from monoimage.recipe.fields import Fields
from monoimage.recipe.located_yaml import KeyPath, LocatedDocument, load_located
from monoimage.recipe.model import (
    AptRepository,
    ConfigCommand,
    Distro,
    DnfRepository,
    FamilyPackages,
    Layering,
    PackageRequest,
    Port,
    Probe,
    Recipe,
    RestartPolicy,
    Runtime,
    RuntimeDir,
    Service,
    Strip,
    Template,
)
from monoimage.recipe.versions import Family, parse_constraint

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
USER_RE = re.compile(r"^[a-z_][a-z0-9_-]*\$?$")
CAPABILITY_RE = re.compile(r"^[A-Z][A-Z_]+$")
SIGNALS = frozenset(s.name for s in signal.Signals if not s.name.startswith("SIG_"))
SERVICES_DIR = "services"


def load_recipe(path: Path | str) -> Recipe:
    """Load an image recipe and every service recipe it names."""
    path = Path(path)
    doc = load_located(path)
    top = Fields(doc, (), doc.data if doc.data is not None else {})
    image = top.mapping("image")
    name = _name(image, "name", required=True)
    tag = image.text("tag", "latest")
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag):
        raise image.error("tag", f"{tag!r} is not a valid image tag")
    image.done()

    distro = _distro(top.mapping("distro"))
    base = top.mapping("base")
    base_packages = _package_list(base, "packages")
    config_tools = _package_list(base, "config_tools")
    base.done()

    services_dir = path.parent / SERVICES_DIR
    names = top.texts("services")
    if not names:
        raise doc.error(("services",), "an image needs at least one service")
    services: list[Service] = []
    digest = hashlib.sha256(path.read_bytes())
    seen: dict[str, int] = {}
    for i, svc_name in enumerate(names):
        where = ("services", i)
        if svc_name in seen:
            raise doc.error(where, f"service '{svc_name}' is listed twice "
                                   f"(first as services[{seen[svc_name]}])")
        seen[svc_name] = i
        svc_path = services_dir / f"{svc_name}.yaml"
        if not NAME_RE.match(svc_name) or not svc_path.is_file():
            raise doc.error(where, f"unknown service '{svc_name}': no file {svc_path}")
        services.append(parse_service(load_located(svc_path)))
        digest.update(b"\0" + svc_name.encode() + b"\0" + svc_path.read_bytes())

    site = _site(top.mapping("site"))
    layering = _layering(top.mapping("layering"))
    strip = _strip(top.mapping("strip"))
    runtime = _runtime(top.mapping("runtime"))
    top.done()

    ordered = order_services(services)
    _check_unique_dests(ordered)
    return Recipe(
        name=name, tag=tag, source=str(path), digest="sha256:" + digest.hexdigest(),
        distro=distro, base_packages=base_packages, config_tools=config_tools,
        services=ordered, site=site, layering=layering, strip=strip, runtime=runtime,
    )


def parse_service(doc: LocatedDocument) -> Service:
    """One `services/<name>.yaml` file → a `Service`."""
    top = Fields(doc, (), doc.data if doc.data is not None else {})
    name = _name(top, "name", required=True)
    stem = Path(doc.file).stem
    if name != stem:
        raise top.error("name", f"service '{name}' must live in a file named {name}.yaml, "
                                f"not {stem}.yaml")
    packages = _family_packages(top)
    config = top.mapping("config")
    templates = tuple(_template(Fields(doc, config.at("templates") + (i,), item))
                      for i, item in enumerate(config.items("templates")))
    commands = tuple(_command(Fields(doc, config.at("commands") + (i,), item))
                     for i, item in enumerate(config.items("commands")))
    config.done()

    run = top.mapping("run")
    if not run.has("argv"):
        raise doc.error(top.at("run"), "missing required key 'argv'")
    argv = _argv(run, "argv")
    user = _user(run, "user", "root")
    group = _user(run, "group", None)
    env = _env(run.mapping("env"))
    workdir = _abs_path(run, "workdir", "/")
    run.done()

    stop = top.mapping("stop")
    stop_signal = _signal(stop, "signal", "SIGTERM")
    stop_timeout = stop.number("timeout", 10.0, minimum=0.1)
    stop.done()

    service = Service(
        name=name, source=doc.file, description=top.text("description", ""),
        packages=packages, templates=templates, commands=commands,
        argv=argv, user=user, group=group, env=env, workdir=workdir,
        ready=_probe(top.mapping("ready")),
        depends_on=_depends_on(top, name),
        restart=_restart(top.mapping("restart")),
        stop_signal=stop_signal, stop_timeout=stop_timeout,
        reload_signal=_signal(top, "reload_signal", "SIGHUP"),
        critical=top.flag("critical", True),
        volumes=_abs_paths(top, "volumes"),
        runtime_dirs=tuple(_runtime_dir(Fields(doc, top.at("runtime_dirs") + (i,), item))
                           for i, item in enumerate(top.items("runtime_dirs"))),
        ports=tuple(_port(top, i, item) for i, item in enumerate(top.items("ports"))),
        capabilities=_capabilities(top),
    )
    top.done()
    return service


# --- service parts -------------------------------------------------------------------------

def _family_packages(top: Fields) -> FamilyPackages:
    value = top.raw("packages", None)
    if value is None or isinstance(value, list):
        return FamilyPackages(common=_package_list(top, "packages"))
    sub = top.mapping("packages")
    packages = FamilyPackages(common=_package_list(sub, "all"), apt=_package_list(sub, "apt"),
                              dnf=_package_list(sub, "dnf"))
    sub.done()
    return packages


def _package_list(fields: Fields, key: str) -> tuple[PackageRequest, ...]:
    result = []
    names: set[str] = set()
    for i, text in enumerate(fields.texts(key)):
        try:
            name, constraint = parse_constraint(text)
        except ValueError as err:
            raise fields.doc.error(fields.at(key) + (i,), str(err)) from None
        if name in names:
            raise fields.doc.error(fields.at(key) + (i,), f"package '{name}' is listed twice")
        names.add(name)
        result.append(PackageRequest(name, constraint))
    return tuple(result)


def _template(fields: Fields) -> Template:
    dest = _abs_path(fields, "dest", None, required=True)
    has_content, has_source = fields.has("content"), fields.has("source")
    if has_content == has_source:
        raise fields.doc.error(fields.path, "give exactly one of 'content' or 'source'")
    if has_content:
        content = fields.raw("content")
        if not isinstance(content, str):
            raise fields.error("content", "must be text")
    else:
        source_name = fields.text("source", required=True)
        source = Path(fields.doc.file).parent / source_name
        try:
            content = source.read_text(encoding="utf-8")
        except OSError as err:
            raise fields.error("source", f"cannot read {source}: {err.strerror}") from None
    template = Template(dest=dest, content=content, mode=_mode(fields, "mode", 0o644),
                        owner=_user(fields, "owner", "root"), group=_user(fields, "group", None))
    fields.done()
    return template


def _command(fields: Fields) -> ConfigCommand:
    command = ConfigCommand(argv=_argv(fields, "argv"), user=_user(fields, "user", "root"))
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


def _env(fields: Fields) -> tuple[tuple[str, str], ...]:
    result = []
    for key, value in fields.value.items():
        fields.raw(key)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise fields.error(key, "is not a valid environment variable name")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise fields.error(key, "must be a string or a number")
        result.append((key, str(value)))
    return tuple(result)


def _probe(fields: Fields) -> Probe:
    kinds = [k for k in ("tcp", "unix", "file", "command") if fields.has(k)]
    timeout = fields.number("timeout", 30.0, minimum=0.1)
    interval = fields.number("interval", 0.1, minimum=0.01)
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
            port, host = _port_number(fields, "tcp", value), "127.0.0.1"
        else:
            tcp = fields.mapping("tcp")
            port = _port_number(tcp, "port", tcp.required("port"))
            host = tcp.text("host", "127.0.0.1")
            tcp.done()
        probe = Probe(kind="tcp", port=port, host=host, timeout=timeout, interval=interval)
    elif kind == "command":
        probe = Probe(kind="command", argv=_argv(fields, "command"), timeout=timeout,
                      interval=interval)
    else:
        probe = Probe(kind=kind, path=_abs_path(fields, kind, None, required=True),  # type: ignore[arg-type]
                      timeout=timeout, interval=interval)
    fields.done()
    return probe


def _restart(fields: Fields) -> RestartPolicy:
    policy = fields.one_of("policy", ("always", "on-failure", "never"), "on-failure")
    backoff = fields.mapping("backoff")
    initial = backoff.number("initial", 0.5, minimum=0.0)
    maximum = backoff.number("max", 30.0, minimum=0.0)
    if maximum < initial:
        raise backoff.error("max", f"must be at least backoff.initial ({initial})")
    backoff.done()
    restart = RestartPolicy(policy=policy, backoff_initial=initial,  # type: ignore[arg-type]
                            backoff_max=maximum, max_restarts=fields.whole("max_restarts", 5),
                            window=fields.number("window", 60.0, minimum=1.0))
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
    runtime_dir = RuntimeDir(path=_abs_path(fields, "path", None, required=True),
                             owner=_user(fields, "owner", "root"),
                             group=_user(fields, "group", None),
                             mode=_mode(fields, "mode", 0o755))
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


def _capabilities(top: Fields) -> tuple[str, ...]:
    caps = []
    for i, cap in enumerate(top.texts("capabilities")):
        cap = cap.upper().removeprefix("CAP_")
        if not CAPABILITY_RE.match(cap):
            raise top.doc.error(top.at("capabilities") + (i,), f"{cap!r} is not a capability")
        caps.append(cap)
    return tuple(caps)


# --- image parts ---------------------------------------------------------------------------

def _distro(fields: Fields) -> Distro:
    name = _name(fields, "name", required=True)
    release = fields.text("release", required=True)
    packager = Family(fields.one_of("packager", ("apt", "dnf"), "apt"))
    repos: list[AptRepository | DnfRepository] = []
    for i, item in enumerate(fields.items("repositories")):
        repo_fields = Fields(fields.doc, fields.at("repositories") + (i,), item)
        repos.append(_apt_repo(repo_fields) if packager is Family.APT else _dnf_repo(repo_fields))
    if packager is Family.DNF and not repos:
        raise fields.error("repositories", "a dnf image needs at least one repository")
    distro = Distro(name=name, release=release, packager=packager,
                    architecture=fields.text("architecture", "amd64"),
                    variant=fields.one_of("variant", ("minbase", "essential", "required"),
                                          "minbase"),
                    recommends=fields.flag("recommends", False), repositories=tuple(repos))
    fields.done()
    return distro


def _apt_repo(fields: Fields) -> AptRepository:
    repo = AptRepository(uri=fields.text("uri", required=True),
                         suites=fields.texts("suites") or (fields.text("suite", required=True),),
                         components=fields.texts("components") or ("main",),
                         signed_by=fields.text("signed_by", None),
                         trusted=fields.flag("trusted", False))
    fields.done()
    return repo


def _dnf_repo(fields: Fields) -> DnfRepository:
    repo_id = fields.text("id", required=True)
    if not re.fullmatch(r"[A-Za-z0-9_.:-]+", repo_id):
        raise fields.error("id", f"{repo_id!r} is not a valid repository id")
    repo = DnfRepository(id=repo_id, baseurl=fields.text("baseurl", required=True),
                         gpgcheck=fields.flag("gpgcheck", False))
    fields.done()
    return repo


def _site(fields: Fields) -> tuple[tuple[str, str], ...]:
    result = []
    for key, value in fields.value.items():
        fields.raw(key)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise fields.error(key, "site value names are letters, digits and '_'")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise fields.error(key, "must be a string or a number")
        result.append((key, str(value)))
    return tuple(sorted(result))


def _layering(fields: Fields) -> Layering:
    layering = Layering(policy=fields.one_of("policy", ("single", "packages"),  # type: ignore[arg-type]
                                             "single"),
                        max_layers=fields.whole("max_layers", 60, minimum=2))
    fields.done()
    return layering


def _strip(fields: Fields) -> Strip:
    strip = Strip(docs=fields.flag("docs", True), man=fields.flag("man", True),
                  locales=fields.flag("locales", True), paths=_abs_paths(fields, "paths"),
                  packages=fields.texts("packages"))
    fields.done()
    return strip


def _runtime(fields: Fields) -> Runtime:
    memory = fields.text("memory", "1g")
    if not re.fullmatch(r"\d+[kmg]?", memory.lower()):
        raise fields.error("memory", f"{memory!r} is not a size such as 512m or 1g")
    runtime = Runtime(memory=memory.lower(), pids_limit=fields.whole("pids_limit", 2048, minimum=16),
                      read_only=fields.flag("read_only", True))
    fields.done()
    return runtime


# --- whole-recipe checks -------------------------------------------------------------------

def _service_error(service: Service, path: KeyPath, message: str) -> RecipeError:
    # The service file is read again for its line numbers only on this error path.
    return load_located(Path(service.source)).error(path, message)


def order_services(services: list[Service]) -> tuple[Service, ...]:
    """Services in dependency order (stable: recipe order among equals); cycles are errors."""
    by_name = {s.name: s for s in services}
    for svc in services:
        for i, dep in enumerate(svc.depends_on):
            if dep not in by_name:
                raise _service_error(svc, ("depends_on", i),
                                           f"depends on '{dep}', which this image does not run")
    ordered: list[Service] = []
    state: dict[str, str] = {}

    def visit(svc: Service, trail: list[str]) -> None:
        if state.get(svc.name) == "done":
            return
        if state.get(svc.name) == "visiting":
            cycle = trail[trail.index(svc.name):] + [svc.name]
            first = by_name[cycle[0]]
            index = first.depends_on.index(cycle[1])
            raise _service_error(first, ("depends_on", index),
                                         "dependency cycle: " + " -> ".join(cycle))
        state[svc.name] = "visiting"
        for dep in svc.depends_on:
            visit(by_name[dep], trail + [svc.name])
        state[svc.name] = "done"
        ordered.append(svc)

    for svc in services:
        visit(svc, [])
    return tuple(ordered)


def _check_unique_dests(services: tuple[Service, ...]) -> None:
    owners: dict[str, str] = {}
    for svc in services:
        for i, template in enumerate(svc.templates):
            if template.dest in owners:
                raise _service_error(svc, ("config", "templates", i, "dest"),
                                f"{template.dest} is also rendered by service "
                                f"'{owners[template.dest]}'")
            owners[template.dest] = svc.name


# --- scalars -------------------------------------------------------------------------------

def _name(fields: Fields, key: str, *, required: bool = False) -> str:
    value: str = fields.text(key, None, required=required)
    if not NAME_RE.match(value):
        raise fields.error(key, f"{value!r} is not a valid name (lower-case letters, digits, "
                                "'.', '_', '-')")
    return value


def _user(fields: Fields, key: str, default: str | None) -> Any:
    value = fields.text(key, default)
    if value is not None and not USER_RE.match(value):
        raise fields.error(key, f"{value!r} is not a valid user or group name")
    return value


def _mode(fields: Fields, key: str, default: int) -> int:
    value = fields.raw(key, None)
    if value is None:
        return default
    if not isinstance(value, str) or not re.fullmatch(r"0?[0-7]{3,4}", value):
        raise fields.error(key, f"give the mode as a quoted octal string such as \"0644\", "
                                f"not {value!r}")
    return int(value, 8)


def _abs_path(fields: Fields, key: str, default: str | None, *, required: bool = False) -> Any:
    value = fields.text(key, default, required=required)
    if value is not None:
        _check_image_path(fields.doc, fields.at(key), value)
    return value


def _abs_paths(fields: Fields, key: str) -> tuple[str, ...]:
    paths = fields.texts(key)
    for i, path in enumerate(paths):
        _check_image_path(fields.doc, fields.at(key) + (i,), path)
    return paths


def _check_image_path(doc: LocatedDocument, where: KeyPath, value: str) -> None:
    if not value.startswith("/"):
        raise doc.error(where, f"{value!r} must be an absolute path inside the image")
    if value != "/" and (".." in value.split("/") or posixpath.normpath(value) != value):
        raise doc.error(where, f"{value!r} leaves the image root or is not a normal path")


def _port_number(fields: Fields, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise fields.error(key, f"{value!r} is not a port number 1-65535")
    return value


def _signal(fields: Fields, key: str, default: str) -> str:
    value = fields.text(key, default).upper()
    if not value.startswith("SIG"):
        value = "SIG" + value
    if value not in SIGNALS:
        raise fields.error(key, f"{value!r} is not a signal name")
    return str(value)


__all__ = ["RecipeError", "load_recipe", "order_services", "parse_service"]
