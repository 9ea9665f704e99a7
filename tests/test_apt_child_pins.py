"""A comparator child's apt holds every package of the closure at its resolved version."""

from __future__ import annotations

from monoimage.plan.resolution import ResolvedPackage
from monoimage.tools.packagers.apt_child import preferences_text


def pkg(name: str, version: str) -> ResolvedPackage:
    return ResolvedPackage(name=name, version=version, arch="amd64", download_size=1,
                           installed_size=1)


def test_every_package_is_pinned_above_any_candidate_so_apt_never_upgrades_a_base_one() -> None:
    text = preferences_text([pkg("libssl3", "3.0.20-1~deb12u2"), pkg("openssl", "3.0.20-1")])
    stanzas = text.split("\n\n")
    assert stanzas == ["Package: libssl3\nPin: version 3.0.20-1~deb12u2\nPin-Priority: 1001",
                       "Package: openssl\nPin: version 3.0.20-1\nPin-Priority: 1001\n"]
