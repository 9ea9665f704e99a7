"""Run phase: readiness before dependents, each probe kind, identity, environment, logs."""

import socket
import time

import pytest
from init_harness import PY, init_lines, service, svc, table


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


CONNECTED = "Connected to AMQP server on 127.0.0.1:5672 via [amqp] client with port 40610."


@pytest.mark.parametrize("kind", ["tcp", "unix", "file", "command", "log"])
def test_dependent_starts_only_after_the_dependency_probe_passes(start_init, tmp_path, kind):
    events = tmp_path / "events"
    port = free_port()
    path = str(tmp_path / "ready-here")
    ready_as = {"tcp": ["--tcp", str(port)], "unix": ["--unix", path],
                "file": ["--touch", path], "command": ["--touch", path],
                # oslo.messaging's line, on stderr after an earlier line that does not hold it
                "log": ["--say", "Connecting to AMQP server on 127.0.0.1:5672",
                        "--ready-line", CONNECTED]}[kind]
    exists = f"import os, sys; sys.exit(not os.path.exists({path!r}))"
    probe = {"tcp": {"kind": "tcp", "port": port}, "unix": {"kind": "unix", "path": path},
             "file": {"kind": "file", "path": path},
             "command": {"kind": "command", "argv": [PY, "-c", exists]},
             "log": {"kind": "log", "text": "Connected to AMQP server on"}}[kind]
    probe.update(timeout=3600.0, interval=0.05)
    run = start_init(table(
        service("db", svc("db", "--delay", "0.4", *ready_as, events=events), ready=probe),
        service("app", svc("app", events=events), depends_on=["db"]),
    ))
    run.wait_event("app start")
    names = [" ".join(event.split()[:2]) for event in run.events()]
    assert names.index("db ready") < names.index("app start")
    status = run.wait_state("db", "ready")
    assert int(status["ready_after_ms"]) >= 350
    assert f"db is ready ({kind} probe, {status['ready_after_ms']} ms)" in init_lines(run.log())
    assert run.stop() == 0


def test_service_not_ready_within_its_timeout_fails_the_boot(start_init, tmp_path):
    events = tmp_path / "events"
    run = start_init(table(
        service("mute", svc("mute", events=events), restart={"policy": "never"},
                ready={"kind": "file", "path": str(tmp_path / "never"), "timeout": 0.4}),
        service("after", svc("after", events=events), depends_on=["mute"]),
    ))
    assert run.wait() == 4
    lines = init_lines(run.log())
    start = lines.index("mute was not ready within 0.4 s; killing it")
    assert lines[start:start + 3] == [
        "mute was not ready within 0.4 s; killing it", "mute exited: not ready within 0.4 s",
        "critical service mute failed: not ready within 0.4 s; restart policy is never"]
    assert not [e for e in run.events() if e.startswith("after")]


def test_service_runs_as_its_user_with_its_groups_env_and_workdir(start_init, tmp_path):
    show = ("import os; print('ids', os.getuid(), os.getgid(), sorted(os.getgroups()), "
            "os.getcwd(), os.environ.get('HOME'), os.environ.get('FOO'), "
            "os.environ.get('MONOIMAGE_SITE_TOKEN'), os.environ.get('FROM_INIT'), flush=True); "
            "import time; time.sleep(60)")
    run = start_init(table(
        service("unpriv", [PY, "-c", show], user="nobody", env={"FOO": "bar"}, workdir="/usr"),
        service("grouped", [PY, "-c", show], user="nobody", group="daemon"),
    ), env={"MONOIMAGE_SITE_TOKEN": "s3cret", "FROM_INIT": "yes"})
    run.wait_log(r"^grouped \| ids")
    run.wait_log(r"^unpriv \| ids")  # the two start together: either may print first
    lines = run.log().splitlines()
    assert "unpriv | ids 65534 65534 [65534] /usr /nonexistent bar None yes" in lines
    assert "grouped | ids 65534 1 [1] / /nonexistent None None yes" in lines
    assert run.stop() == 0


def test_service_output_is_prefixed_line_by_line_on_the_right_stream(start_init, tmp_path):
    long_line = "x" * 10000
    run = start_init(table(
        service("chatty", svc("chatty", "--say", "hello", "--say", long_line, "--err", "oops",
                              "--partial", "no newline yet")),
        service("brief", svc("brief", "--partial", "last words", "--exit", "0"),
                restart={"policy": "on-failure"}),
    ), split_output=True)
    run.wait_log(r"^chatty \| no newline yet$")  # flushed PARTIAL_AFTER after it came
    run.wait_log(r"^brief \| last words$")                   # flushed at end of stream
    out = run.stdout_path.read_text()
    err = run.stderr_path.read_text()
    assert "chatty | hello" in out.splitlines()
    assert f"chatty | {'x' * 8192}\nchatty | {'x' * (10000 - 8192)}\n" in out
    assert "chatty | oops" in err.splitlines() and "oops" not in out
    assert all(line.startswith("monoimage-init | ") for line in err.splitlines()
               if not line.startswith("chatty | "))
    assert "monoimage-init" not in out
    assert run.stop() == 0


def test_program_that_cannot_be_executed_is_reported_and_restarted_by_policy(start_init):
    run = start_init(table(service("ghost", ["/nonexistent/ghostd"],
                                   restart={"policy": "always", "backoff_initial": 0.05,
                                            "max_restarts": 1, "window": 3600.0})))
    assert run.wait() == 4
    lines = init_lines(run.log())
    cannot = ("ghost: cannot start /nonexistent/ghostd: [Errno 2] No such file or directory: "
              "'/nonexistent/ghostd'")
    assert lines[lines.index(cannot):lines.index(cannot) + 4] == [
        cannot, "ghost restarts in 0.05 s (restart policy is always)", cannot,
        ("critical service ghost failed: cannot start; exited 2 times within 3600 s "
         "(max_restarts 1)")]


def test_ready_after_counts_from_start(start_init, tmp_path):
    launched = time.time()
    run = start_init(table(service("quick", svc("quick"))))
    status = run.wait_state("quick", "ready")
    assert int(status["ready_after_ms"]) == 0  # probe "none": ready once started
    assert launched <= float(status["ready_since"]) <= time.time()
    assert run.stop() == 0
