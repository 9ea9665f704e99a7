"""The `packages` layer planner and the path assignment: pure, no image built."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monoimage.errors import UserError
from monoimage.plan.layer_plan import BUCKETS, INIT, METADATA, LayerPlan, assign_paths, plan_layers
from monoimage.plan.resolution import ResolvedPackage
from monoimage.recipe.model import Layering

MIB = 1 << 20


def _pkg(name: str, size: int = 1000, *, base: bool = False,
         requested_by: tuple[str, ...] = ()) -> ResolvedPackage:
    return ResolvedPackage(name, "1", "all", size, size, requested_by=requested_by, base=base)


def _groups(plan: LayerPlan) -> set[tuple[str, ...]]:
    return {layer.packages for layer in plan.layers if layer.packages}


names = st.text("abcdefghijklmnopqrstuvwxyz0123456789+-.", min_size=1, max_size=12)
package = st.builds(
    _pkg, names, st.integers(0, 8 * MIB), base=st.booleans(),
    requested_by=st.lists(st.sampled_from(["base", "dns", "mqtt", "web", "monoimage-init"]),
                          max_size=3, unique=True).map(tuple))
closures = st.lists(package, max_size=60, unique_by=lambda p: p.name)


def _roomy(*closures: list[ResolvedPackage]) -> Layering:
    """Room for every package alone plus every group: the squeeze never applies."""
    most = max(len(c) for c in closures)
    return Layering("packages", max_layers=most + 3 * BUCKETS + 2)


@settings(max_examples=200, deadline=None)
@given(closures, st.integers(2, 70), st.randoms(use_true_random=False))
def test_every_package_is_in_exactly_one_layer_within_max_layers_in_any_input_order(
        packages, max_layers, rng):
    layering = Layering("packages", max_layers=max_layers)
    plan = plan_layers(layering, packages)
    placed = [name for layer in plan.layers for name in layer.packages]
    assert sorted(placed) == sorted(p.name for p in packages)
    assert len(plan.layers) <= max_layers
    assert [layer.name for layer in plan.layers[-2:]] in ([METADATA, INIT], ["system", INIT])
    assert plan.layers[-1].init and plan.layers[-2].rest
    shuffled = list(packages)
    rng.shuffle(shuffled)
    assert plan_layers(layering, shuffled) == plan  # same input, same plan


@settings(max_examples=200, deadline=None)
@given(closures, package)
def test_adding_a_package_changes_only_the_layer_it_joins(packages, added):
    packages = [p for p in packages if p.name != added.name]
    layering = _roomy(packages + [added])
    before = _groups(plan_layers(layering, packages))
    after = _groups(plan_layers(layering, packages + [added]))
    assert {g for g in after if added.name not in g} <= before
    assert len(before - after) <= 1  # at most the group it joined


@settings(max_examples=200, deadline=None)
@given(closures.filter(bool), st.integers(0, 8 * MIB), st.data())
def test_updating_a_package_changes_only_layers_that_hold_it(packages, new_size, data):
    index = data.draw(st.integers(0, len(packages) - 1))
    updated = list(packages)
    updated[index] = _pkg(packages[index].name, new_size, base=packages[index].base,
                          requested_by=packages[index].requested_by)
    layering = _roomy(packages)
    name = packages[index].name
    before = _groups(plan_layers(layering, packages))
    after = _groups(plan_layers(layering, updated))
    # Every other package keeps its companions; at most the layer it left and the layer it
    # joined differ (a size across SOLO_BYTES moves it between its own layer and its group).
    assert _without(before, name) == _without(after, name)
    assert len(before - after) <= 2 and len(after - before) <= 2


def _without(groups: set[tuple[str, ...]], name: str) -> set[tuple[str, ...]]:
    return {rest for g in groups if (rest := tuple(n for n in g if n != name))}


def test_tiers_minimal_then_shared_then_dedicated_and_big_packages_alone():
    packages = [_pkg("libc6", 12 * MIB, base=True), _pkg("tiny-base", 10, base=True),
                _pkg("libssl3", 5 * MIB, requested_by=("dns", "web")),
                _pkg("nginx", 2 * MIB, requested_by=("web",)), _pkg("conf", 20)]
    plan = plan_layers(Layering("packages", max_layers=20), packages,
                       needed_by={"libssl3": ("dns", "web"), "nginx": ("web",),
                                  "conf": ("web",)})
    assert [(layer.name, layer.packages) for layer in plan.layers] == [
        ("minimal/libc6", ("libc6",)), (plan.layers[1].name, ("tiny-base",)),
        ("shared/libssl3", ("libssl3",)), ("dedicated/nginx", ("nginx",)),
        (plan.layers[4].name, ("conf",)), (METADATA, ()), (INIT, ())]
    assert plan.layers[1].name.startswith("minimal/group-")
    assert plan.layers[4].name.startswith("dedicated/group-")


def test_sizes_from_the_image_override_the_repository_estimate():
    packages = [_pkg("docs-heavy", 5 * MIB), _pkg("real", 10)]
    plan = plan_layers(Layering("packages"), packages, sizes={"docs-heavy": 10,
                                                              "real": 3 * MIB})
    solo = {layer.name for layer in plan.layers}
    assert "dedicated/real" in solo and "dedicated/docs-heavy" not in solo


def test_the_squeeze_demotes_the_smallest_solo_packages_first():
    packages = [_pkg(f"big{i}", (i + 1) * MIB) for i in range(6)]
    plan = plan_layers(Layering("packages", max_layers=2 + 4), packages, buckets=1)
    assert len(plan.layers) == 6
    assert [layer.packages for layer in plan.layers[:3]] == [("big3",), ("big4",), ("big5",)]
    assert plan.layers[3].packages == ("big0", "big1", "big2")


def test_two_layers_put_every_package_under_the_init():
    plan = plan_layers(Layering("packages", max_layers=2), [_pkg("a"), _pkg("b")])
    assert [(layer.name, layer.packages, layer.rest) for layer in plan.layers] == [
        ("system", ("a", "b"), True), (INIT, (), False)]


def test_single_is_one_layer_and_unknown_policies_fail():
    plan = plan_layers(Layering("single"), [_pkg("b"), _pkg("a")])
    assert plan.is_single and plan.layers[0].packages == ("a", "b") and plan.layers[0].rest
    with pytest.raises(UserError, match="'squashfs'"):
        plan_layers(Layering("squashfs"), [_pkg("a")])  # type: ignore[arg-type]


def test_paths_go_to_the_earliest_owner_the_init_or_the_metadata_layer():
    plan = plan_layers(Layering("packages", max_layers=10),
                       [_pkg("libc6", 2 * MIB, base=True), _pkg("web", 2 * MIB)])
    owners = {"/usr": ("libc6", "web"), "/usr/lib/libc.so.6": ("libc6",),
              "/usr/sbin/web": ("web",), "/etc/web/web.conf": ("web",),
              "/usr/share/doc/shared": ("web", "libc6")}
    paths = [*owners, "/etc", "/etc/web", "/etc/passwd", "/usr/lib", "/usr/sbin",
             "/usr/share", "/usr/share/doc", "/usr/bin", "/usr/bin/monoimage-init"]
    assigned = assign_paths(plan, owners, paths,
                            lambda p: p in ("/usr/bin/monoimage-init", "/etc/web/web.conf"))
    by_name = {layer.name: files for layer, files in zip(plan.layers, assigned, strict=True)}
    assert by_name["minimal/libc6"] == ("/usr", "/usr/lib", "/usr/lib/libc.so.6", "/usr/share",
                                        "/usr/share/doc", "/usr/share/doc/shared")
    assert by_name["dedicated/web"] == ("/usr", "/usr/sbin", "/usr/sbin/web")
    # The template link replaced the packaged file: the init layer has it, not the package's.
    assert by_name[INIT] == ("/etc", "/etc/web", "/etc/web/web.conf", "/usr", "/usr/bin",
                             "/usr/bin/monoimage-init")
    assert by_name[METADATA] == ("/etc", "/etc/passwd", "/etc/web", "/usr", "/usr/bin",
                                 "/usr/lib", "/usr/sbin", "/usr/share", "/usr/share/doc")
