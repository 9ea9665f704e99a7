"""Ask dnf's own resolver about repositories, without installing (runs under dnf's Python).

This file is a standalone script (run with `-I`, so this folder's dnf.py cannot shadow the
`dnf` module): `dnf.py` runs it with the interpreter of the `dnf` command
(the distro's python3 that has the `dnf` module), a JSON request on stdin, a JSON answer on
stdout. `dnf install --assumeno` prints the same transaction, but as a table for people
(wrapped columns, rounded sizes); the API gives exact bytes and the requirement graph.

Request: {"installroot", "cachedir", "reposdir", "releasever", "weak_deps",
          "mode": "available" | "resolve", "names": [...] | "specs": [...]}
"""

import json
import sys


def _evr(pkg):
    epoch = f"{pkg.epoch}:" if pkg.epoch else ""
    return f"{epoch}{pkg.version}-{pkg.release}"


def main():
    import dnf
    import dnf.exceptions

    req = json.load(sys.stdin)
    base = dnf.Base()
    conf = base.conf
    conf.installroot = req["installroot"]
    conf.cachedir = req["cachedir"]
    conf.reposdir = [req["reposdir"]]
    conf.releasever = req["releasever"]
    conf.install_weak_deps = req["weak_deps"]
    conf.assumeyes = False
    try:
        base.read_all_repos()
        base.fill_sack(load_system_repo=False)
    except dnf.exceptions.Error as err:
        return {"error": "repo", "message": str(err)}
    if req["mode"] == "available":
        found = {}
        for name in req["names"]:
            query = base.sack.query().available().filter(name=name)
            found[name] = sorted({_evr(p) for p in query})
        return {"available": found}
    missing = []
    for spec in req["specs"]:
        try:
            base.install(spec, strict=True)
        except dnf.exceptions.MarkingError:
            missing.append(spec)
    if missing:
        return {"error": "missing", "missing": missing}
    try:
        base.resolve()
    except dnf.exceptions.DepsolveError as err:
        return {"error": "depsolve", "message": str(err)}
    chosen = list(base.transaction.install_set)
    ids = {(p.name, p.evr, p.arch) for p in chosen}
    packages = []
    for pkg in chosen:
        deps = set()
        for reldep in pkg.requires + pkg.requires_pre:
            if str(reldep).startswith("rpmlib("):
                continue
            for provider in base.sack.query().filter(provides=reldep):
                if (provider.name, provider.evr, provider.arch) in ids:
                    deps.add(provider.name)
        deps.discard(pkg.name)
        packages.append({"name": pkg.name, "version": _evr(pkg), "arch": pkg.arch,
                         "download_size": pkg.downloadsize, "installed_size": pkg.installsize,
                         "nevra": f"{pkg.name}-{_evr(pkg)}.{pkg.arch}",
                         "depends": sorted(deps)})
    return {"packages": sorted(packages, key=lambda p: p["name"])}


if __name__ == "__main__":
    json.dump(main(), sys.stdout)
