"""Mutated shipped recipes never crash `monoimage plan` (issue 11): hypothesis changes the
edge-lite and edge-compute recipes and their service files (odd scalars, deleted keys, changed
types, NUL, newlines, huge strings, NaN, aliases, tags) and runs the real command line on the
result. It exits 0 or 2, never with a traceback; a refusal is one stderr line that begins with
the file at fault; and whatever `plan` accepts, the init's own table reader accepts too."""

from __future__ import annotations

import copy
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from monoimage.cli import main
from monoimage.init.table import parse_table
from monoimage.plan.service_table import service_table_text
from monoimage.recipe.load import load_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
IMAGES = ("edge-lite.yaml", "edge-compute.yaml")

ODD_VALUES: list[Any] = [
    float("nan"), float("inf"), -float("inf"), -1, 0, 10**30, 1e308, "", "\0", "a\0b",
    "two\nlines", "trailing\n", "x" * 100_000, True, None, [], {}, [None], {"k": "v"}, "-rf",
    "--root=/", "../../etc/passwd", "/dev/zero", "/", "SIGKILL", "SIGSTOP", "ALL", "CAP_ALL",
    "{{ undeclared }}", "ftp://x", "http://x\nTrusted: yes", "0999", "\t", "ä", "\ud800",
    "2024-01-01", 3.5, "root\n", "a b",
]
RAW_SNIPPETS = [
    "\0", "x: &a [*a]", "*nowhere", "!custom x", "!!int abc", "!!binary aGk=", "? [a]\n: 1",
    ("a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
     "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
     "e: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]"),
    "deep: " + "[" * 3000 + "]" * 3000, "\x1b[31m", "\ufeff", "key: !!python/name:os.system",
    "	tab: 1", "- item", "{", "'unterminated", "name: twice", "&anchor",
]


def paths_of(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a YAML document's data."""
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += paths_of(value, prefix + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += paths_of(value, prefix + (i,))
    return found


def value_at(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def mutated(data: Any, path: tuple[Any, ...], action: str, odd: Any) -> Any:
    if not path:
        return odd if action != "delete" else None
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "wrap":
        parent[last] = [parent[last]] if not isinstance(parent[last], list) else {
            "x": parent[last]}
    else:
        parent[last] = odd
    return data


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, str, Any]:
    image = draw(st.sampled_from(IMAGES))
    doc = yaml.safe_load((RECIPES / image).read_text())
    files = [image] + [f"services/{name}.yaml" for name in doc["services"]]
    target = draw(st.sampled_from(files))
    return image, target, draw(st.data())


def apply(root: Path, target: str, data: st.DataObject) -> None:
    path = root / target
    text = path.read_text()
    if data.draw(st.booleans(), label="raw text"):
        lines = text.splitlines(keepends=True)
        at = data.draw(st.integers(0, len(lines)), label="line")
        snippet = data.draw(st.sampled_from(RAW_SNIPPETS), label="snippet")
        indent = data.draw(st.sampled_from(["", "  ", "    "]), label="indent")
        lines.insert(at, indent + snippet + "\n")
        path.write_text("".join(lines), encoding="utf-8", errors="surrogatepass")
        return
    doc = yaml.safe_load(text)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = paths_of(doc)
        leaves = [p for p in paths if not isinstance(value_at(doc, p), dict | list)]
        where = data.draw(st.sampled_from(leaves) if leaves and data.draw(
            st.integers(0, 3), label="leaf?") else st.sampled_from(paths), label="path")
        action = data.draw(st.sampled_from(["replace", "delete", "wrap"]), label="action")
        odd = copy.deepcopy(data.draw(st.sampled_from(ODD_VALUES), label="value"))
        doc = mutated(doc, where, action, odd)
        if doc is None:
            break
    out = yaml.safe_dump(doc, allow_unicode=False, width=1_000_000)
    path.write_text(out, encoding="utf-8")


@settings(max_examples=200)
@given(mutations())
def test_mutated_shipped_recipes_exit_0_or_2_with_one_located_line(case):
    image, target, data = case
    with tempfile.TemporaryDirectory(prefix="monoimage-mutation-") as folder:
        root = Path(folder)
        shutil.copytree(RECIPES, root, dirs_exist_ok=True)
        apply(root, target, data)
        result = CliRunner().invoke(main, ["plan", "--json", str(root / image)])
        assert result.exit_code in (0, 2), (result.exception, result.stderr)
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            result.exception)
        if result.exit_code == 0:
            recipe = load_recipe(root / image)
            parse_table(service_table_text(recipe))  # the init reads what plan accepted
            return
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"monoimage: {root}/"), lines[0]
        assert len(lines[0]) < 1000
