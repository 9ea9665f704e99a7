"""The docs hold what the code does: every recipe key the parser reads is in the reference of
docs/recipes.md (the generated table is compared with settings.py in test_settings.py), and
scripts/docs-outputs rewrites the real-output blocks between their markers, and only those."""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import re
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from monoimage.recipe import fields as fields_module
from monoimage.recipe.load import load_recipe
from monoimage.recipe.located_yaml import format_path

ROOT = Path(__file__).resolve().parents[1]
RECIPES_DOC = ROOT / "docs" / "recipes.md"
RECIPE_CODE = ROOT / "src" / "monoimage" / "recipe"


def load_script() -> ModuleType:
    script = ROOT / "scripts" / "docs-outputs"
    loader = importlib.machinery.SourceFileLoader("docs_outputs", str(script))
    spec = importlib.util.spec_from_loader("docs_outputs", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["docs_outputs"] = module  # dataclasses look their module up there
    loader.exec_module(module)
    return module


docs_outputs = load_script()


# ---------------------------------------------------------------- the recipe reference

def documented_keys() -> set[tuple[str, str]]:
    """(file, key) of every row of the reference tables: `In an image recipe` / `In a service
    recipe` headings say which file the rows below them belong to."""
    keys: set[tuple[str, str]] = set()
    kind = ""
    for line in RECIPES_DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("In an image recipe"):
            kind = "image"
        elif line.startswith("In a service recipe"):
            kind = "service"
        elif (row := re.match(r"\| `([^`]+)` \|", line)) and kind:
            keys.add((kind, row.group(1)))
    return keys


def key_name(path: tuple[str | int, ...]) -> str:
    """A read key's path as the reference names it: list items `[]`, free names `NAME`."""
    parts = list(path)
    if parts[:1] == ["site"] and len(parts) > 1:
        parts[1] = "NAME"
    if parts[:2] == ["run", "env"] and len(parts) > 2:
        parts[2] = "NAME"
    return re.sub(r"\[\d+\]", "[]", format_path(tuple(parts)))


# One tree that takes every branch of the parser: both packagers, both apt repository forms,
# every probe kind, packages as a list and per packager, templates from content and source.
IMAGES = {
    "apt.yaml": """\
        image: {name: apt-image, tag: v1}
        distro:
          name: debian
          release: bookworm
          packager: apt
          architecture: amd64
          variant: minbase
          recommends: false
          repositories:
            - {uri: "http://deb.example/debian", suites: [bookworm], components: [main],
               signed_by: /usr/share/keyrings/example.gpg, trusted: false}
            - {uri: "http://deb.example/local", suite: bookworm}
        base: {packages: [tzdata], config_tools: [crudini]}
        services: [alpha, beta, gamma, delta]
        site: {hostname: edge}
        layering: {policy: packages, max_layers: 40}
        strip: {docs: true, man: true, locales: true, paths: [/opt/junk], packages: [gcc]}
        runtime: {memory: 512m, pids_limit: 1024, read_only: true}
        """,
    "dnf.yaml": """\
        image: {name: dnf-image}
        distro:
          name: fedora
          release: "40"
          packager: dnf
          repositories: [{id: fedora, baseurl: "http://rpm.example", gpgcheck: false}]
        services: [beta]
        """,
}
SERVICES = {
    "alpha": """\
        name: alpha
        description: every key of a service
        packages: {all: [alpha-common], apt: [alpha-deb], dnf: [alpha-rpm]}
        ports: [1883, 53/udp]
        config:
          templates:
            - {dest: /etc/alpha.conf, content: "x {{ hostname }}", mode: "0640", owner: root,
               group: root}
            - {dest: /etc/alpha.d/extra.conf, source: alpha.conf}
          commands: [{argv: [/usr/bin/alpha, --check], user: root}]
        run:
          argv: [/usr/bin/alpha]
          user: root
          group: root
          env: {ALPHA_MODE: edge}
          workdir: /
        ready: {tcp: {port: 1883, host: 127.0.0.1}, timeout: 20, interval: 0.2}
        depends_on: [beta]
        restart: {policy: always, backoff: {initial: 1, max: 10}, max_restarts: 3, window: 30}
        stop: {signal: SIGTERM, timeout: 5}
        reload_signal: SIGHUP
        critical: true
        volumes: [/var/lib/alpha]
        runtime_dirs: [{path: /run/alpha, owner: root, group: root, mode: "0755"}]
        capabilities: [NET_BIND_SERVICE]
        """,
    "beta": "name: beta\npackages: [beta]\nrun: {argv: [/usr/bin/beta]}\n"
            "ready: {unix: /run/beta.sock}\n",
    "gamma": "name: gamma\nrun: {argv: [/usr/bin/gamma]}\nready: {file: /run/gamma.pid}\n",
    "delta": "name: delta\nrun: {argv: [/usr/bin/delta]}\nready: {command: [/bin/true]}\n",
}


def read_keys(root: Path, monkeypatch: pytest.MonkeyPatch) -> set[tuple[str, str]]:
    """(file, key) of every key the parser reads while loading the shipped recipes and the
    tree above."""
    for name, text in IMAGES.items():
        (root / name).write_text(textwrap.dedent(text), encoding="utf-8")
    (root / "services").mkdir()
    for name, text in SERVICES.items():
        (root / "services" / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    (root / "services" / "alpha.conf").write_text("extra\n", encoding="utf-8")

    seen: set[tuple[str, str]] = set()
    original_raw, original_required = fields_module.Fields.raw, fields_module.Fields.required

    def note(fields: Any, key: str) -> None:
        kind = "service" if Path(fields.doc.file).parent.name == "services" else "image"
        seen.add((kind, key_name(fields.at(key))))

    def raw(self: Any, key: str, default: Any = None) -> Any:
        note(self, key)
        return original_raw(self, key, default)

    def required(self: Any, key: str) -> Any:
        note(self, key)
        return original_required(self, key)

    monkeypatch.setattr(fields_module.Fields, "raw", raw)
    monkeypatch.setattr(fields_module.Fields, "required", required)
    for path in [*sorted((ROOT / "recipes").glob("*.yaml")), *(root / n for n in IMAGES)]:
        load_recipe(path)
    return seen


def test_every_key_the_parser_reads_is_in_the_reference(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    documented = documented_keys()

    def listed(file: str, key: str) -> bool:
        """A key has its row, or is the mapping or list that rows below it describe."""
        return any(f == file and (k == key or k.startswith((key + ".", key + "[")))
                   for f, k in documented)

    missing = sorted(key for key in read_keys(tmp_path, monkeypatch) if not listed(*key))
    assert not missing, f"docs/recipes.md has no row for {missing}"


def key_literals() -> set[str]:
    """Every key name the recipe parser's code reads by a literal: `fields.text("release")`,
    `read_user(run, "user")`, `config.at("templates")`."""
    readers = {"raw", "required", "text", "flag", "whole", "number", "items", "texts",
               "mapping", "one_of", "has", "at", "default", "setting"}
    names: set[str] = set()
    for path in RECIPE_CODE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in readers:
                args = node.args[:1]
            elif (isinstance(func, ast.Name) and func.id != "read_values"  # reads a message
                  and (func.id.startswith("read_") or reads_fields(func.id, node.args))):
                args = node.args[1:2]
            else:
                continue
            names |= {a.value for a in args if isinstance(a, ast.Constant)
                      and isinstance(a.value, str)}
    return names


def reads_fields(name: str, args: list[ast.expr]) -> bool:
    """A module's own reader, called as `_token(fields, "release")`."""
    return (name.startswith("_") and bool(args) and isinstance(args[0], ast.Name)
            and args[0].id == "fields")


def test_every_key_the_code_names_is_in_the_reference() -> None:
    parts = {part for _, key in documented_keys() for part in re.split(r"[.\[\]]+", key)}
    missing = key_literals() - parts
    assert not missing, f"the parser reads keys docs/recipes.md does not list: {sorted(missing)}"


def test_every_key_in_the_reference_is_read_by_the_parser() -> None:
    literals = key_literals() | {"NAME"}
    stale = sorted(key for _, key in documented_keys()
                   if re.split(r"[.\[\]]+", key.rstrip("[]"))[-1] not in literals
                   and key.split(".")[-1] not in ("unix", "file", "command"))
    assert not stale, f"docs/recipes.md lists keys the parser does not read: {stale}"


# ---------------------------------------------------------------- scripts/docs-outputs

PLAN = "<!-- output: monoimage plan recipes/edge-lite.yaml -->\n"
HOST = ("<!-- output: monoimage host recipes/edge-lite.yaml --format quadlet -o out/h\n"
        "     show: out/h/edge-lite.container\n     grep: ^(Memory|PidsLimit)=\n"
        "     fence: ini -->\n")
BROKEN = ("<!-- output: monoimage plan broken.yaml\n     in: conflicting-constraints\n"
          "     exit: 2\n     note: two services disagree -->\n")
CLOSE = "<!-- /output -->\n"
PROSE = "\nProse between blocks stays as it is.\n\n"

DOC = (f"# Title\n\n{PLAN}```\n$ monoimage plan recipes/edge-lite.yaml\nstale output\n```\n"
       f"{CLOSE}{PROSE}{HOST}old\n{CLOSE}\n{BROKEN}{CLOSE}")


def fake(outputs: dict[str, str]) -> Any:
    calls: list[str] = []

    def show(spec: Any) -> str:
        calls.append(spec.command)
        return outputs[spec.command]

    return show, calls


OUTPUTS = {
    "monoimage plan recipes/edge-lite.yaml": "table   \n7 services\n",
    "monoimage host recipes/edge-lite.yaml --format quadlet -o out/h":
        "[Container]\nMemory=512m\nImage=x\nPidsLimit=1024\n",
    "monoimage plan broken.yaml": "monoimage: package 'libfoo': no version\n",
}

EXPECTED = (f"# Title\n\n{PLAN}```\n$ monoimage plan recipes/edge-lite.yaml\ntable\n7 services\n"
            f"```\n{CLOSE}{PROSE}{HOST}```ini\nMemory=512m\nPidsLimit=1024\n```\n{CLOSE}\n"
            f"{BROKEN}```\n$ monoimage plan broken.yaml     # two services disagree\n"
            f"monoimage: package 'libfoo': no version\n$ echo $?\n2\n```\n{CLOSE}")


def test_rewrite_replaces_each_block_with_its_output() -> None:
    show, _ = fake(OUTPUTS)
    assert docs_outputs.rewrite(DOC, show) == EXPECTED


def test_rewrite_is_idempotent() -> None:
    show, _ = fake(OUTPUTS)
    once = docs_outputs.rewrite(DOC, show)
    assert docs_outputs.rewrite(once, show) == once


def test_rewrite_leaves_unselected_blocks_alone() -> None:
    show, calls = fake(OUTPUTS)
    text = docs_outputs.rewrite(DOC, show, lambda spec: "host" in spec.command)
    assert calls == ["monoimage host recipes/edge-lite.yaml --format quadlet -o out/h"]
    assert "stale output" in text and "Memory=512m\nPidsLimit=1024\n```" in text


def test_a_marker_names_its_options() -> None:
    spec = docs_outputs.blocks(DOC)[2]
    assert (spec.command, spec.scenario, spec.exit, spec.note) == (
        "monoimage plan broken.yaml", "conflicting-constraints", 2, "two services disagree")


def test_an_unknown_option_is_refused() -> None:
    doc = "<!-- output: monoimage plan x.yaml\n     colour: red -->\n<!-- /output -->\n"
    with pytest.raises(docs_outputs.DocsError, match="'colour: red' is not one of"):
        docs_outputs.rewrite(doc, lambda spec: "")


def test_an_unclosed_marker_is_refused() -> None:
    doc = "<!-- output: monoimage plan x.yaml -->\n```\nold\n```\n"
    with pytest.raises(docs_outputs.DocsError, match="without its"):
        docs_outputs.rewrite(doc, lambda spec: "")


def test_a_command_that_fails_stops_the_run_and_writes_nothing(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    text = "<!-- output: monoimage plan no-such-recipe.yaml -->\nold\n<!-- /output -->\n"
    doc.write_text(text, encoding="utf-8")
    assert docs_outputs.main([str(doc)]) == 1
    assert doc.read_text(encoding="utf-8") == text


def test_a_real_plan_block_is_rewritten_from_a_real_run(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- output: monoimage plan broken.yaml\n     in: conflicting-constraints\n"
                   "     exit: 2 -->\n<!-- /output -->\n", encoding="utf-8")
    assert docs_outputs.main([str(doc)]) == 0
    assert doc.read_text(encoding="utf-8").endswith(
        "$ monoimage plan broken.yaml\nmonoimage: services/alpha.yaml:2: package 'libfoo': no "
        "version satisfies every constraint: alpha wants libfoo >= 2.0 (services/alpha.yaml:2); "
        "beta wants libfoo = 1.5 (services/beta.yaml:2)\n$ echo $?\n2\n```\n"
        "<!-- /output -->\n")


def test_every_docs_block_names_a_known_scenario() -> None:
    for path in sorted((ROOT / "docs").glob("*.md")):
        for spec in docs_outputs.blocks(path.read_text(encoding="utf-8")):
            assert not spec.scenario or spec.scenario in docs_outputs.SCENARIOS, (path, spec)
