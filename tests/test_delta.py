"""Delta updates, pure: what the one new layer holds, and when the chain compacts."""

from __future__ import annotations

from monoimage.plan.delta import Entry, chain_cost, compaction_reason, diff_trees
from monoimage.recipe.model import Layering


def _file(content: str, size: int = 10, mode: int = 0o644) -> Entry:
    return Entry("file", mode, 0, 0, size, content)


DIR = Entry("dir", 0o755, 0, 0)
OLD = {"/usr": DIR, "/usr/lib": DIR, "/usr/lib/libx.so": _file("a", 100),
       "/usr/share": DIR, "/usr/share/x": DIR, "/usr/share/x/a": _file("b", 7),
       "/usr/share/x/b": _file("c", 5), "/etc": DIR, "/etc/x.conf": _file("d", 3),
       "/var": DIR, "/var/lib": DIR, "/var/lib/status": _file("e", 50)}


def test_changed_new_and_removed_paths_and_the_bytes_they_hide() -> None:
    new = dict(OLD)
    new["/usr/lib/libx.so"] = _file("a2", 120)  # an update
    new["/usr/lib/liby.so"] = _file("y", 30)  # a new file
    new["/var/lib/status"] = _file("e2", 52)  # the package database
    new["/etc/x.conf"] = _file("d", 3, mode=0o600)  # only its mode changed
    for gone in ("/usr/share/x", "/usr/share/x/a", "/usr/share/x/b"):
        del new[gone]
    diff = diff_trees(OLD, new)
    assert diff.changed == ("/etc/x.conf", "/usr/lib/libx.so", "/usr/lib/liby.so",
                            "/var/lib/status")
    assert diff.removed == ("/usr/share/x",)  # one whiteout for the tree
    assert diff.shadowed_bytes == 100 + 50 + 3 + 7 + 5
    assert diff.changed_bytes == 120 + 30 + 52 + 3


def test_a_path_whose_type_changed_is_whited_out_then_copied() -> None:
    new = {k: v for k, v in OLD.items() if not k.startswith("/usr/share/x/")}
    new["/usr/share/x"] = Entry("link", 0o777, 0, 0, content="/opt/x")
    diff = diff_trees(OLD, new)
    assert diff.removed == ("/usr/share/x",) and diff.changed == ("/usr/share/x",)
    assert diff.shadowed_bytes == 7 + 5


def test_the_same_root_gives_an_empty_delta() -> None:
    assert diff_trees(OLD, dict(OLD)).empty


def test_the_chain_compacts_past_its_length_or_its_shadowed_share() -> None:
    layering = Layering("packages", max_deltas=3, max_shadowed=0.25)
    assert compaction_reason(layering, deltas=3, shadowed_bytes=25, image_bytes=100) == ""
    assert "4 delta layers would pass layering.max_deltas (3)" in compaction_reason(
        layering, deltas=4, shadowed_bytes=0, image_bytes=100)
    assert "hide 26% of the image's bytes" in compaction_reason(
        layering, deltas=1, shadowed_bytes=26, image_bytes=100)


def test_the_chain_cost_says_what_the_site_keeps_on_disk_and_when_it_compacts() -> None:
    layering = Layering("packages", max_deltas=8, max_shadowed=0.25)
    cost = chain_cost(layering, 1, 508_941, 190_000_000)
    assert (cost.deltas_left, cost.shadowed_left) == (7, 47_500_000 - 508_941)
    assert cost.line() == (
        "1 delta layer (compacts past 8); they hide 0.5 MB of older files on the site's disk "
        "(0.3% of the image; compacts past 25%); next compaction: the build after 7 more "
        "deltas, or sooner once the chain hides 47.0 MB more")
    assert cost.as_json() == {
        "deltas": 1, "max_deltas": 8, "shadowed_bytes": 508_941, "image_bytes": 190_000_000,
        "shadowed_share": 0.002679, "max_shadowed": 0.25, "deltas_left": 7,
        "shadowed_bytes_left": 46_991_059}
    # the numbers agree with compaction_reason: the chain compacts when either runs out
    last = chain_cost(layering, 8, 10, 100)
    assert last.deltas_left == 0 and "after 0 more deltas" in last.next_compaction()
    assert compaction_reason(layering, deltas=9, shadowed_bytes=10, image_bytes=100)
    full = chain_cost(layering, 2, 30, 100)
    assert full.shadowed_left == 0
    assert compaction_reason(layering, deltas=3, shadowed_bytes=30, image_bytes=100)
