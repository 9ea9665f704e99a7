"""The compiled service table: what monoimage-init reads, deterministic text."""

from __future__ import annotations

import ast
from pathlib import Path

from monoimage.image import CONFIG_ROOT
from monoimage.init.table import parse_table
from monoimage.plan.service_table import service_table, service_table_text
from monoimage.recipe.load import load_recipe
from monoimage.recipe.model import (
    ConfigCommand,
    Probe,
    Recipe,
    RestartPolicy,
    RuntimeDir,
    Service,
    Template,
)
from monoimage.recipe.versions import Family

REPO = Path(__file__).resolve().parents[1]


def _recipe() -> Recipe:
    from monoimage.recipe.model import Distro

    db = Service(
        name="db", source="db.yaml", argv=("db-server", "--fg"), user="db", group="db",
        env=(("B", "2"), ("A", "1")),
        templates=(Template("/etc/db/db.conf", "port {{ db_port }}\n", 0o640, "root", "db"),),
        commands=(ConfigCommand(("db-init", "--once"), "db"),),
        ready=Probe("tcp", port=5000, timeout=5.0),
        restart=RestartPolicy("always", 1.0, 10.0, 3, 30.0),
        runtime_dirs=(RuntimeDir("/run/db", "db", "db", 0o2755),),
        stop_signal="SIGINT", stop_timeout=3.0, critical=False)
    web = Service(name="web", source="web.yaml", argv=("web",), depends_on=("db",),
                  ready=Probe("command", argv=("web", "--ping")))
    return Recipe(name="tiny", tag="1", source="tiny.yaml", digest="sha256:0",
                  distro=Distro("debian", "bookworm", Family.APT), services=(db, web),
                  site=(("db_port", "5000"), ("hostname", "edge")))


def test_table_is_read_by_the_init_as_the_recipe_says():
    table = parse_table(service_table_text(_recipe()))
    assert [s.name for s in table.services] == ["db", "web"]
    db = table.service("db")
    assert db.argv == ("db-server", "--fg") and db.user == "db" and db.group == "db"
    assert dict(db.env) == {"A": "1", "B": "2"}
    assert db.templates[0].target == CONFIG_ROOT + "/etc/db/db.conf"
    assert db.templates[0].mode == 0o640 and db.templates[0].group == "db"
    assert db.commands[0].argv == ("db-init", "--once") and db.commands[0].user == "db"
    assert db.ready.kind == "tcp" and db.ready.port == 5000 and db.ready.timeout == 5.0
    assert db.restart.max_restarts == 3 and db.runtime_dirs[0].mode == 0o2755
    assert db.critical is False and db.stop_timeout == 3.0
    assert table.service("web").depends_on == ("db",)
    assert table.service("web").ready.argv == ("web", "--ping")
    assert dict(table.site) == {"db_port": "5000", "hostname": "edge"}
    assert table.image == "tiny"


def test_table_text_is_deterministic_with_sorted_keys():
    first, second = service_table_text(_recipe()), service_table_text(_recipe())
    assert first == second
    data = ast.literal_eval(first)
    assert data == service_table(_recipe())
    body = first[first.index("{"):]
    assert body.index("'image'") < body.index("'services'") < body.index("'site'")


def test_edge_lite_table_passes_the_init_validation():
    recipe = load_recipe(REPO / "recipes" / "edge-lite.yaml")
    table = parse_table(service_table_text(recipe))
    assert [s.name for s in table.services] == [s.name for s in recipe.services]
    targets = [t.target for s in table.services for t in s.templates]
    assert targets and all(t.startswith(CONFIG_ROOT + "/") for t in targets)
    assert CONFIG_ROOT + "/var/www/html/index.html" in targets   # nginx's index page
