"""The tree's import rule, read from the code itself (see docs/architecture.md).

recipe ← plan, footprint, hosts ← tools ← pipeline ← cli: a module imports only from its own
layer or the layers below it; the pure layers (recipe, plan, footprint, hosts) never import
tools, pipeline, cli, subprocess or sh; monoimage-init imports nothing of the rest; no import
cycle between modules; one runner: only tools/run.py imports sh or subprocess (the init,
which supervises services inside the image, starts them itself).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from monoimage import image
from monoimage.init import commands as init_commands
from monoimage.init import render as init_render

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "monoimage"

# Lower numbers lie below; a module may import its own layer and every layer below it.
LAYERS = {"errors": 0, "image": 0, "recipe": 1, "plan": 2, "footprint": 3, "hosts": 3,
          "tools": 4, "pipeline": 5, "cli": 6}
PURE = ("recipe", "plan", "footprint", "hosts")
RUNNERS = {"subprocess", "sh"}
MAX_LINES = 400


def modules() -> dict[str, Path]:
    """Every module of the host-side package (init apart), by dotted name."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imported(path: Path) -> set[str]:
    """The dotted names of every module `path` imports; relative imports only inside the
    init, which ships alone into the image as its own package."""
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                assert path.parent.name == "init", f"{path}: relative import"
                continue
            module = node.module or ""
            names.add(module)
            # `from monoimage.tools import buildah` imports the module monoimage.tools.buildah
            names |= {f"{module}.{alias.name}" for alias in node.names}
    return names


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "monoimage" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in LAYERS or parts[1] == "init" else None


def internal_imports(path: Path, known: dict[str, Path]) -> set[str]:
    return {name for name in imported(path) if name in known}


def test_every_module_lives_in_a_known_layer():
    strays = [name for name in modules()
              if name != "monoimage" and layer_of(name) is None]
    assert strays == []


def test_imports_point_down_the_data_path():
    known = modules()
    wrong = []
    for name, path in known.items():
        mine = layer_of(name)
        if mine is None or mine == "init":
            continue
        for target in internal_imports(path, known):
            theirs = layer_of(target)
            if theirs is None or theirs == "init":
                continue
            if LAYERS[theirs] > LAYERS[mine] or (LAYERS[theirs] == LAYERS[mine]
                                                 and theirs != mine):
                wrong.append(f"{name} imports {target}")
    assert wrong == []


@pytest.mark.parametrize("layer", PURE)
def test_pure_layers_run_no_program(layer):
    found = []
    for name, path in modules().items():
        if layer_of(name) == layer:
            found += [f"{name} imports {n}" for n in imported(path)
                      if n.split(".")[0] in RUNNERS]
    assert found == []


def test_only_the_runner_starts_programs():
    found = [f"{name} imports {n}" for name, path in modules().items()
             if name != "monoimage.tools.run" and layer_of(name) != "init"
             for n in imported(path) if n.split(".")[0] in RUNNERS]
    assert found == []


def test_the_init_imports_nothing_of_the_rest():
    found = []
    for path in sorted((PACKAGE / "init").glob("*.py")):
        found += [f"{path.name} imports {n}" for n in imported(path)
                  if n.startswith("monoimage") and not n.startswith("monoimage.init")]
    assert found == []


def test_no_import_cycle():
    known = modules()
    # A package's __init__ importing its own submodules is how it registers them: not a cycle.
    graph = {name: {t for t in internal_imports(path, known) - {name}
                    if not t.startswith(name + ".")}
             for name, path in known.items()}
    state: dict[str, str] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        if state.get(node) == "done":
            return
        if state.get(node) == "open":
            cycles.append(trail[trail.index(node):] + [node])
            return
        state[node] = "open"
        for target in sorted(graph[node]):
            visit(target, trail + [node])
        state[node] = "done"

    for name in sorted(graph):
        visit(name, [])
    assert cycles == []


def test_no_module_needs_scrolling():
    long = [f"{name}: {len(path.read_text().splitlines())} lines"
            for name, path in modules().items()
            if layer_of(name) != "init" and len(path.read_text().splitlines()) > MAX_LINES]
    assert long == []


def test_the_init_and_the_image_contract_agree():
    """The init ships alone and cannot import image.py: the names it shares are equal."""
    assert init_commands.DEFAULT_TABLE == image.TABLE_PATH
    assert init_render.SITE_ENV_PREFIX == image.SITE_ENV_PREFIX
