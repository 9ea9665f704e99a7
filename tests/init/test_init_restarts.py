"""Restart policies: backoff, crash loops, critical and non-critical failures."""

from init_harness import init_lines, service, svc, table


def start_times(run, name):
    return [float(e.split()[3]) for e in run.events() if e.startswith(f"{name} start")]


def exit_times(run, name):
    return [float(e.split()[3]) for e in run.events() if e.startswith(f"{name} exit")]


def test_crash_loop_backs_off_then_fails_while_the_rest_keeps_running(start_init, tmp_path):
    events = tmp_path / "events"
    run = start_init(table(
        service("steady", svc("steady", events=events)),
        service("flaky", svc("flaky", "--exit", "1", events=events), critical=False,
                restart={"policy": "always", "backoff_initial": 0.1, "backoff_max": 0.3,
                         "max_restarts": 3, "window": 3600.0}),
    ))
    run.wait_log(r"^monoimage-init \| service flaky failed: exit code 1; exited 4 times within "
                 r"3600 s \(max_restarts 3\) \(not critical: the others keep running\)$")
    starts, exits = start_times(run, "flaky"), exit_times(run, "flaky")
    assert len(starts) == len(exits) == 4
    waits = [start - exit for exit, start in zip(exits, starts[1:])]
    assert [wait >= backoff for wait, backoff in zip(waits, [0.1, 0.2, 0.3])] == [True] * 3
    assert [line for line in init_lines(run.log()) if line.startswith("flaky restarts in")] == [
        "flaky restarts in 0.1 s (restart policy is always)",
        "flaky restarts in 0.2 s (restart policy is always)",
        "flaky restarts in 0.3 s (restart policy is always)"]
    status = run.status()
    assert (status["flaky"]["state"], status["flaky"]["restarts"]) == ("failed", "3")
    assert status["flaky"]["last_exit"] == "exit code 1"
    assert status["steady"]["state"] == "ready"
    assert run.stop() == 0


def test_critical_crash_loop_stops_everything_and_exits_4(start_init, tmp_path):
    events = tmp_path / "events"
    edge_ready = tmp_path / "edge-ready"
    run = start_init(table(   # core starts once edge handles SIGTERM (it touches its file)
        service("edge", svc("edge", "--touch", str(edge_ready), events=events),
                ready={"kind": "file", "path": str(edge_ready), "timeout": 3600.0,
                       "interval": 0.05}),
        service("core", svc("core", "--exit", "2", "--after", "0.1", events=events),
                depends_on=["edge"],
                restart={"policy": "on-failure", "backoff_initial": 0.05, "max_restarts": 1,
                         "window": 3600.0}),
    ))
    assert run.wait() == 4
    lines = init_lines(run.log())
    start = lines.index("critical service core failed: exit code 2; exited 2 times within "
                        "3600 s (max_restarts 1)")
    assert lines[start:] == [
        ("critical service core failed: exit code 2; exited 2 times within 3600 s "
         "(max_restarts 1)"),
        "stopping every service: critical service core failed",
        "stopping edge (SIGTERM, timeout 30 s)", "edge stopped (exit code 0)", "exit 4"]
    assert "edge stop" in run.events()


def test_critical_service_failing_under_policy_never_exits_4(start_init, tmp_path):
    events = tmp_path / "events"
    run = start_init(table(
        service("once", svc("once", "--exit", "3", "--after", "0.2", events=events),
                restart={"policy": "never"}),
    ))
    assert run.wait() == 4
    assert ("critical service once failed: exit code 3; restart policy is never"
            in init_lines(run.log()))
    assert len(start_times(run, "once")) == 1


def test_successful_exit_under_on_failure_is_done_and_healthy(start_init, tmp_path):
    events = tmp_path / "events"
    run = start_init(table(
        service("setup", svc("setup", "--exit", "0", events=events),
                restart={"policy": "on-failure"}),
        service("server", svc("server", events=events), depends_on=["setup"]),
    ))
    run.wait_event("server ready")
    assert run.wait_state("setup", "done")["last_exit"] == "exit code 0"
    assert len(start_times(run, "setup")) == 1
    assert run.stop() == 0


def test_failed_non_critical_dependency_fails_its_critical_dependent(start_init, tmp_path):
    events = tmp_path / "events"
    run = start_init(table(
        service("optional", svc("optional", "--exit", "1", events=events), critical=False,
                restart={"policy": "never"},
                ready={"kind": "file", "path": str(tmp_path / "never"), "timeout": 3600.0}),
        service("needs-it", svc("needs-it", events=events), depends_on=["optional"]),
    ))
    assert run.wait() == 4
    assert ("critical service needs-it failed: its dependency optional failed"
            in init_lines(run.log()))
    assert not [e for e in run.events() if e.startswith("needs-it")]


def test_every_service_done_means_init_exits_0(start_init, tmp_path):
    run = start_init(table(
        service("job", svc("job", "--exit", "0"), restart={"policy": "never"})))
    assert run.wait() == 0
    assert init_lines(run.log())[-2:] == ["every service has finished", "exit 0"]
