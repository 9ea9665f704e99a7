"""The parts of an image recipe around its services: distro and repositories, site values,
layering and strip (`runtime.py` reads `runtime:`).

Repository fields end up in apt's sources and dnf's .repo files, one field a line: each is a
single token checked here (a URL with its scheme and host, suites, components, ids, key paths),
so no value can add a line such as `Trusted: yes` or `gpgcheck=0`."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from monoimage.recipe.fields import Fields
from monoimage.recipe.limits import shown
from monoimage.recipe.located_yaml import KeyPath
from monoimage.recipe.model import AptRepository, Distro, DnfRepository, Layering, Strip
from monoimage.recipe.scalars import (
    check_variable_name,
    read_name,
    read_package_names,
    read_paths,
    read_value,
)
from monoimage.recipe.versions import Family

URL_SCHEMES = ("http", "https", "file")
TOKEN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:~+-]*")  # a release, an architecture, a component
SUITE_RE = re.compile(r"[A-Za-z0-9_.~+-][A-Za-z0-9_./~+-]*|\./|/")  # `./` is a flat repository
COMPONENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.~+-]*(?:/[A-Za-z0-9][A-Za-z0-9_.~+-]*)*")
REPO_ID_RE = re.compile(r"[A-Za-z0-9_.:-]+")
KEY_PATH_RE = re.compile(r"/[A-Za-z0-9_./+@-]+")
SITE_NAME = "site value names are letters, digits and '_'"


def parse_distro(fields: Fields) -> Distro:
    name = read_name(fields, "name")
    release = _token(fields, "release", required=True)
    packager = Family(fields.one_of("packager"))
    repos: list[AptRepository | DnfRepository] = []
    for i, item in enumerate(fields.items("repositories")):
        repo_fields = Fields(fields.doc, fields.at("repositories") + (i,), item)
        repos.append(_apt_repo(repo_fields) if packager is Family.APT else _dnf_repo(repo_fields))
    if packager is Family.DNF and not repos:
        raise fields.error("repositories", "a dnf image needs at least one repository")
    distro = Distro(name=name, release=release, packager=packager,
                    architecture=_token(fields, "architecture"),
                    variant=fields.one_of("variant"),
                    recommends=fields.flag("recommends"), repositories=tuple(repos))
    fields.done()
    return distro


def _token(fields: Fields, key: str, *, required: bool = False) -> str:
    value: str = fields.text(key, required=required, limit=128)
    if not TOKEN_RE.fullmatch(value):
        raise fields.error(key, f"{shown(value)} is not one word (letters, digits, "
                                "'_ . : ~ + -')")
    return value


def _url(fields: Fields, key: str) -> str:
    value: str = fields.text(key, required=True)
    check_url(fields, fields.at(key), value)
    return value


def check_url(fields: Fields, where: KeyPath, value: str) -> None:
    """`value` must be an http, https or file URL with no spaces (one token in a sources line)."""
    if any(c.isspace() for c in value):
        raise fields.doc.error(where, f"{shown(value)} contains a space: a URL has none")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError as err:
        raise fields.doc.error(where, f"{shown(value)} is not a URL: {err}") from None
    if parts.scheme not in URL_SCHEMES:
        raise fields.doc.error(where, f"{shown(value)}: the scheme must be one of "
                                      f"{', '.join(URL_SCHEMES)}")
    if parts.scheme != "file" and not parts.hostname:
        raise fields.doc.error(where, f"{shown(value)} names no host")
    if parts.scheme == "file" and (parts.netloc or not parts.path.startswith("/")):
        raise fields.doc.error(where, f"{shown(value)}: a file URL is file:///absolute/path")


def _apt_repo(fields: Fields) -> AptRepository:
    uri = _url(fields, "uri")
    suites = fields.texts("suites", limit=128) or (fields.text("suite", required=True, limit=128),)
    key = "suites" if fields.has("suites") else "suite"
    for i, suite in enumerate(suites):
        if not SUITE_RE.fullmatch(suite):
            where = fields.at(key) + ((i,) if key == "suites" else ())
            raise fields.doc.error(where, f"{shown(suite)} is not a suite name")
    components = fields.texts("components", limit=128) or fields.default("components")
    for i, component in enumerate(components):
        if not COMPONENT_RE.fullmatch(component):
            raise fields.doc.error(fields.at("components") + (i,),
                                   f"{shown(component)} is not a component name")
    signed_by = fields.text("signed_by")
    if signed_by is not None and not KEY_PATH_RE.fullmatch(signed_by):
        raise fields.error("signed_by", f"{shown(signed_by)} is not an absolute path to a key "
                                        "file")
    repo = AptRepository(uri=uri, suites=suites, components=components, signed_by=signed_by,
                         trusted=fields.flag("trusted"))
    fields.done()
    return repo


def _dnf_repo(fields: Fields) -> DnfRepository:
    repo_id = fields.text("id", required=True, limit=128)
    if not REPO_ID_RE.fullmatch(repo_id):
        raise fields.error("id", f"{shown(repo_id)} is not a valid repository id")
    repo = DnfRepository(id=repo_id, baseurl=_url(fields, "baseurl"),
                         gpgcheck=fields.flag("gpgcheck"))
    fields.done()
    return repo


def parse_site(fields: Fields) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...],
                                         tuple[str, ...]]:
    """The site values: (defaults, names given at run time, the secrets among them)."""
    defaults: list[tuple[str, str]] = []
    required: list[str] = []
    secrets: list[str] = []
    for name in list(fields.value):
        if not isinstance(fields.value[name], dict):
            defaults.append((name, read_value(fields, name, SITE_NAME)))
            continue
        fields.raw(name)
        check_variable_name(fields, name, SITE_NAME)
        declared = fields.mapping(name)
        secret, needed = declared.flag("secret"), declared.flag("required")
        if declared.has("default"):
            if secret or needed:
                raise declared.error("default", "a secret or required value has no default "
                                                "in the image: give it at run time")
            defaults.append((name, read_value(declared, "default", SITE_NAME)))
        elif not (secret or needed):
            raise fields.error(name, "give a default, `secret: true` or `required: true`")
        else:
            required.append(name)
            if secret:
                secrets.append(name)
        declared.done()
    return tuple(sorted(defaults)), tuple(sorted(required)), tuple(sorted(secrets))


def parse_layering(fields: Fields) -> Layering:
    layering = Layering(policy=fields.one_of("policy"),  # type: ignore[arg-type]
                        max_layers=fields.whole("max_layers"),
                        updates=fields.one_of("updates"),  # type: ignore[arg-type]
                        max_deltas=fields.whole("max_deltas"),
                        max_shadowed=fields.number("max_shadowed"))
    if layering.max_shadowed > 1:
        raise fields.error("max_shadowed", f"a share of the image's bytes, at most 1, not "
                                           f"{layering.max_shadowed:g}")
    if layering.updates == "delta" and layering.policy != "packages":
        raise fields.error("updates", "delta updates need policy: packages")
    fields.done()
    return layering


def parse_strip(fields: Fields, family: Family) -> Strip:
    strip = Strip(docs=fields.flag("docs"), man=fields.flag("man"),
                  locales=fields.flag("locales"), paths=read_paths(fields, "paths"),
                  packages=read_package_names(fields, "packages", family))
    fields.done()
    return strip
