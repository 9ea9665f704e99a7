"""The service table reader: defaults, and one located message per mistake."""

import signal

import pytest
from init_harness import service, table

from monoimage.init.table import TableError, parse_table


def parse(data: object) -> object:
    return parse_table(repr(data), "services.py")


def test_minimal_entry_gets_the_documented_defaults():
    parsed = parse(table({"name": "redis", "argv": ["redis-server"]}))
    redis = parsed.service("redis")
    assert redis.user == "root" and redis.group is None and redis.workdir == "/"
    assert redis.ready.kind == "none" and redis.restart.policy == "always"
    assert (redis.stop_signal, redis.reload_signal) == (signal.SIGTERM, signal.SIGHUP)
    assert redis.critical is True and redis.stop_timeout == 10.0


def test_the_issue_example_is_valid():
    text = '''{
      "version": 1, "image": "edge-lite", "site": {"hostname": "edge", "mqtt_port": "1883"},
      "services": [
        {"name": "chrony", "argv": ["chronyd", "-d", "-x"]},
        {
          "name": "mosquitto",
          "argv": ["mosquitto", "-c", "/etc/mosquitto/mosquitto.conf"],
          "user": "mosquitto", "group": None,
          "env": {"FOO": "bar"}, "workdir": "/",
          "depends_on": ["chrony"],
          "runtime_dirs": [{"path": "/run/mosquitto", "owner": "mosquitto", "group": None,
                            "mode": 0o755}],
          "templates": [{"target": "/run/monoimage/config/etc/mosquitto/conf.d/edge.conf",
                         "content": "listener {{ mqtt_port }} 0.0.0.0\\n", "mode": 0o644,
                         "owner": "root", "group": None}],
          "commands": [{"argv": ["mosquitto_passwd", "-U", "/etc/x"], "user": "root"}],
          "ready": {"kind": "tcp", "host": "127.0.0.1", "port": 1883, "path": None,
                    "argv": None, "timeout": 30.0, "interval": 0.1},
          "restart": {"policy": "always", "backoff_initial": 0.5, "backoff_max": 30.0,
                      "max_restarts": 5, "window": 60.0},
          "stop_signal": "SIGTERM", "stop_timeout": 10.0,
          "critical": True,
          "reload_signal": "SIGHUP"
        }
      ]
    }'''
    mosquitto = parse_table(text).service("mosquitto")
    assert mosquitto.ready.port == 1883 and mosquitto.depends_on == ("chrony",)
    assert mosquitto.runtime_dirs[0].mode == 0o755 and mosquitto.env == (("FOO", "bar"),)


@pytest.mark.parametrize(("entry", "message"), [
    ({"ready": {"kind": "tcp"}}, "services[0] (a).ready.port: a tcp probe needs a port"),
    ({"ready": {"kind": "https"}}, ("services[0] (a).ready.kind: expected one of tcp, http, "
                                    "unix, file, command, none, got 'https'")),
    ({"ready": {"kind": "http"}}, "services[0] (a).ready.port: an http probe needs a port"),
    ({"ready": {"kind": "unix"}}, "services[0] (a).ready.path: a unix probe needs a path"),
    ({"ready": {"kind": "command"}}, "services[0] (a).ready.argv: a command probe needs an argv"),
    ({"stop_signal": "SIGNOPE"}, "services[0] (a).stop_signal: 'SIGNOPE' is not a signal name"),
    ({"stop_timeout": 0}, "services[0] (a).stop_timeout: expected a number > 0, got 0"),
    ({"critical": 1}, "services[0] (a).critical: expected True or False, got 1"),
    ({"argv": []}, "services[0] (a).argv: expected a non-empty argument list"),
    ({"workdir": "srv"}, "services[0] (a).workdir: expected an absolute path, got 'srv'"),
    ({"depends_on": ["b"]}, ("services[0] (a).depends_on: 'b' is not a service listed "
                             "before 'a' (the table must be in dependency order)")),
    ({"runtime_dirs": [{"path": "/run/a", "mode": "755"}]},
     "services[0] (a).runtime_dirs[0].mode: expected a file mode such as 0o644, got '755'"),
    ({"templates": [{"target": "/x"}]}, "services[0] (a).templates[0]: missing key(s) content"),
    ({"restart": {"max_restarts": -1}},
     "services[0] (a).restart.max_restarts: expected a count >= 0, got -1"),
    ({"readiness": {}}, "services[0] (a): unknown key(s) readiness"),
    ({"name": "a b"}, "services[0] (a b).name: 'a b' is not a service name"),
])
def test_mistakes_are_located(entry, message):
    with pytest.raises(TableError) as error:
        parse(table({**service("a", ["true"]), **entry}))
    assert str(error.value).startswith(f"services.py: {message}")


def test_duplicate_names_and_bad_version_and_non_literals_are_refused():
    with pytest.raises(TableError, match=r"services\[1\] \(a\).name: 'a' is listed twice"):
        parse(table(service("a", ["true"]), service("a", ["true"])))
    with pytest.raises(TableError, match="version: expected 1, got 2"):
        parse({"version": 2, "services": []})
    with pytest.raises(TableError, match=r"services.py: not a Python literal: malformed node or "
                       r"string on line 1: a Call expression"):
        parse_table("{'version': 1, 'services': [__import__('os')]}", "services.py")
    with pytest.raises(TableError, match=r"site: 'mqtt-port' is not a valid name"):
        parse({"version": 1, "site": {"mqtt-port": "1"}, "services": []})
