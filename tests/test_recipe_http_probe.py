"""The http readiness probe in a service recipe: `http: PORT` or `http: {port, path, status}`,
checked like every other key (range, form, unknown keys) with FILE:LINE, and carried into the
service table the init reads."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from monoimage.errors import RecipeError
from monoimage.init.table import parse_table
from monoimage.plan.service_table import service_table, service_table_text
from monoimage.recipe.load import load_recipe
from monoimage.recipe.model import Probe
from recipe_files import write_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def service(ready: str) -> str:
    return f"name: web\npackages:\n  - web-pkg\nrun:\n  argv: [/usr/bin/web]\nready:\n{ready}"


def probe_of(tmp_path: Path, ready: str) -> Probe:
    return load_recipe(write_recipe(tmp_path, {"web": service(ready)})).services[0].ready


def test_http_probe_with_its_defaults_and_in_full(tmp_path: Path) -> None:
    assert probe_of(tmp_path, "  http: 8080\n") == Probe(kind="http", port=8080, path="/",
                                                         status=200)
    full = probe_of(tmp_path, "  http: {port: 80, path: /healthz?deep=1, status: 204}\n"
                              "  timeout: 5\n")
    assert (full.kind, full.port, full.path, full.status, full.timeout) == (
        "http", 80, "/healthz?deep=1", 204, 5.0)


@pytest.mark.parametrize(("ready", "line", "key", "says"), [
    ("  http: {path: /}\n", 7, "ready.http", "missing required key 'port'"),
    ("  http: {port: 0}\n", 7, "ready.http.port", "is not a port number 1-65535"),
    ("  http: 70000\n", 7, "ready.http", "is not a port number 1-65535"),
    ("  http: {port: 80, path: healthz}\n", 7, "ready.http.path", "is not a request path"),
    ("  http: {port: 80, path: /a b}\n", 7, "ready.http.path", "is not a request path"),
    ("  http: {port: 80, status: 99}\n", 7, "ready.http.status", "must be at least 100"),
    ("  http: {port: 80, status: 600}\n", 7, "ready.http.status", "must be at most 599"),
    ("  http: {port: 80, status: '200'}\n", 7, "ready.http.status", "must be a whole number"),
    ("  http:\n    port: 80\n    staus: 200\n", 9, "ready.http.staus", "unknown key"),
    ("  http: 80\n  tcp: 80\n", 6, "ready", "give one probe, not tcp and http"),
])
def test_a_broken_http_probe_is_one_located_error(tmp_path: Path, ready: str, line: int,
                                                  key: str, says: str) -> None:
    with pytest.raises(RecipeError) as caught:
        load_recipe(write_recipe(tmp_path, {"web": service(ready)}))
    error = caught.value
    assert error.file == str(tmp_path / "services" / "web.yaml")
    assert (error.line, error.key_path) == (line, key), error
    assert says in error.message


def test_the_table_carries_the_probe_to_the_init(tmp_path: Path) -> None:
    recipe = load_recipe(write_recipe(tmp_path, {
        "web": service("  http: {port: 80, path: /healthz, status: 204}\n")}))
    ready = parse_table(service_table_text(recipe)).services[0].ready
    assert (ready.kind, ready.port, ready.path, ready.status) == ("http", 80, "/healthz", 204)


def test_a_table_without_an_http_probe_has_no_status_key(tmp_path: Path) -> None:
    """The tables of recipes without an http probe stay what they were (image digests too)."""
    recipe = load_recipe(write_recipe(tmp_path, {"web": service("  tcp: 80\n")}))
    assert "status" not in service_table(recipe)["services"][0]["ready"]
    assert "status" not in ast.literal_eval(service_table_text(recipe))["services"][0]["ready"]


def test_the_shipped_nginx_answers_its_index_and_is_probed_by_http() -> None:
    nginx = next(s for s in load_recipe(RECIPES / "edge-lite.yaml").services
                 if s.name == "nginx")
    assert nginx.ready == Probe(kind="http", port=80, path="/", status=200, timeout=20.0)
    index = next(t for t in nginx.templates if t.dest == "/var/www/html/index.html")
    assert "{{ hostname }}" in index.content
    conf = next(t for t in nginx.templates if t.dest == "/etc/nginx/nginx.conf").content
    assert "index index.html;" in conf
