"""The recipe's facts read back from a built image: its config (exposed ports, volumes), its
labels (capabilities, service ports, limits) and its service table, for `monoimage boot IMAGE`
without the recipe.

Pure: takes the inspect data and the table's text; `pipeline/boot.py` reads them with podman.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Literal

from monoimage.errors import UserError
from monoimage.image import (
    LABEL_CAPABILITIES,
    LABEL_DEVICES,
    LABEL_HOST_MOUNTS,
    LABEL_IPC,
    LABEL_MEMORY,
    LABEL_NETWORK,
    LABEL_PACKAGER,
    LABEL_PID,
    LABEL_PIDS_LIMIT,
    LABEL_PRIVILEGED,
    LABEL_READ_ONLY,
    LABEL_RECIPE_DIGEST,
    LABEL_SERVICE_PORTS,
    LABEL_SYSCTLS,
    LABEL_TITLE,
    TABLE_PATH,
)
from monoimage.init.render import placeholders
from monoimage.init.table import Table, TableError, parse_table
from monoimage.recipe.model import Distro, HostMount, Port, Probe, Recipe, Runtime, Service
from monoimage.recipe.versions import Family


def recipe_from_image(image: str, inspect: dict[str, Any], table_text: str
                      ) -> tuple[Recipe, list[str]]:
    """A Recipe holding what boot needs, from the image's table, config and labels; the notes
    say what had to be assumed."""
    try:
        table = parse_table(table_text, f"{image}:{TABLE_PATH}")
    except TableError as error:
        raise UserError(str(error)) from None
    config = inspect.get("Config") or {}
    labels = config.get("Labels") or inspect.get("Labels") or {}
    notes: list[str] = []
    exposed = sorted((_port(p) for p in (config.get("ExposedPorts") or {})),
                     key=lambda p: (p.number, p.protocol))
    owners = service_ports(labels.get(LABEL_SERVICE_PORTS, ""), table.services, exposed)
    services = []
    for index, entry in enumerate(table.services):
        ready = entry.ready
        services.append(Service(
            name=entry.name, source=image, depends_on=entry.depends_on,
            stop_timeout=entry.stop_timeout,
            ready=Probe(kind=ready.kind, port=ready.port, host=ready.host,  # type: ignore[arg-type]
                        path=ready.path, timeout=ready.timeout, interval=ready.interval,
                        status=ready.status if ready.kind == "http" else None),
            ports=owners.get(entry.name, ()),
            # The image records the union of capabilities and volumes: the first service
            # carries them, which is all the run profile looks at.
            capabilities=tuple(c for c in labels.get(LABEL_CAPABILITIES, "").split(",") if c)
            if index == 0 else (),
            volumes=tuple(sorted(config.get("Volumes") or {})) if index == 0 else ()))
    unowned = [p for p in exposed if not any(p in ports for ports in owners.values())]
    if unowned and services:
        services[0] = replace(services[0], ports=services[0].ports + tuple(unowned))
    if LABEL_SERVICE_PORTS not in labels:
        notes.append(f"the image has no {LABEL_SERVICE_PORTS} label: ports are matched to "
                     f"services by their readiness probes"
                     + (f"; {', '.join(map(str, unowned))} counted under {services[0].name}"
                        if unowned and services else ""))
    runtime = runtime_from_labels(labels)
    if LABEL_MEMORY not in labels:
        notes.append(f"the image has no {LABEL_MEMORY} label: default limits "
                     f"({runtime.memory}, {runtime.pids_limit} pids); --recipe gives the "
                     f"recipe's")
    name, _, tag = image.rpartition("/")[2].partition(":")
    packager = labels.get(LABEL_PACKAGER, "apt")
    recipe = Recipe(
        name=labels.get(LABEL_TITLE, name), tag=tag or "latest",
        source=image, digest=labels.get(LABEL_RECIPE_DIGEST, ""),
        distro=Distro(name="", release="", packager=Family(packager)),
        services=tuple(services), site=table.site, site_required=_site_required(table),
        runtime=runtime)
    return recipe, notes


def service_ports(label: str, services: tuple[Any, ...], exposed: list[Port]
                  ) -> dict[str, tuple[Port, ...]]:
    """Which service owns which port: the image's label when it has one, else each service
    gets the exposed ports that carry its tcp readiness probe's number (tcp and udp)."""
    owners: dict[str, tuple[Port, ...]] = {}
    if label:
        for part in label.split(";"):
            service, _, ports = part.partition("=")
            owners[service.strip()] = tuple(_port(p) for p in ports.split(",") if p.strip())
        return owners
    for entry in services:
        if entry.ready.kind in ("tcp", "http") and entry.ready.port is not None:
            owners[entry.name] = tuple(p for p in exposed if p.number == entry.ready.port)
    return owners


def runtime_from_labels(labels: dict[str, str]) -> Runtime:
    default = Runtime()
    try:
        pids = int(labels.get(LABEL_PIDS_LIMIT, default.pids_limit))
    except ValueError:
        pids = default.pids_limit
    return Runtime(memory=labels.get(LABEL_MEMORY, default.memory), pids_limit=pids,
                   read_only=labels.get(LABEL_READ_ONLY, "true").lower() != "false",
                   network=_namespace(labels, LABEL_NETWORK),
                   pid=_namespace(labels, LABEL_PID), ipc=_namespace(labels, LABEL_IPC),
                   privileged=labels.get(LABEL_PRIVILEGED, "false").lower() == "true",
                   devices=tuple(d for d in labels.get(LABEL_DEVICES, "").split(",") if d),
                   host_mounts=tuple(_host_mount(m) for m in
                                     labels.get(LABEL_HOST_MOUNTS, "").split(",") if m),
                   sysctls=_sysctls(labels.get(LABEL_SYSCTLS, "")))


def _namespace(labels: dict[str, str], label: str) -> Literal["private", "host"]:
    return "host" if labels.get(label) == "host" else "private"


def _host_mount(text: str) -> HostMount:
    source, _, rest = text.partition(":")
    target, _, mode = rest.partition(":")
    if not source.startswith("/") or not target.startswith("/"):
        raise UserError(f"the image's {LABEL_HOST_MOUNTS} label holds {text!r}, not "
                        f"SOURCE:TARGET:ro|rw")
    return HostMount(source, target, read_only=mode != "rw")


def _sysctls(text: str) -> tuple[tuple[str, str], ...]:
    if not text:
        return ()
    try:
        values = json.loads(text)
    except ValueError:
        values = None
    if not isinstance(values, dict):
        raise UserError(f"the image's {LABEL_SYSCTLS} label is not a JSON object: {text!r}")
    return tuple(sorted((str(k), str(v)) for k, v in values.items()))


def _port(text: str) -> Port:
    number, _, protocol = text.strip().partition("/")
    return Port(int(number), "udp" if protocol == "udp" else "tcp")


def _site_required(table: Table) -> tuple[str, ...]:
    """The site values the table's templates use that it has no default for (secrets and
    required values): the run must give them."""
    used = {name for service in table.services for template in service.templates
            for name in placeholders(template.content)}
    return tuple(sorted(used - set(dict(table.site))))
