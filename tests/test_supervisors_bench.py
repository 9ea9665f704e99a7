"""The peers' configurations bench/supervisors.py generates (bench/supervisor_configs.py), from a
hand-made service table; the bench itself (containers, minutes) is not run here."""

from __future__ import annotations

import configparser
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import supervisor_configs as gen

from http_server import serving
from monoimage.init.table import Table, parse_table
from timing import scaled


def hand_made(root: str = "/srv") -> Table:
    return parse_table(repr({"version": 1, "image": "t", "site": {"port": "8080"}, "services": [
        {"name": "db", "argv": ["db-server", "--listen", "100%"], "user": "nobody",
         "ready": {"kind": "tcp", "port": 5432}, "stop_timeout": 7.5,
         "runtime_dirs": [{"path": f"{root}/run/db", "mode": 0o750}],
         "templates": [{"target": f"{root}/etc/db.conf", "content": "port {{ port }}\n",
                        "mode": 0o640}]},
        {"name": "web", "argv": ["nginx", "-g", "daemon off;"], "depends_on": ["db"],
         "env": {"MODE": "edge site"}, "workdir": "/var/www", "stop_signal": "SIGQUIT",
         "ready": {"kind": "file", "path": "/run/web.pid"}},
        {"name": "once", "argv": ["true"], "restart": {"policy": "never"}, "critical": False},
    ]}))


def test_supervisord_conf_keeps_argv_user_order_signals_and_policies() -> None:
    parser = configparser.RawConfigParser()
    parser.read_string(gen.supervisord_conf(hand_made()))
    assert parser.get("supervisord", "nodaemon") == "true"
    db, web, once = (parser[f"program:{n}"] for n in ("db", "web", "once"))
    # supervisord expands %(...)s: a literal % is doubled, and shlex gives the argv back
    assert shlex.split(db["command"].replace("%%", "%")) == ["db-server", "--listen", "100%"]
    assert shlex.split(web["command"]) == ["nginx", "-g", "daemon off;"]
    assert (db["user"], web["user"]) == ("nobody", "root")
    assert int(db["priority"]) < int(web["priority"]) < int(once["priority"])
    assert (db["stopsignal"], web["stopsignal"]) == ("TERM", "QUIT")
    assert db["stopwaitsecs"] == "7.5"
    assert (db["autorestart"], once["autorestart"]) == ("true", "false")
    assert web["environment"] == 'MODE="edge site"' and web["directory"] == "/var/www"


def test_s6_dirs_wait_for_dependencies_and_notify_readiness() -> None:
    files = gen.s6_dirs(hand_made(), "/run/bench-s6")
    assert files["s6/db/notification-fd"] == ("3\n", 0o644)
    assert "/dev/tcp/127.0.0.1/5432" in files["s6/db/data/check"][0]
    assert "test -e /run/web.pid" in files["s6/web/data/check"][0]
    assert "s6-svwait -U /run/bench-s6/db" in files["s6/web/run"][0]
    assert "s6-svwait" not in files["s6/db/run"][0]
    assert "s6-setuidgid nobody db-server --listen 100%" in files["s6/db/run"][0]
    assert files["s6/web/down-signal"][0] == "SIGQUIT\n"
    assert files["s6/db/timeout-kill"][0] == "7500\n"
    assert "exit 125" in files["s6/once/finish"][0]          # never: no restart
    assert "exit 125" not in files["s6/db/finish"][0]
    assert "s6/once/notification-fd" not in files            # no probe, no readiness
    assert files["s6/once/run"][1] == 0o755


def test_runit_dirs_switch_user_and_send_the_stop_signal() -> None:
    files = gen.runit_dirs(hand_made())
    assert "exec chpst -u nobody db-server --listen 100%" in files["runit/db/run"][0]
    assert "cd /var/www" in files["runit/web/run"][0]
    assert "export MODE='edge site'" in files["runit/web/run"][0]
    assert "kill -QUIT" in files["runit/web/control/t"][0]
    assert "runit/db/control/t" not in files                  # SIGTERM is runsv's own
    assert 'sv down "$PWD"' in files["runit/once/finish"][0]


def test_every_generated_script_is_valid_shell() -> None:
    table = hand_made()
    scripts = {path: text for path, (text, mode) in
               gen.bench_tree(table, lambda name: "1", "/bench/x", "{}").items() if mode == 0o755}
    assert {"prepare.sh", "start.sh", "s6/web/run", "runit/web/run"} <= set(scripts)
    for path, text in scripts.items():
        shell = "bash" if text.startswith("#!/bin/bash") else "sh"
        done = subprocess.run([shell, "-n"], input=text, text=True, capture_output=True,
                              check=False)
        assert done.returncode == 0, f"{path}: {done.stderr}"


def test_shell_script_forwards_each_stop_signal_and_exits_with_the_first_exit() -> None:
    script = gen.shell_script(hand_made(), "/bench/x")
    trap = next(line for line in script.splitlines() if line.startswith("trap "))
    assert trap.index("kill -TERM $p2") < trap.index("kill -QUIT $p1") < trap.index(
        "kill -TERM $p0")                                     # reverse dependency order
    assert "setpriv --reuid=nobody" in script and "wait -n" in script


def test_prepare_script_makes_the_runtime_dirs_and_installs_rendered_templates(
        tmp_path: Path) -> None:
    table = hand_made(str(tmp_path / "root"))
    bench = tmp_path / "bench"
    for rel, (text, mode) in gen.rendered_templates(table, {"port": "8080"}.get).items():
        (bench / rel).parent.mkdir(parents=True, exist_ok=True)
        (bench / rel).write_text(text)
        (bench / rel).chmod(mode)
    script = tmp_path / "prepare.sh"
    script.write_text(gen.prepare_script(table, str(bench)))
    subprocess.run(["sh", str(script)], check=True)
    config = tmp_path / "root" / "etc" / "db.conf"
    assert config.read_text() == "port 8080\n"
    assert config.stat().st_mode & 0o7777 == 0o640
    assert (tmp_path / "root" / "run" / "db").stat().st_mode & 0o7777 == 0o750


def test_entrypoints_name_every_supervisor() -> None:
    entries = gen.entrypoints("/bench/seven")
    assert list(entries) == ["monoimage-init", "supervisord", "s6", "runit", "tini"]
    assert entries["monoimage-init"][-1] == "/bench/seven/services.py"
    assert entries["tini"][:2] == ["/usr/bin/tini", "--"]


@pytest.mark.parametrize(("path", "status", "passes"), [
    ("/", 200, True), ("/missing", 200, False), ("/missing", 404, True)])
def test_the_s6_check_of_an_http_probe_sends_the_inits_get(path: str, status: int,
                                                           passes: bool) -> None:
    """The s6 peer's readiness check for an http probe, run by bash against a real server."""
    with serving({"/": 200}) as port:
        table = parse_table(repr({"version": 1, "image": "t", "services": [
            {"name": "web", "argv": ["nginx"], "ready": {
                "kind": "http", "port": port, "path": path,
                "status": status}}]}))
        files = gen.bench_tree(table, lambda name: None, "/bench/x", "{}")
        check, mode = files["s6/web/data/check"]
        assert mode == 0o755
        done = subprocess.run(["sh", "-c", check], check=False, timeout=scaled(10))
        assert (done.returncode == 0) is passes
