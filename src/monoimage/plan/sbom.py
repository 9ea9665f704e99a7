"""The package manifest and its SPDX 2.3 twin (pure): what the image holds, and why.

Both are deterministic for the same inputs (sorted, timestamps from SOURCE_DATE_EPOCH), so
they can live inside the image without breaking reproducibility, and the manifest's digest
can label the image.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from monoimage import __version__
from monoimage.plan.resolution import InstalledPackage, Resolution
from monoimage.recipe.model import Recipe
from monoimage.recipe.versions import Family

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class StripRecord:
    """One group of paths the build removed, and how much it saved."""

    what: str  # "apt lists", "docs", "recipe path /usr/share/foo", …
    files: int
    bytes: int


def manifest(recipe: Recipe, resolution: Resolution, installed: tuple[InstalledPackage, ...],
             stripped: tuple[StripRecord, ...], *, source_date_epoch: int) -> dict[str, Any]:
    """Every installed package with version, arch, sizes and the reason it is in."""
    needed_by = resolution.needed_by()
    resolved = {p.name: p for p in resolution.packages}
    packages = []
    for pkg in installed:
        res = resolved.get(pkg.name)
        requested_by = list(res.requested_by) if res else []
        reached = [r for r in needed_by.get(pkg.name, ()) if r not in requested_by]
        if requested_by:
            why = "requested by " + ", ".join(requested_by)
        elif reached:
            why = "dependency of " + ", ".join(reached)
        elif res is not None and res.base:
            why = f"{recipe.distro.variant} (distro minimal set)"
        else:
            why = "dependency"
        packages.append({
            "name": pkg.name, "version": pkg.version, "arch": pkg.arch,
            "installed_size": pkg.installed_size,
            "download_size": res.download_size if res else None,
            "requested_by": requested_by, "needed_by": list(needed_by.get(pkg.name, ())),
            "why": why,
        })
    return {
        "manifest_version": MANIFEST_VERSION,
        "image": {"name": recipe.name, "tag": recipe.tag, "reference": recipe.reference},
        "recipe": {"source": recipe.source, "digest": recipe.digest},
        "distro": {"name": recipe.distro.name, "release": recipe.distro.release,
                   "packager": recipe.distro.packager.value,
                   "architecture": recipe.distro.architecture,
                   "variant": recipe.distro.variant},
        "source_date_epoch": source_date_epoch,
        "services": [s.name for s in recipe.services],
        "packages": packages,
        "totals": {
            "packages": len(packages),
            "installed_size": sum(p.installed_size for p in installed),
            "download_size": sum(p["download_size"] or 0 for p in packages),
        },
        "stripped": [{"what": s.what, "files": s.files, "bytes": s.bytes} for s in stripped],
    }


def to_json(document: dict[str, Any]) -> str:
    """The canonical text of a manifest or SBOM: sorted keys, fixed indentation."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def spdx(manifest_doc: dict[str, Any], *, manifest_digest: str) -> dict[str, Any]:
    """The manifest as an SPDX 2.3 JSON document: the image contains each package."""
    image = manifest_doc["image"]
    distro = manifest_doc["distro"]
    created = datetime.fromtimestamp(manifest_doc["source_date_epoch"], UTC)
    image_id = "SPDXRef-Image"
    packages: list[dict[str, Any]] = [{
        "SPDXID": image_id, "name": image["reference"], "versionInfo": image["tag"],
        "primaryPackagePurpose": "CONTAINER", "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False, "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION", "copyrightText": "NOASSERTION",
        "supplier": "NOASSERTION",
        "comment": f"built by monoimage from {manifest_doc['recipe']['source']} "
                   f"({manifest_doc['recipe']['digest']})",
    }]
    relationships: list[dict[str, str]] = [{
        "spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
        "relatedSpdxElement": image_id}]
    ids = {p["name"]: _spdx_id(i, p["name"]) for i, p in enumerate(manifest_doc["packages"])}
    for pkg in manifest_doc["packages"]:
        packages.append({
            "SPDXID": ids[pkg["name"]], "name": pkg["name"], "versionInfo": pkg["version"],
            "primaryPackagePurpose": "LIBRARY" if not pkg["requested_by"] else "APPLICATION",
            "downloadLocation": "NOASSERTION", "filesAnalyzed": False,
            "licenseConcluded": "NOASSERTION", "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION", "supplier": "NOASSERTION",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                              "referenceLocator": purl(distro, pkg)}],
            "comment": pkg["why"],
        })
        relationships.append({"spdxElementId": image_id, "relationshipType": "CONTAINS",
                              "relatedSpdxElement": ids[pkg["name"]]})
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{image['reference']} packages",
        "documentNamespace": f"https://spdx.org/spdxdocs/monoimage/{image['name']}/"
                             f"{manifest_digest.removeprefix('sha256:')}",
        "creationInfo": {"created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "creators": [f"Tool: monoimage-{__version__}"]},
        "documentDescribes": [image_id],
        "packages": packages,
        "relationships": relationships,
    }


def purl(distro: dict[str, str], pkg: dict[str, Any]) -> str:
    """A package URL: pkg:deb/debian/NAME@VERSION?arch=…&distro=… (or pkg:rpm/…)."""
    kind = "deb" if distro["packager"] == Family.APT.value else "rpm"
    namespace = quote(distro["name"].lower(), safe="")
    return (f"pkg:{kind}/{namespace}/{quote(pkg['name'], safe='')}@"
            f"{quote(pkg['version'], safe='')}?arch={quote(pkg['arch'], safe='')}"
            f"&distro={quote(distro['name'] + '-' + distro['release'], safe='')}")


def _spdx_id(index: int, name: str) -> str:
    return f"SPDXRef-Package-{index}-{re.sub(r'[^A-Za-z0-9.-]', '-', name)}"
