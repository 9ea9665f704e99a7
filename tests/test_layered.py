"""Planning the Kolla-style and shared-base comparators from one resolution (pure)."""

from __future__ import annotations

from monoimage.plan.comparator_plan import plan_layered
from monoimage.plan.resolution import Resolution, ResolvedPackage
from monoimage.recipe.versions import Family


def pkg(name: str, *depends: str, by: tuple[str, ...] = (), base: bool = False
        ) -> ResolvedPackage:
    return ResolvedPackage(name=name, version="1.0", arch="amd64", download_size=1000,
                           installed_size=4000, requested_by=by, depends=tuple(depends),
                           base=base)


# nova and ceilometer both need python3-oslo (and through it libpython), neutron needs it too;
# libvirt only nova; the base asks for curl; libc6 is part of the minimal set.
RESOLUTION = Resolution(Family.APT, "bookworm", "amd64", tuple(sorted([
    pkg("libc6", base=True),
    pkg("curl", "libc6", by=("base",)),
    pkg("python3-minimal", "libc6", by=("monoimage-init",)),
    pkg("nova-compute", "python3-oslo", "libvirt0", by=("nova",)),
    pkg("ceilometer", "python3-oslo", by=("ceilometer",)),
    pkg("neutron", "python3-oslo", "python3-minimal", by=("neutron",)),
    pkg("python3-oslo", "libpython", "libc6"),
    pkg("libpython", "libc6"),
    pkg("libvirt0", "libc6"),
], key=lambda p: p.name)))
SERVICES = ("nova", "ceilometer", "neutron")


def names(packages: tuple[ResolvedPackage, ...]) -> list[str]:
    return [p.name for p in packages]


def test_kolla_style_base_holds_minimal_set_base_packages_and_entrypoint_runtime() -> None:
    plan = plan_layered(RESOLUTION, SERVICES, "kolla-style")
    assert names(plan.base) == ["curl", "libc6", "python3-minimal"]
    children = {c.service: names(c.packages) for c in plan.children}
    assert children == {
        "nova": ["libpython", "libvirt0", "nova-compute", "python3-oslo"],
        "ceilometer": ["ceilometer", "libpython", "python3-oslo"],
        "neutron": ["libpython", "neutron", "python3-oslo"],
    }
    assert plan.duplicated == {"libpython": SERVICES, "python3-oslo": SERVICES}


def test_shared_base_moves_what_two_services_need_into_the_base() -> None:
    plan = plan_layered(RESOLUTION, SERVICES, "shared-base")
    assert names(plan.base) == ["curl", "libc6", "libpython", "python3-minimal", "python3-oslo"]
    assert plan.duplicated == {}
    assert [c.service for c in plan.children] == list(SERVICES)


def test_every_closure_package_lands_in_the_base_or_a_child() -> None:
    for strategy in ("kolla-style", "shared-base"):
        plan = plan_layered(RESOLUTION, SERVICES, strategy)  # type: ignore[arg-type]
        placed = set(names(plan.base)) | {p.name for c in plan.children for p in c.packages}
        assert placed == set(RESOLUTION.names)
