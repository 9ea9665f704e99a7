"""Keeping the previous image's layer plan (`--previous`), and the record an image carries of
it: pure, no image built."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monoimage.errors import UserError
from monoimage.image import LABEL_LAYER_PLAN, LABEL_RECIPE_DIGEST
from monoimage.plan.layer_plan import LayerPlan, plan_layers
from monoimage.plan.layer_record import parse_record, previous_record, record_text
from monoimage.plan.resolution import ResolvedPackage
from monoimage.recipe.model import Distro, Layering, Recipe
from monoimage.recipe.versions import Family

MIB = 1 << 20
LAYERING = Layering("packages", max_layers=60)
RECIPE = Recipe(name="toy", tag="1", source="toy.yaml", digest="sha256:0",
                distro=Distro("debian", "bookworm", Family.APT))


def _pkg(name: str, size: int = 1000, *, base: bool = False,
         requested_by: tuple[str, ...] = ()) -> ResolvedPackage:
    return ResolvedPackage(name, "1", "all", size, size, requested_by=requested_by, base=base)


def _layer_of(plan: LayerPlan) -> dict[str, str]:
    return {name: layer.name for layer in plan.layers for name in layer.packages}


names = st.text("abcdefghijklmnopqrstuvwxyz0123456789+-.", min_size=1, max_size=12)
package = st.builds(
    _pkg, names, st.integers(0, 8 * MIB), base=st.booleans(),
    requested_by=st.lists(st.sampled_from(["base", "dns", "mqtt", "web", "monoimage-init"]),
                          max_size=3, unique=True).map(tuple))
closures = st.lists(package, min_size=1, max_size=40, unique_by=lambda p: p.name)


@settings(max_examples=200, deadline=None)
@given(closures, st.lists(package, max_size=5, unique_by=lambda p: p.name), st.data())
def test_no_package_moves_when_packages_are_added_removed_or_resized(before, added, data):
    previous = plan_layers(LAYERING, before)
    added = [p for p in added if p.name not in {b.name for b in before}]
    dropped = data.draw(st.sets(st.sampled_from([p.name for p in before])))
    # every kept package may also change size and tier (an update; a new service needs it)
    after = [_pkg(p.name, data.draw(st.integers(0, 8 * MIB)), base=p.base,
                  requested_by=data.draw(st.sampled_from([(), ("dns", "web")])))
             for p in before if p.name not in dropped] + added
    plan = plan_layers(LAYERING, after, previous=previous)
    old, new = _layer_of(previous), _layer_of(plan)
    assert sorted(new) == sorted(p.name for p in after)
    assert all(new[name] == old[name] for name in new if name in old)
    assert len(plan.layers) <= LAYERING.max_layers
    # a layer changes only if it lost or gained a package
    touched = {old[name] for name in dropped} | {new[p.name] for p in added}
    before_layers = {x.name: x.packages for x in previous.package_layers}
    for layer in plan.package_layers:
        if layer.name not in touched:
            assert before_layers[layer.name] == layer.packages


def test_an_update_across_the_solo_size_keeps_the_plan_and_says_so():
    before = [_pkg("libc6", 2 * MIB, base=True), _pkg("libtirpc3", 200_000,
                                                      requested_by=("a", "b")), _pkg("web")]
    previous = plan_layers(LAYERING, before)
    grown = [*before[:1], _pkg("libtirpc3", 3 * MIB, requested_by=("a", "b")), before[2]]
    plan = plan_layers(LAYERING, grown, previous=previous)
    assert plan.layers == previous.layers
    assert plan.note.startswith("kept the previous plan's")
    assert plan_layers(LAYERING, grown).layers != previous.layers  # from scratch it moves


def test_a_new_package_joins_the_group_of_its_name_or_a_new_layer():
    previous = plan_layers(LAYERING, [_pkg(f"p{i}") for i in range(12)])
    plan = plan_layers(LAYERING, [*(_pkg(f"p{i}") for i in range(12)), _pkg("big", 5 * MIB)],
                       previous=previous)
    assert plan.package_layers[:-1] == previous.package_layers
    assert plan.package_layers[-1].packages == ("big",)


def test_past_the_budget_the_plan_starts_from_scratch_and_says_why():
    small = Layering("packages", max_layers=4)
    previous = plan_layers(small, [_pkg("a", 2 * MIB), _pkg("b", 2 * MIB)])
    assert len(previous.package_layers) == 2
    plan = plan_layers(small, [_pkg("a", 2 * MIB), _pkg("b", 2 * MIB), _pkg("c", 2 * MIB)],
                       previous=previous)
    assert "from scratch" in plan.note and "2 package layers" in plan.note
    assert len(plan.layers) <= 4


def test_the_record_round_trips_plan_and_versions():
    packages = [_pkg("libc6", 2 * MIB, base=True), _pkg("web"), _pkg("zlib1g")]
    plan = plan_layers(LAYERING, packages)
    text = record_text(RECIPE, plan, {"libc6": "2.36-9", "web": "1.0", "zlib1g": "1:1.2"})
    record = parse_record(text)
    assert record.plan.layers == plan.layers
    assert record.version_of == {"libc6": "2.36-9", "web": "1.0", "zlib1g": "1:1.2"}
    assert (record.recipe, record.distro) == ("toy", "debian bookworm amd64 apt")


@pytest.mark.parametrize(("labels", "message"), [
    ({}, "was not built by monoimage: it has no io.monoimage.layer-plan label"),
    ({LABEL_RECIPE_DIGEST: "sha256:1"}, "without layers by package (layering: single)"),
    ({LABEL_LAYER_PLAN: "{"}, "label io.monoimage.layer-plan: not JSON"),
    ({LABEL_LAYER_PLAN: '{"format": 1, "recipe": "toy", "distro": "x", "layers": [["a", '
                        '[["p", "1"]]], ["b", [["p", "2"]]]]}'}, "package 'p' in two layers"),
    ({LABEL_LAYER_PLAN: '{"format": 1, "recipe": "other", "distro": "x", "layers": []}'},
     "built from recipe 'other', not 'toy'"),
    ({LABEL_LAYER_PLAN: '{"format": 1, "recipe": "toy", "distro": "fedora 39 x86_64 dnf", '
                        '"layers": []}'},
     "built for fedora 39 x86_64 dnf, the recipe builds for debian bookworm amd64 apt"),
])
def test_an_image_that_cannot_serve_as_previous_says_why_in_one_line(labels, message):
    with pytest.raises(UserError) as error:
        previous_record("--previous", "localhost/x:1", labels, RECIPE)
    assert str(error.value).startswith("--previous localhost/x:1: ")
    assert message in str(error.value) and "\n" not in str(error.value)
