"""apt: resolve with a private APT root and real `apt-get -s`; install with mmdebstrap.

The private root (under the cache directory) holds its own sources, lists and a dpkg status
file seeded with the distro's minimal set, so a resolution is "what apt would add on top of
minbase", exactly as mmdebstrap installs it. The host's apt state is never read or written,
except its sources (the default when the recipe names no repositories) and trusted keys.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from debian.deb822 import Deb822

from monoimage.errors import UserError
from monoimage.plan.merge import PackageEntry, PackageSet
from monoimage.plan.resolution import (
    InstalledPackage,
    Resolution,
    ResolvedPackage,
    choose_version,
)
from monoimage.recipe.model import AptRepository, Recipe
from monoimage.recipe.versions import Family
from monoimage.tools.cache_dir import locked
from monoimage.tools.packagers.base import register
from monoimage.tools.packagers.cache import PRIVATE_FOLDER
from monoimage.tools.run import ToolError, run, tail

HOST_SOURCES = Path("/etc/apt")
# The minimal set of each mmdebstrap variant, as apt patterns over the release's own archive.
_VARIANT_SEEDS = {
    "essential": ("?essential",),
    "apt": ("?essential", "apt"),
    "required": ("?or(?essential,?priority(required))", "apt"),
    "minbase": ("?or(?essential,?priority(required))", "apt"),
}
_INST = re.compile(r"^Inst (\S+) (?:\[\S+\] )?\((\S+) .*\[(\S+)\]\)")


@dataclass(frozen=True)
class AptRoot:
    """A private APT configuration: `apt.conf` points every directory inside `path`."""

    path: Path
    arch: str

    @property
    def env(self) -> dict[str, str]:
        return {"APT_CONFIG": str(self.path / "etc/apt/apt.conf"), "LC_ALL": "C.UTF-8"}

    @property
    def status(self) -> Path:
        return self.path / "var/lib/dpkg/status"

    def apt(self, *args: str, what: str = "") -> str:
        return run(["apt-get", *args], env=self.env, what=what or None).stdout

    def download(self, packages: Sequence[ResolvedPackage], dest: Path) -> None:
        """Download the pinned .deb of each package into `dest` (on the host)."""
        (dest / "partial").mkdir(parents=True, exist_ok=True)
        if packages:  # apt-get download writes into its working directory
            run(["apt-get", "-q", "download", "--", *(f"{p.name}={p.version}" for p in packages)],
                env=self.env, cwd=dest, what="apt-get download")

    def cache(self, *args: str, what: str = "") -> str:
        return run(["apt-cache", *args], env=self.env, what=what or None).stdout


@register
class AptPackager:
    family = Family.APT

    def resolve(self, recipe: Recipe, packages: PackageSet, *, cache_dir: Path) -> Resolution:
        # One private root per set of sources, shared by every build using this cache: a lock
        # keeps two resolutions from rewriting its status file under each other.
        with resolve_lock(cache_dir):
            root = prepare_root(recipe, cache_dir)
            seed = _seed_minimal_set(root, recipe)
            specs = [_spec(root, recipe, entry) for entry in packages.entries]
            added, removed = _simulate(root, specs, packages)
            versions = {n: v for n, v in {**seed, **added}.items() if n not in removed}
            stanzas = _show(root, versions)
        requested = {e.name: e.requested_by for e in packages.entries}
        return Resolution(
            family=Family.APT, release=recipe.distro.release, arch=recipe.distro.architecture,
            packages=_closure(stanzas, requested, base=set(seed)))

    def install(self, recipe: Recipe, resolution: Resolution, root: Path, *, cache_dir: Path,
                source_date_epoch: int) -> None:
        run(mmdebstrap_argv(recipe, resolution, root, cache_dir=cache_dir),
            env={"SOURCE_DATE_EPOCH": str(source_date_epoch)}, what="mmdebstrap")

    def list_installed(self, root: Path) -> tuple[InstalledPackage, ...]:
        out = run(["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f",
                   ("${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\t"
                    "${Installed-Size}\n"), "--"]).stdout
        found = []
        for line in out.splitlines():
            status, name, version, arch, size = line.split("\t")
            if status.startswith("ii"):
                found.append(InstalledPackage(name, version, arch, int(size or 0) * 1024))
        return tuple(sorted(found, key=lambda p: p.name))

    def remove(self, root: Path, names: tuple[str, ...]) -> None:
        """Purge build-only packages from an installed root (the recipe's strip.packages)."""
        if names:
            run(["dpkg", f"--root={root}", "--purge", "--force-depends,remove-essential",
                 "--", *names], what="dpkg --purge")


def mmdebstrap_argv(recipe: Recipe, resolution: Resolution, target: Path, *,
                    cache_dir: Path) -> list[str]:
    """The one mmdebstrap call that installs exactly `resolution` into `target`."""
    distro = recipe.distro
    archives = cache_dir / "apt" / "archives"
    archives.mkdir(parents=True, exist_ok=True)
    recommends = "true" if distro.recommends else "false"
    argv = [
        "mmdebstrap", f"--variant={distro.variant}", f"--architectures={distro.architecture}",
        "--format=directory", "--quiet",
        f"--aptopt=APT::Install-Recommends \"{recommends}\"",
        "--aptopt=Acquire::Languages \"none\"",
        "--skip=essential/unlink", "--skip=output/dev",
        '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
        f"--setup-hook=sync-in {shlex.quote(str(archives))} /var/cache/apt/archives/",
        f"--customize-hook=sync-out /var/cache/apt/archives {shlex.quote(str(archives))}",
        "--include=" + ",".join(f"{p.name}={p.version}" for p in resolution.packages),
        distro.release, str(target),
    ]
    return argv + [str(path) for path in _write_sources(recipe, cache_dir / "apt" / "sources")]


def prepare_root(recipe: Recipe, cache_dir: Path) -> AptRoot:
    """The shared APT root for this recipe's sources, with fresh package lists.

    Shared by every run using this cache: call it only under `resolve_lock` (work outside
    the lock takes a `snapshot_root`)."""
    sources = _sources(recipe)
    key = hashlib.sha256(repr((sources, recipe.distro.architecture)).encode()).hexdigest()[:16]
    root = _lay_out_root(recipe, cache_dir / "apt" / f"root-{key}", sources)
    try:
        root.apt("update", "-q", what="apt-get update (private root)")
    except ToolError as err:
        raise UserError(f"cannot read the package lists of {_where(recipe)}: {err}") from None
    return root


def resolve_lock(cache_dir: Path) -> AbstractContextManager[None]:
    """The lock every use of a shared APT root takes: `apt-get update` rewrites its lists
    and a resolution rewrites its status file."""
    return locked(cache_dir / "apt" / "resolve.lock")


@contextmanager
def snapshot_root(recipe: Recipe, cache_dir: Path, token: str) -> Iterator[AptRoot]:
    """A private APT root with fresh lists, for work that outlasts the resolve lock (a
    layered build's downloads and child installs): the shared root's lists hard-linked into
    it under the lock (`apt-get update` replaces a list by renaming a new file over it, so a
    link keeps the old one whole); removed when the block ends."""
    path = cache_dir / PRIVATE_FOLDER / f"apt-root-{token}"
    shutil.rmtree(path, ignore_errors=True)
    try:
        with resolve_lock(cache_dir):
            shared = prepare_root(recipe, cache_dir)
            root = _lay_out_root(recipe, path, _sources(recipe))
            lists = Path("var/lib/apt/lists")
            for entry in sorted((shared.path / lists).iterdir()):
                if entry.is_file() and not entry.is_symlink() and entry.name != "lock":
                    _link_or_copy(entry, path / lists / entry.name)
        yield root
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _lay_out_root(recipe: Recipe, path: Path, sources: tuple[tuple[str, str], ...]
                  ) -> AptRoot:
    """An APT root's folders, sources, `apt.conf` and an empty status file at `path`."""
    for sub in ("etc/apt/sources.list.d", "etc/apt/apt.conf.d", "etc/apt/preferences.d",
                "var/lib/apt/lists/partial", "var/cache/apt/archives/partial", "var/lib/dpkg"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    for name, text in sources:
        (path / "etc/apt/sources.list.d" / name).write_text(text)
    (path / "etc/apt/apt.conf").write_text("\n".join([
        f'Dir "{path}/";',
        f'Dir::State::status "{path}/var/lib/dpkg/status";',
        f'Dir::Etc::TrustedParts "{HOST_SOURCES}/trusted.gpg.d/";',
        f'Dir::Etc::Trusted "{HOST_SOURCES}/trusted.gpg";',
        f'APT::Architecture "{recipe.distro.architecture}";',
        f'APT::Architectures {{ "{recipe.distro.architecture}"; }};',
        f'APT::Install-Recommends "{"true" if recipe.distro.recommends else "false"}";',
        'Acquire::Languages "none";',
        'Debug::NoLocking "true";', ""]))
    root = AptRoot(path, recipe.distro.architecture)
    root.status.write_text("")
    return root


def _link_or_copy(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError:  # another file system
        shutil.copy2(source, dest)


def _sources(recipe: Recipe) -> tuple[tuple[str, str], ...]:
    """(file name, text) of every apt source: the recipe's, or else this host's own."""
    repos = [r for r in recipe.distro.repositories if isinstance(r, AptRepository)]
    if repos:
        return (("monoimage.sources", "\n".join(_deb822(r) for r in repos)),)
    found = []
    main = HOST_SOURCES / "sources.list"
    if main.is_file():
        found.append(("host.list", main.read_text()))
    for path in sorted((HOST_SOURCES / "sources.list.d").glob("*")):
        if path.suffix in (".list", ".sources") and path.is_file():
            found.append((f"host-{path.name}", path.read_text()))
    if not found:
        raise UserError("no apt sources: this host has none in /etc/apt and the recipe names "
                        "no distro.repositories")
    return tuple(found)


def _deb822(repo: AptRepository) -> str:
    lines = ["Types: deb", f"URIs: {repo.uri}", f"Suites: {' '.join(repo.suites)}",
             f"Components: {' '.join(repo.components)}"]
    if repo.signed_by:
        lines.append(f"Signed-By: {repo.signed_by}")
    if repo.trusted:
        lines.append("Trusted: yes")
    return "\n".join(lines) + "\n"


def _write_sources(recipe: Recipe, folder: Path) -> list[Path]:
    """The sources as files mmdebstrap pastes into the chroot (one MIRROR argument each)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in _sources(recipe):
        path = folder / name
        path.write_text(text)
        paths.append(path)
    return paths


def _seed_minimal_set(root: AptRoot, recipe: Recipe) -> dict[str, str]:
    """Install the variant's minimal set into the private status file; return name → version."""
    variant = recipe.distro.variant
    if variant not in _VARIANT_SEEDS:
        raise UserError(f"distro.variant '{variant}': monoimage resolves only "
                        f"{', '.join(sorted(_VARIANT_SEEDS))}")
    release = re.escape(recipe.distro.release)
    suite = f"?or(?archive(^{release}$),?codename(^{release}$))"
    patterns = [p if not p.startswith("?") else f"?narrow({suite},{p})"
                for p in _VARIANT_SEEDS[variant]]
    root.status.write_text("")
    out = root.apt("-s", "install", "--", *patterns, what="apt-get -s (minimal set)")
    seed = {m.group(1): m.group(2) for m in map(_INST.match, out.splitlines()) if m}
    if not seed:
        raise UserError(f"no essential packages found for release '{recipe.distro.release}' "
                        f"in {_where(recipe)}: is distro.release a suite or codename there?")
    stanzas = _show(root, seed)
    root.status.write_text("".join(_status_stanza(s) for s in stanzas.values()))
    return seed


_STATUS_FIELDS = ("Package", "Essential", "Priority", "Section", "Installed-Size", "Architecture",
                  "Multi-Arch", "Version", "Provides", "Pre-Depends", "Depends", "Breaks",
                  "Conflicts", "Replaces")


def _status_stanza(stanza: Deb822) -> str:
    fields = {"Package": stanza["Package"], "Status": "install ok installed"}
    fields.update({k: stanza[k] for k in _STATUS_FIELDS if k in stanza and k != "Package"})
    return "".join(f"{k}: {v}\n" for k, v in fields.items()) + "\n"


def _spec(root: AptRoot, recipe: Recipe, entry: PackageEntry) -> str:
    """`name` when any version will do (apt's candidate), else `name=best version in range`."""
    name = entry.name
    if not entry.constraints:
        return name
    try:
        out = root.cache("show", "--", name, what=f"apt-cache show {name}")
    except ToolError:
        out = ""
    available = sorted({p["Version"] for p in Deb822.iter_paragraphs(out.splitlines())
                        if p.get("Package") == name})
    version = choose_version(Family.APT, name, entry, available, where=_where(recipe))
    return f"{name}={version}"


def _simulate(root: AptRoot, specs: list[str], packages: PackageSet
              ) -> tuple[dict[str, str], set[str]]:
    """What `apt-get install` would add (name → version) and remove, on top of the seed."""
    try:
        out = root.apt("-s", "install", "--", *specs, what="apt-get -s install")
    except ToolError as err:
        missing = re.findall(r"Unable to locate package (\S+)", str(err))
        if missing:
            who = {e.name: e.requested_by for e in packages.entries}
            names = "; ".join(f"'{m}' (requested by {', '.join(who.get(m, ('?',)))})"
                              for m in missing)
            raise UserError(f"unknown package {names}: not in any apt source") from None
        raise UserError(f"apt cannot resolve the package set:\n{tail(str(err), 20)}") from None
    added = {m.group(1): m.group(2) for m in map(_INST.match, out.splitlines()) if m}
    removed = {line.split()[1] for line in out.splitlines() if line.startswith("Remv ")}
    return added, removed


def _show(root: AptRoot, versions: dict[str, str]) -> dict[str, Deb822]:
    """The repository record of each exact version, by name."""
    if not versions:
        return {}
    out = root.cache("show", "--",
                     *[f"{name}={version}" for name, version in sorted(versions.items())],
                     what="apt-cache show")
    records: dict[str, Deb822] = {}
    for para in Deb822.iter_paragraphs(out.splitlines()):
        name = para.get("Package")
        if name in versions and para.get("Version") == versions[name] and name not in records:
            records[name] = para
    return records


def _closure(stanzas: dict[str, Deb822], requested: dict[str, tuple[str, ...]],
             base: set[str]) -> tuple[ResolvedPackage, ...]:
    provides: dict[str, list[str]] = {}
    for name, para in stanzas.items():
        for clause in _relations(para.get("Provides", "")):
            for alt in clause:
                provides.setdefault(alt, []).append(name)
    packages = []
    for name in sorted(stanzas):
        para = stanzas[name]
        deps: set[str] = set()
        for field in ("Pre-Depends", "Depends"):
            for clause in _relations(para.get(field, "")):
                hit = next((alt for alt in clause if alt in stanzas), None)
                if hit is None:
                    hit = next((min(provides[alt]) for alt in clause if alt in provides),
                               None)
                if hit is not None and hit != name:
                    deps.add(hit)
        packages.append(ResolvedPackage(
            name=name, version=para["Version"], arch=para.get("Architecture", ""),
            download_size=int(para.get("Size", 0)),
            installed_size=int(para.get("Installed-Size", 0)) * 1024,
            requested_by=requested.get(name, ()), depends=tuple(sorted(deps)),
            base=name in base))
    return tuple(packages)


def _relations(text: str) -> list[list[str]]:
    """`a (>= 1) | b:any, c` → [["a", "b"], ["c"]] (names only)."""
    clauses = []
    for clause in text.split(","):
        names = [alt.strip().split(" ")[0].split("(")[0].split(":")[0]
                 for alt in clause.split("|")]
        names = [n for n in names if n]
        if names:
            clauses.append(names)
    return clauses


def _where(recipe: Recipe) -> str:
    repos = recipe.distro.repositories
    src = "the recipe's repositories" if repos else "this host's apt sources"
    return f"{recipe.distro.name} {recipe.distro.release} ({src})"
