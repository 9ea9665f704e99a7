"""PID 1 duties under a real PID namespace: reaping, signal forwarding, ordered stop."""

import signal
import time

import pytest
from init_harness import children, service, svc, table


def test_double_forked_orphan_is_reaped_by_init(start_init, tmp_path):
    events = tmp_path / "events"
    run = start_init(table(service("daemon", svc("daemon", "--orphan", events=events))))
    orphan = run.wait_event("daemon orphan")[0]
    assert orphan.endswith("parent 1"), "the grandchild was re-parented to our init (PID 1)"
    time.sleep(0.8)  # the orphan exits 0.2 s after reporting
    zombies = [child for child in children(run.init_pid) if child[1] == "Z"]
    assert zombies == []
    assert run.stop() == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_goes_in_reverse_dependency_order_and_exits_0(start_init, tmp_path, signum):
    events = tmp_path / "events"
    run = start_init(table(
        service("a", svc("a", "--stop-delay", "0.2", events=events)),
        service("b", svc("b", "--stop-delay", "0.2", events=events), depends_on=["a"]),
        service("c", svc("c", "--stop-delay", "0.2", events=events), depends_on=["b"]),
    ))
    run.wait_event("c ready")
    run.send(signum)
    assert run.wait() == 0
    assert [e for e in run.events() if e.endswith(" stop")] == ["c stop", "b stop", "a stop"]
    log = run.log()
    steps = ["stopping c", "c stopped", "stopping b", "b stopped", "stopping a", "a stopped",
             "exit 0"]
    positions = [log.index(f"monoimage-init | {step}") for step in steps]
    assert positions == sorted(positions), log


def test_service_ignoring_its_stop_signal_is_killed_after_stop_timeout(start_init, tmp_path):
    events = tmp_path / "events"
    run = start_init(table(service("stubborn", svc("stubborn", "--ignore-term", events=events),
                                   stop_timeout=0.5)))
    run.wait_event("stubborn ready")
    began = time.monotonic()
    assert run.stop() == 0
    elapsed = time.monotonic() - began
    assert 0.5 <= elapsed < 3.0
    log = run.log()
    assert "stubborn still running 0.5 s after SIGTERM; sending SIGKILL" in log
    assert "stubborn stopped (killed by SIGKILL)" in log


def test_leftovers_of_a_service_session_die_with_its_main_process(start_init, tmp_path):
    events = tmp_path / "events"
    pid_file = tmp_path / "leftover.pid"
    run = start_init(table(
        service("base", svc("base", "--probe-pid-file", str(pid_file), events=events)),
        service("web", svc("web", "--leftover", events=events), depends_on=["base"]),
    ))
    leftover = run.wait_event("web leftover")[0].split()[-1]
    pid_file.write_text(leftover)
    run.wait_event("base ready")
    assert run.stop() == 0
    # base is stopped after web: by then web's child (same session, ignoring SIGTERM) is gone
    assert f"base sees {leftover} gone" in run.events()


def test_stop_during_the_configure_phase_exits_0_at_once(start_init, tmp_path):
    events = tmp_path / "events"
    run = start_init(table(service(
        "slow", svc("slow", events=events),
        commands=[{"argv": ["sleep", "30"], "user": "root"}])))
    run.wait_log("configuring 1 service")
    time.sleep(0.3)
    began = time.monotonic()
    assert run.stop() == 0
    assert time.monotonic() - began < 2.0
    assert "stop requested during the configure phase" in run.log()
    assert run.events() == []
