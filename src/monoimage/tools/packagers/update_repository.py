"""Apt repositories as data: the build host's sources, one-line specs, and a local update repo.

A day-2 update needs a repository that holds a newer version of one package. Debian's mirror
only holds what it holds, so `make_update_repository` stands in for a security update: it
downloads the pinned .deb, unpacks it with `dpkg-deb -R`, bumps its version to
`<version>+monoimage1`, changes its ELF files the way a rebuilt library changes (a few bytes
appended after the ELF data, which the loader never reads), repacks it with `dpkg-deb -b`, and
publishes it with `apt-ftparchive` in a repository signed by a throwaway key (apt verifies it
like any other). The URI is `copy://`: apt copies the .deb into its cache, so mmdebstrap and a
container can install it without the repository's folder being visible to them.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from debian.deb822 import Deb822

from monoimage.errors import MissingToolError, UserError
from monoimage.recipe.model import AptRepository, Recipe
from monoimage.tools.packagers.apt import HOST_SOURCES, prepare_root
from monoimage.tools.packagers.base import ResolvedPackage, tail

UPDATE_SUFFIX = "+monoimage1"
UPDATE_SUITE = "monoimage-updates"
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


@dataclass(frozen=True)
class UpdateRepository:
    """A local, signed repository holding one re-versioned package."""

    repository: AptRepository
    package: str
    version: str  # the new version
    path: Path


def make_update_repository(recipe: Recipe, package: ResolvedPackage, dest: Path, *,
                           cache_dir: Path) -> UpdateRepository:
    """Publish `package` re-versioned to `<version>+monoimage1` in a signed repo at `dest`."""
    for tool, deb_package in (("dpkg-deb", "dpkg"), ("apt-ftparchive", "apt-utils"),
                              ("gpg", "gpg")):
        if shutil.which(tool) is None:
            raise MissingToolError(tool, deb_package)
    version = package.version + UPDATE_SUFFIX
    dest.mkdir(parents=True, exist_ok=True)
    dest.chmod(0o755)  # apt reads the repository as its unprivileged _apt user
    pool = dest / "pool"
    pool.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="monoimage-deb-") as tmp:
        work = Path(tmp)
        original = _download(recipe, package, work, cache_dir)
        tree = work / "tree"
        _run(["dpkg-deb", "-R", str(original), str(tree)])
        _rebuild_as_update(tree, version)
        target = pool / f"{package.name}_{version.replace(':', '%3a')}_{package.arch}.deb"
        _run(["dpkg-deb", "-Zxz", "-b", str(tree), str(target)],
             env={"SOURCE_DATE_EPOCH": "0"})
    key = _publish(dest, recipe.distro.architecture)
    repository = AptRepository(uri=f"copy://{dest}", suites=(UPDATE_SUITE,),
                               components=("main",), signed_by=str(key))
    return UpdateRepository(repository, package.name, version, dest)


def _download(recipe: Recipe, package: ResolvedPackage, work: Path, cache_dir: Path) -> Path:
    root = prepare_root(recipe, cache_dir)
    done = subprocess.run(["apt-get", "-q", "download", f"{package.name}={package.version}"],
                          env={**os.environ, **root.env}, cwd=work, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise UserError(f"apt-get download {package.name}={package.version} failed:\n"
                        + tail(done.stderr or done.stdout, 10))
    return next(work.glob(f"{package.name}_*.deb"))


def _rebuild_as_update(tree: Path, version: str) -> None:
    """New version in DEBIAN/control; ELF files changed as a rebuild changes them."""
    control = tree / "DEBIAN" / "control"
    text = re.sub(r"(?m)^Version: .*$", f"Version: {version}", control.read_text())
    control.write_text(text)
    changed = []
    for path in sorted(tree.rglob("*")):
        if path.is_file() and not path.is_symlink() and "DEBIAN" not in path.parts:
            with path.open("rb") as handle:
                is_elf = handle.read(4) == b"\x7fELF"
            if is_elf:
                with path.open("ab") as handle:
                    handle.write(f"\0monoimage stand-in security update {version}\n".encode())
                changed.append(path)
    sums = tree / "DEBIAN" / "md5sums"
    if sums.is_file() and changed:
        digests = {str(p.relative_to(tree)): hashlib.md5(p.read_bytes()).hexdigest()
                   for p in changed}
        lines = []
        for line in sums.read_text().splitlines():
            digest, _, name = line.partition("  ")
            lines.append(f"{digests.get(name, digest)}  {name}")
        sums.write_text("\n".join(lines) + "\n")


def _publish(dest: Path, arch: str) -> Path:
    """Packages, Release and a signed InRelease for the pool; returns the public key file."""
    dists = dest / "dists" / UPDATE_SUITE
    binary = dists / "main" / f"binary-{arch}"
    binary.mkdir(parents=True, exist_ok=True)
    packages = _run(["apt-ftparchive", "packages", "pool"], cwd=dest)
    (binary / "Packages").write_text(packages)
    with gzip.open(binary / "Packages.gz", "wt") as handle:
        handle.write(packages)
    release = _run(["apt-ftparchive",
                    "-o", f"APT::FTPArchive::Release::Suite={UPDATE_SUITE}",
                    "-o", f"APT::FTPArchive::Release::Codename={UPDATE_SUITE}",
                    "-o", "APT::FTPArchive::Release::Components=main",
                    "-o", f"APT::FTPArchive::Release::Architectures={arch}",
                    "-o", "APT::FTPArchive::Release::Origin=monoimage",
                    "release", str(dists.relative_to(dest))], cwd=dest)
    (dists / "Release").write_text(release)
    home = dest / "gnupg"
    home.mkdir(mode=0o700, exist_ok=True)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--quiet", "--pinentry-mode", "loopback",
           "--passphrase", ""]
    if not list(home.glob("pubring.kbx")):
        _run([*gpg, "--quick-generate-key", "monoimage update repository <update@localhost>",
              "ed25519", "sign", "never"])
    (dists / "InRelease").unlink(missing_ok=True)
    _run([*gpg, "--clearsign", "-o", str(dists / "InRelease"), str(dists / "Release")])
    key = dest / "monoimage-update.gpg"
    key.write_bytes(subprocess.run([*gpg, "--export"], check=True, capture_output=True).stdout)
    key.chmod(0o644)
    # gpg leaves an agent running per home directory; nothing else will stop it
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False,
                   capture_output=True)
    for folder in (dest, dest / "pool", dest / "dists", dists, dists / "main", binary):
        folder.chmod(0o755)
    return key


def _run(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
         ) -> str:
    done = subprocess.run(argv, cwd=cwd, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise UserError(f"{argv[0]} failed (exit {done.returncode}):\n"
                        + tail(done.stderr or done.stdout, 10))
    return done.stdout
