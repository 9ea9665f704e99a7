"""Recipe files → a validated, frozen `Recipe`.

Every problem a user can make in a recipe is reported as `FILE:LINE: key.path: what is wrong`
(a `RecipeError`), and nothing is built from a recipe that did not load. This module reads the
image file and checks the services together; `service.py` reads one service file,
`image_parts.py` the image file's other parts, `scalars.py` the values both use.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from monoimage.errors import RecipeError
from monoimage.init.render import placeholders
from monoimage.recipe.fields import Fields
from monoimage.recipe.image_parts import (
    parse_distro,
    parse_layering,
    parse_site,
    parse_strip,
)
from monoimage.recipe.located_yaml import KeyPath, load_located
from monoimage.recipe.model import Recipe, Service
from monoimage.recipe.reference import ReferenceError, check_name, check_tag
from monoimage.recipe.runtime import parse_runtime
from monoimage.recipe.scalars import NAME_RE, read_name, read_packages
from monoimage.recipe.service import parse_service

SERVICES_DIR = "services"


def load_recipe(path: Path | str) -> Recipe:
    """Load an image recipe and every service recipe it names."""
    path = Path(path)
    doc = load_located(path)
    top = Fields(doc, (), doc.data if doc.data is not None else {})
    image = top.mapping("image")
    name = read_name(image, "name")
    tag = image.text("tag", limit=128)
    for key, check, value in (("name", check_name, f"localhost/{name}"), ("tag", check_tag, tag)):
        try:
            check(value)
        except ReferenceError as err:
            raise image.error(key, str(err)) from None
    image.done()

    distro = parse_distro(top.mapping("distro"))
    family = distro.packager
    base = top.mapping("base")
    base_packages = read_packages(base, "packages", family)
    config_tools = read_packages(base, "config_tools", family)
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
        if not NAME_RE.fullmatch(svc_name) or not svc_path.is_file():
            raise doc.error(where, f"unknown service {svc_name!r}: no file {svc_path}")
        services.append(parse_service(load_located(svc_path), family, path.parent))
        digest.update(b"\0" + svc_name.encode() + b"\0" + svc_path.read_bytes())

    site, site_required, site_secrets = parse_site(top.mapping("site"))
    layering = parse_layering(top.mapping("layering"))
    strip = parse_strip(top.mapping("strip"), family)
    runtime = parse_runtime(top.mapping("runtime"))
    top.done()

    ordered = order_services(services)
    _check_needs(ordered, runtime.grants, str(path))
    _check_unique_dests(ordered)
    _check_placeholders(ordered, {n for n, _ in site} | set(site_required))
    return Recipe(
        name=name, tag=tag, source=str(path), digest="sha256:" + digest.hexdigest(),
        distro=distro, base_packages=base_packages, config_tools=config_tools,
        services=ordered, site=site, site_required=site_required, site_secrets=site_secrets,
        layering=layering, strip=strip, runtime=runtime,
    )


def _check_needs(services: tuple[Service, ...], grants: tuple[str, ...], image: str) -> None:
    """Every grant a service needs is one the image's `runtime:` gives."""
    for service in services:
        for need in service.needs:
            if need not in grants:
                key = need.partition("=")[0]
                key = "devices" if key == "device" else key
                raise _service_error(service, ("needs", key),
                                     f"{service.name} needs {need}, which the runtime of "
                                     f"{image} does not grant (runtime.{key})")


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


def _check_placeholders(services: tuple[Service, ...], declared: set[str]) -> None:
    """Every `{{ name }}` of a template is declared under `site:` (a default, a secret or a
    required value): a typo would otherwise only fail at boot."""
    for svc in services:
        for i, template in enumerate(svc.templates):
            unknown = [n for n in placeholders(template.content) if n not in declared]
            if unknown:
                raise _service_error(svc, ("config", "templates", i),
                                     f"{{{{ {unknown[0]} }}}} is not a site value of the "
                                     f"image: declare it under site: (a default, "
                                     f"`{{secret: true}}` or `{{required: true}}`)")


__all__ = ["RecipeError", "load_recipe", "order_services", "parse_service"]
