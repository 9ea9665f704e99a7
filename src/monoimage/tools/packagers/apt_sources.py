"""Apt sources as data: the build host's own sources, and one-line specs (`--repo-extra`)."""

from __future__ import annotations

import re
from pathlib import Path

from debian.deb822 import Deb822

from monoimage.errors import UserError
from monoimage.recipe.model import AptRepository
from monoimage.tools.packagers.apt import HOST_SOURCES

_OPTIONS = re.compile(r"^\[([^\]]*)\]\s*")


def parse_source_line(text: str) -> AptRepository:
    """`[signed-by=K trusted=yes] URI SUITE [COMPONENT…]` (a sources.list line without `deb`)."""
    line = text.strip().removeprefix("deb ").strip()
    options: dict[str, str] = {}
    match = _OPTIONS.match(line)
    if match:
        for item in match.group(1).split():
            key, _, value = item.partition("=")
            options[key.lower()] = value
        line = line[match.end():]
    parts = line.split()
    if len(parts) < 2:
        raise UserError(f"apt repository {text!r}: expected [OPTIONS] URI SUITE [COMPONENT...]")
    uri, suite, *components = parts
    return AptRepository(uri=uri, suites=(suite,), components=tuple(components) or ("main",),
                         signed_by=options.get("signed-by"),
                         trusted=options.get("trusted", "").lower() == "yes")


def host_repositories(sources: Path = HOST_SOURCES) -> tuple[AptRepository, ...]:
    """The build host's enabled `deb` sources (the ones apt uses when a recipe names none)."""
    repos: list[AptRepository] = []
    files = [sources / "sources.list", *sorted((sources / "sources.list.d").glob("*"))]
    for path in files:
        if not path.is_file():
            continue
        if path.suffix == ".sources":
            repos += _deb822_repositories(path.read_text())
        elif path.suffix == ".list" or path == sources / "sources.list":
            for line in path.read_text().splitlines():
                line = line.split("#", 1)[0].strip()
                if line.startswith("deb "):
                    repos.append(parse_source_line(line))
    return tuple(repos)


def _deb822_repositories(text: str) -> list[AptRepository]:
    repos = []
    for para in Deb822.iter_paragraphs(text.splitlines()):
        if "deb" not in para.get("Types", "").split():
            continue
        if para.get("Enabled", "yes").lower() == "no":
            continue
        for uri in para.get("URIs", "").split():
            repos.append(AptRepository(
                uri=uri, suites=tuple(para.get("Suites", "").split()),
                components=tuple(para.get("Components", "").split()) or ("main",),
                signed_by=para.get("Signed-By"),
                trusted=para.get("Trusted", "").lower() == "yes"))
    return repos
