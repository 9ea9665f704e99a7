"""A local apt repository holding one re-versioned package: a stand-in security update.

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
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from monoimage.plan.resolution import ResolvedPackage
from monoimage.recipe.model import AptRepository, Recipe
from monoimage.tools.packagers.apt import snapshot_root
from monoimage.tools.run import require, run

UPDATE_SUFFIX = "+monoimage1"
UPDATE_SUITE = "monoimage-updates"


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
    for tool in ("dpkg-deb", "apt-ftparchive", "gpg"):
        require(tool)
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
    with snapshot_root(recipe, cache_dir, work.name) as root:
        run(["apt-get", "-q", "download", "--", f"{package.name}={package.version}"],
            env=root.env, cwd=work, what=f"apt-get download {package.name}={package.version}",
            tail_lines=10)
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
    key.write_bytes(run([*gpg, "--export"]).stdout_bytes)
    key.chmod(0o644)
    # gpg leaves an agent running per home directory; nothing else will stop it
    run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
    for folder in (dest, dest / "pool", dest / "dists", dists, dists / "main", binary):
        folder.chmod(0o755)
    return key


def _run(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
         ) -> str:
    return run(argv, cwd=cwd, env=env, tail_lines=10).stdout
