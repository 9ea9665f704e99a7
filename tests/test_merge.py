"""The merged package set: one entry per name, the why, intersected constraints, conflicts."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monoimage.plan.merge import ConflictError, merge, plan
from monoimage.recipe.load import load_recipe
from monoimage.recipe.model import PackageRequest
from monoimage.recipe.versions import Constraint, Family

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def req(name: str, op: str | None = None, version: str | None = None) -> PackageRequest:
    return PackageRequest(name, Constraint(op, version) if op and version else None)


def test_one_entry_per_name_remembering_every_requester() -> None:
    merged = merge([("nova", req("libvirt0")), ("ceilometer", req("libvirt0")),
                    ("nova", req("qemu"))], Family.APT)
    assert merged.names == ("libvirt0", "qemu")
    assert merged.entry("libvirt0").requested_by == ("ceilometer", "nova")
    assert merged.entry("libvirt0").shared and not merged.entry("qemu").shared


def test_constraints_are_intersected_with_debian_ordering() -> None:
    merged = merge([("a", req("openvswitch", ">=", "2.17")),
                    ("b", req("openvswitch", "<", "3.2~rc1"))], Family.APT)
    assert str(merged.entry("openvswitch").range) == ">= 2.17, < 3.2~rc1"


def test_conflicting_pins_name_both_services() -> None:
    with pytest.raises(ConflictError) as caught:
        merge([("neutron", req("openvswitch", ">=", "3.1")),
               ("legacy", req("openvswitch", "<", "2.17"))], Family.APT)
    message = str(caught.value)
    assert "openvswitch" in message
    assert "neutron wants openvswitch >= 3.1" in message
    assert "legacy wants openvswitch < 2.17" in message


def test_rpm_ordering_decides_conflicts_on_dnf() -> None:
    # 1.0~rc1 is below 1.0 for both; 2:1.0 is above 3.0 only with epochs, so `>= 2:1.0`
    # alone is the intersection.
    merged = merge([("a", req("p", ">=", "2:1.0")), ("b", req("p", ">", "3.0"))], Family.DNF)
    assert str(merged.entry("p").range) == ">= 2:1.0"
    assert merged.entry("p").requested_by == ("a", "b")
    with pytest.raises(ConflictError):
        merge([("a", req("p", "<=", "1.0~rc1")), ("b", req("p", ">=", "1.0"))], Family.DNF)


def test_conflict_in_a_recipe_exits_2_with_the_services(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from monoimage.cli import main
    from recipe_files import write_recipe

    path = write_recipe(tmp_path, {
        "alpha": "name: alpha\npackages: ['libfoo >= 2.0']\nrun:\n  argv: [a]\n",
        "beta": "name: beta\npackages: ['libfoo = 1.5']\nrun:\n  argv: [b]\n",
    })
    result = CliRunner().invoke(main, ["plan", str(path)])
    assert result.exit_code == 2
    assert "alpha wants libfoo >= 2.0" in result.output
    assert "beta wants libfoo = 1.5" in result.output


VERSIONS = st.sampled_from(["1.0", "1.0~rc1", "1.2", "2.0", "2.17", "1:0.5", "3.1-2"])
OPS = st.sampled_from(["=", ">=", "<=", ">", "<", None])
REQUESTS = st.lists(
    st.tuples(st.sampled_from(["nova", "neutron", "chrony", "base"]),
              st.sampled_from(["libssl3", "python3", "openvswitch"]), OPS, VERSIONS),
    max_size=12)


def _outcome(pairs: list[tuple[str, PackageRequest]]) -> object:
    try:
        return merge(pairs, Family.APT)
    except ConflictError as err:
        return ("conflict", str(err).split(":")[0])


@given(REQUESTS, st.randoms())
def test_merging_is_order_independent(requests: list, rng) -> None:  # type: ignore[no-untyped-def]
    pairs = [(who, req(name, op, version)) for who, name, op, version in requests]
    shuffled = list(pairs)
    rng.shuffle(shuffled)
    assert _outcome(pairs) == _outcome(shuffled)


def test_edge_lite_plan_has_every_service_and_the_init_python() -> None:
    result = plan(load_recipe(RECIPES / "edge-lite.yaml"))
    names = result.packages.names
    for package in ("mosquitto", "nginx-light", "redis-server", "dnsmasq", "chrony",
                    "prometheus-node-exporter", "haproxy", "python3-minimal"):
        assert package in names
    assert result.packages.entry("python3-minimal").requested_by == ("monoimage-init",)


def test_edge_compute_plan_shares_openvswitch_between_its_services() -> None:
    result = plan(load_recipe(RECIPES / "edge-compute.yaml"))
    entry = result.packages.entry("openvswitch-switch")
    assert entry.requested_by == ("openvswitch-db", "openvswitch-vswitchd")
    assert str(entry.range) == ">= 3.1"
    assert result.requested == len(result.packages.entries) + 1
