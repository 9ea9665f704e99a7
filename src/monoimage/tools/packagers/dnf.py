"""dnf: resolve with dnf's own resolver over the recipe's repositories; install with
`dnf --installroot`; list with `rpm --root`.

The rpm database goes to /usr/lib/sysimage/rpm (where Fedora keeps it) whatever the build
host's rpm defaults to: Debian's rpm would put it in /root/.rpmdb.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from monoimage.errors import UserError
from monoimage.plan.merge import PackageSet
from monoimage.plan.resolution import (
    InstalledPackage,
    Resolution,
    ResolvedPackage,
    choose_version,
)
from monoimage.recipe.model import DnfRepository, Recipe
from monoimage.recipe.versions import Family
from monoimage.tools.packagers.base import register
from monoimage.tools.run import require, run

DBPATH = "/usr/lib/sysimage/rpm"
QUERY_SCRIPT = Path(__file__).with_name("dnf_query.py")


@register
class DnfPackager:
    family = Family.DNF

    def resolve(self, recipe: Recipe, packages: PackageSet, *, cache_dir: Path) -> Resolution:
        with tempfile.TemporaryDirectory(prefix="monoimage-dnf-") as tmp:
            work = Path(tmp)
            names = [e.name for e in packages.entries]
            available = _query(recipe, work, cache_dir, {"mode": "available", "names": names})
            specs = []
            for entry in packages.entries:
                versions = available["available"].get(entry.name, [])
                if not versions:
                    raise UserError(f"unknown package '{entry.name}' (requested by "
                                    f"{', '.join(entry.requested_by)}): not in "
                                    f"{_where(recipe)}")
                if entry.constraints:
                    best = choose_version(Family.DNF, entry.name, entry, versions,
                                          where=_where(recipe))
                    specs.append(f"{entry.name}-{best}")
                else:
                    specs.append(entry.name)
            answer = _query(recipe, work, cache_dir, {"mode": "resolve", "specs": specs})
        requested = {e.name: e.requested_by for e in packages.entries}
        return Resolution(
            family=Family.DNF, release=recipe.distro.release, arch=recipe.distro.architecture,
            packages=tuple(ResolvedPackage(
                name=p["name"], version=p["version"], arch=p["arch"],
                download_size=p["download_size"], installed_size=p["installed_size"],
                requested_by=requested.get(p["name"], ()), depends=tuple(p["depends"]))
                for p in answer["packages"]))

    def install(self, recipe: Recipe, resolution: Resolution, root: Path, *, cache_dir: Path,
                source_date_epoch: int) -> None:
        with tempfile.TemporaryDirectory(prefix="monoimage-dnf-") as tmp:
            work = Path(tmp)
            _write_config(recipe, work)
            pins = [f"{p.name}-{p.version}.{p.arch}" for p in resolution.packages]
            run(["dnf", *_dnf_options(recipe, work, cache_dir, root), "-y", "install", "--",
                 *pins], env=_env(work, source_date_epoch), what="dnf install")

    def list_installed(self, root: Path) -> tuple[InstalledPackage, ...]:
        out = run(["rpm", "--root", str(root), "--dbpath", DBPATH, "-qa", "--qf",
                   "%{NAME}\t%{EPOCHNUM}\t%{VERSION}-%{RELEASE}\t%{ARCH}\t%{SIZE}\n"],
                  what="rpm -qa").stdout
        found = []
        for line in out.splitlines():
            name, epoch, vr, arch, size = line.split("\t")
            if name == "gpg-pubkey":
                continue
            version = vr if epoch == "0" else f"{epoch}:{vr}"
            found.append(InstalledPackage(name, version, arch, int(size)))
        return tuple(sorted(found, key=lambda p: p.name))

    def remove(self, root: Path, names: tuple[str, ...]) -> None:
        """Erase build-only packages from an installed root (the recipe's strip.packages)."""
        if names:
            run(["rpm", "--root", str(root), "--dbpath", DBPATH, "-e", "--nodeps", "--", *names],
                what="rpm -e")


def _query(recipe: Recipe, work: Path, cache_dir: Path, request: dict[str, Any]
           ) -> dict[str, Any]:
    """Run dnf_query.py under dnf's own interpreter; turn its errors into UserErrors."""
    _write_config(recipe, work)
    empty_root = work / "root"
    empty_root.mkdir(exist_ok=True)
    full = {"installroot": str(empty_root), "cachedir": str(cache_dir / "dnf"),
            "reposdir": str(work / "repos"), "releasever": recipe.distro.release,
            "weak_deps": recipe.distro.recommends, **request}
    done = run([_dnf_python(), "-I", str(QUERY_SCRIPT)], input=json.dumps(full),
               env=_env(work, 0), check=False)
    if not done.ok:
        raise RuntimeError(f"dnf_query.py failed:\n{done.stderr}")
    answer: dict[str, Any] = json.loads(done.stdout)
    error = answer.get("error")
    if error == "repo":
        raise UserError(f"cannot read {_where(recipe)}: {answer['message']}")
    if error == "missing":
        raise UserError(f"unknown package: {', '.join(answer['missing'])}"
                        f" not in {_where(recipe)}")
    if error == "depsolve":
        raise UserError(f"dnf cannot resolve the package set: {answer['message']}")
    return answer


def _dnf_python() -> str:
    first = Path(require("dnf")).read_text(errors="replace").splitlines()[0]
    return first[2:].strip().split()[0] if first.startswith("#!") else "python3"


def _write_config(recipe: Recipe, work: Path) -> None:
    repos = [r for r in recipe.distro.repositories if isinstance(r, DnfRepository)]
    if not repos:
        raise UserError("distro.repositories: a dnf recipe must name its repositories")
    (work / "repos").mkdir(parents=True, exist_ok=True)
    (work / "repos" / "monoimage.repo").write_text("".join(
        f"[{r.id}]\nname={r.id}\nbaseurl={r.baseurl}\nenabled=1\n"
        f"gpgcheck={1 if r.gpgcheck else 0}\n\n" for r in repos))
    (work / "dnf.conf").write_text("[main]\nkeepcache=True\nplugins=False\n")
    (work / "home").mkdir(exist_ok=True)
    (work / "home" / ".rpmmacros").write_text(f"%_dbpath {DBPATH}\n")


def _dnf_options(recipe: Recipe, work: Path, cache_dir: Path, root: Path) -> list[str]:
    weak = "True" if recipe.distro.recommends else "False"
    return [f"--installroot={root}", f"--releasever={recipe.distro.release}",
            f"--config={work / 'dnf.conf'}", f"--setopt=reposdir={work / 'repos'}",
            f"--setopt=cachedir={cache_dir / 'dnf'}", f"--setopt=install_weak_deps={weak}",
            "--setopt=keepcache=True", "--noplugins", "--quiet"]


def _env(work: Path, source_date_epoch: int) -> dict[str, str]:
    # rpm reads ~/.rpmmacros: the only way to give `dnf --installroot` an rpm macro (_dbpath).
    return {"HOME": str(work / "home"), "SOURCE_DATE_EPOCH": str(source_date_epoch),
            "LC_ALL": "C.UTF-8"}


def _where(recipe: Recipe) -> str:
    ids = ", ".join(r.id for r in recipe.distro.repositories if isinstance(r, DnfRepository))
    return f"the repositories of {recipe.distro.name} {recipe.distro.release} ({ids})"
