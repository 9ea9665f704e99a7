"""The parts of an image recipe around its services: distro and repositories, site values,
layering, strip and runtime."""

from __future__ import annotations

import re

from monoimage.recipe.fields import Fields
from monoimage.recipe.model import AptRepository, Distro, DnfRepository, Layering, Runtime, Strip
from monoimage.recipe.scalars import read_name, read_paths, read_values
from monoimage.recipe.versions import Family


def parse_distro(fields: Fields) -> Distro:
    name = read_name(fields, "name")
    release = fields.text("release", required=True)
    packager = Family(fields.one_of("packager"))
    repos: list[AptRepository | DnfRepository] = []
    for i, item in enumerate(fields.items("repositories")):
        repo_fields = Fields(fields.doc, fields.at("repositories") + (i,), item)
        repos.append(_apt_repo(repo_fields) if packager is Family.APT else _dnf_repo(repo_fields))
    if packager is Family.DNF and not repos:
        raise fields.error("repositories", "a dnf image needs at least one repository")
    distro = Distro(name=name, release=release, packager=packager,
                    architecture=fields.text("architecture"), variant=fields.one_of("variant"),
                    recommends=fields.flag("recommends"), repositories=tuple(repos))
    fields.done()
    return distro


def _apt_repo(fields: Fields) -> AptRepository:
    repo = AptRepository(uri=fields.text("uri", required=True),
                         suites=fields.texts("suites") or (fields.text("suite", required=True),),
                         components=fields.texts("components") or fields.default("components"),
                         signed_by=fields.text("signed_by"),
                         trusted=fields.flag("trusted"))
    fields.done()
    return repo


def _dnf_repo(fields: Fields) -> DnfRepository:
    repo_id = fields.text("id", required=True)
    if not re.fullmatch(r"[A-Za-z0-9_.:-]+", repo_id):
        raise fields.error("id", f"{repo_id!r} is not a valid repository id")
    repo = DnfRepository(id=repo_id, baseurl=fields.text("baseurl", required=True),
                         gpgcheck=fields.flag("gpgcheck"))
    fields.done()
    return repo


def parse_site(fields: Fields) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(read_values(fields, "site value names are letters, digits and '_'")))


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


def parse_strip(fields: Fields) -> Strip:
    strip = Strip(docs=fields.flag("docs"), man=fields.flag("man"),
                  locales=fields.flag("locales"), paths=read_paths(fields, "paths"),
                  packages=fields.texts("packages"))
    fields.done()
    return strip


def parse_runtime(fields: Fields) -> Runtime:
    memory = fields.text("memory")
    if not re.fullmatch(r"\d+[kmg]?", memory.lower()):
        raise fields.error("memory", f"{memory!r} is not a size such as 512m or 1g")
    runtime = Runtime(memory=memory.lower(), pids_limit=fields.whole("pids_limit"),
                      read_only=fields.flag("read_only"))
    fields.done()
    return runtime
