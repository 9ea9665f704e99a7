"""Manifest and SPDX 2.3 document: every package, its sizes, and why it is in."""

from __future__ import annotations

import json
import re

from monoimage.plan.resolution import InstalledPackage, Resolution, ResolvedPackage
from monoimage.plan.sbom import StripRecord, digest, manifest, purl, spdx, to_json
from monoimage.recipe.model import Distro, Recipe, Service
from monoimage.recipe.versions import Family


def _inputs() -> tuple[Recipe, Resolution, tuple[InstalledPackage, ...]]:
    recipe = Recipe(name="img", tag="1", source="img.yaml", digest="sha256:ab",
                    distro=Distro("debian", "bookworm", Family.APT),
                    services=(Service("mqtt", "m.yaml"), Service("web", "w.yaml")))
    packages = (
        ResolvedPackage("libc6", "2.36-9", "amd64", 100, 2048, base=True),
        ResolvedPackage("libssl3", "3.0.1-1", "amd64", 50, 1024, depends=("libc6",)),
        ResolvedPackage("mosquitto", "2.0-1", "amd64", 30, 512, ("mqtt",),
                        depends=("libc6", "libssl3")),
        ResolvedPackage("nginx-light", "1:1.22+dfsg-1", "amd64", 40, 512, ("web",),
                        depends=("libssl3",)),
        ResolvedPackage("tzdata", "2024a-1", "all", 10, 4096, ("base",)),
    )
    installed = tuple(InstalledPackage(p.name, p.version, p.arch, p.installed_size)
                      for p in packages)
    return recipe, Resolution(Family.APT, "bookworm", "amd64", packages), installed


def test_manifest_says_why_each_package_is_in():
    recipe, resolution, installed = _inputs()
    doc = manifest(recipe, resolution, installed, (StripRecord("docs", 3, 900),),
                   source_date_epoch=5)
    why = {p["name"]: p["why"] for p in doc["packages"]}
    assert why["mosquitto"] == "requested by mqtt"
    assert why["libssl3"] == "dependency of mqtt, web"
    assert why["libc6"] == "dependency of mqtt, web"
    assert why["tzdata"] == "requested by base"
    assert doc["totals"] == {"packages": 5, "installed_size": 8192, "download_size": 230}
    assert doc["stripped"] == [{"what": "docs", "files": 3, "bytes": 900}]


def test_base_package_nobody_needs_is_marked_as_the_minimal_set():
    recipe, resolution, installed = _inputs()
    alone = ResolvedPackage("dash", "0.5-1", "amd64", 1, 1, base=True)
    resolution = Resolution(Family.APT, "bookworm", "amd64", (*resolution.packages, alone))
    installed = (*installed, InstalledPackage("dash", "0.5-1", "amd64", 1))
    doc = manifest(recipe, resolution, installed, (), source_date_epoch=0)
    assert {p["name"]: p["why"] for p in doc["packages"]}["dash"] == \
        "minbase (distro minimal set)"


def test_spdx_document_is_valid_2_3_shape_and_deterministic():
    recipe, resolution, installed = _inputs()
    doc = manifest(recipe, resolution, installed, (), source_date_epoch=86400)
    text = to_json(doc)
    sbom = spdx(doc, manifest_digest=digest(text))
    assert sbom["spdxVersion"] == "SPDX-2.3" and sbom["dataLicense"] == "CC0-1.0"
    assert sbom["creationInfo"]["created"] == "1970-01-02T00:00:00Z"
    ids = [p["SPDXID"] for p in sbom["packages"]]
    assert len(ids) == len(set(ids)) == 6
    assert all(re.fullmatch(r"SPDXRef-[A-Za-z0-9.-]+", i) for i in ids)
    contains = [r for r in sbom["relationships"] if r["relationshipType"] == "CONTAINS"]
    assert len(contains) == 5
    assert to_json(sbom) == to_json(spdx(json.loads(text), manifest_digest=digest(text)))


def test_purl_encodes_epochs_and_plus_signs():
    distro = {"name": "debian", "release": "bookworm", "packager": "apt"}
    pkg = {"name": "nginx-light", "version": "1:1.22+dfsg-1", "arch": "amd64"}
    assert purl(distro, pkg) == \
        "pkg:deb/debian/nginx-light@1%3A1.22%2Bdfsg-1?arch=amd64&distro=debian-bookworm"
    rpm = {"name": "fedora", "release": "39", "packager": "dnf"}
    assert purl(rpm, {"name": "a", "version": "1.0-1", "arch": "noarch"}).startswith(
        "pkg:rpm/fedora/a@1.0-1?arch=noarch")
