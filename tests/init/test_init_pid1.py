"""PID 1 duties under a real PID namespace: reaping, signal forwarding, ordered stop, and no
SIGTERM lost however early it comes."""

import errno
import os
import signal
import time

import pytest
from init_harness import (
    children,
    host_pid,
    init_lines,
    proc_status,
    scaled,
    service,
    start_time,
    svc,
    table,
    wait_until,
)


def test_double_forked_orphan_is_reaped_by_init(start_init, tmp_path):
    events = tmp_path / "events"
    release = tmp_path / "release-orphan"
    run = start_init(table(service("daemon", svc("daemon", "--orphan", str(release),
                                                 events=events))))
    _, _, ns_pid, _, parent = run.wait_event("daemon orphan")[0].split()
    assert parent == "1", "the grandchild was re-parented to our init (PID 1)"
    orphan = wait_until(lambda: host_pid(run.init_pid, int(ns_pid)), 10.0,
                        f"namespace pid {ns_pid} among init's children")
    born = start_time(orphan)
    assert born is not None and not proc_status(orphan)["State"].startswith("Z")
    release.touch()  # the orphan exits now; only its parent, init, can reap it
    wait_until(lambda: start_time(orphan) != born, 10.0,
               lambda: f"the orphan's /proc entry to go: {proc_status(orphan)}")
    assert [child for child in children(run.init_pid) if child[1] == "Z"] == []
    assert run.stop() == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_goes_in_reverse_dependency_order_and_exits_0(start_init, tmp_path, signum):
    events = tmp_path / "events"
    run = start_init(table(
        service("a", svc("a", "--stop-delay", "0.2", events=events)),
        service("b", svc("b", "--stop-delay", "0.2", events=events), depends_on=["a"]),
        service("c", svc("c", "--stop-delay", "0.2", events=events), depends_on=["b"]),
    ))
    for name in ("a", "b", "c"):   # each has its SIGTERM handler (init's "ready" is earlier)
        run.wait_event(f"{name} ready")
    run.send(signum)
    assert run.wait() == 0
    assert [e for e in run.events() if e.endswith(" stop")] == ["c stop", "b stop", "a stop"]
    lines = init_lines(run.log())
    name = signal.Signals(signum).name
    assert lines[lines.index(f"stopping every service: received {name}"):] == [
        f"stopping every service: received {name}",
        "stopping c (SIGTERM, timeout 30 s)", "c stopped (exit code 0)",
        "stopping b (SIGTERM, timeout 30 s)", "b stopped (exit code 0)",
        "stopping a (SIGTERM, timeout 30 s)", "a stopped (exit code 0)",
        "exit 0"]


def test_service_ignoring_its_stop_signal_is_killed_after_stop_timeout(start_init, tmp_path):
    events = tmp_path / "events"
    run = start_init(table(service("stubborn", svc("stubborn", "--ignore-term", events=events),
                                   stop_timeout=0.5)))
    run.wait_event("stubborn ready")
    began = time.monotonic()
    assert run.stop() == 0
    assert time.monotonic() - began >= 0.5, "init waited the stop timeout before SIGKILL"
    assert init_lines(run.log())[-5:] == [
        "stopping every service: received SIGTERM",
        "stopping stubborn (SIGTERM, timeout 0.5 s)",
        "stubborn still running 0.5 s after SIGTERM; sending SIGKILL",
        "stubborn stopped (killed by SIGKILL)",
        "exit 0"]


def test_leftovers_of_a_service_session_die_with_its_main_process(start_init, tmp_path):
    events = tmp_path / "events"
    pid_file = tmp_path / "leftover.pid"
    run = start_init(table(
        service("base", svc("base", "--probe-pid-file", str(pid_file), events=events),
                stop_timeout=scaled(5.0)),   # waits for the leftover to go, or is killed
        service("web", svc("web", "--leftover", events=events), depends_on=["base"]),
    ))
    leftover = run.wait_event("web leftover")[0].split()[-1]
    pid_file.write_text(leftover)
    run.wait_event("base ready")
    assert run.stop() == 0
    # base is stopped after web: by then web's child (same session, ignoring SIGTERM) is gone
    assert f"base sees {leftover} gone" in run.events()
    assert "base stopped (exit code 0)" in init_lines(run.log())


def test_stop_during_the_configure_phase_exits_0_at_once(start_init, tmp_path):
    events = tmp_path / "events"
    started = tmp_path / "command-started"
    run = start_init(table(service(
        "slow", svc("slow", events=events),
        commands=[{"argv": ["sh", "-c", f"touch {started} && exec sleep 3600"],
                   "user": "root"}])))
    wait_until(started.exists, 10.0, lambda: f"the command to start; log:\n{run.log()}")
    assert run.stop() == 0, "init did not wait for the command's hour"
    assert init_lines(run.log())[-1] == ("stop requested during the configure phase; "
                                         "nothing was started")
    assert run.events() == []


def test_sigterm_while_init_starts_up_is_kept_until_its_handlers_exist(start_init, tmp_path):
    """The table is a FIFO: init sits in reading it, its imports done and its handlers not
    yet installed, for as long as the test likes. Without the startup mask, PID 1 would
    ignore the SIGTERM sent then, and run its service for ever."""
    events = tmp_path / "events"
    data = table(service("app", svc("app", events=events)))
    run = start_init(data, table_fifo=True)

    def open_writer() -> int | None:
        try:
            return os.open(run.table_path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            assert error.errno == errno.ENXIO, error  # no reader yet
            return None

    writer = wait_until(open_writer, 10.0, lambda: f"init to open its table; log:\n{run.log()}")
    run.send(signal.SIGTERM)
    os.set_blocking(writer, True)
    os.write(writer, repr(data).encode())
    os.close(writer)
    assert run.wait() == 0
    assert init_lines(run.log()) == [
        f"configuring 1 service(s) from {run.table_path}",
        "stop requested during the configure phase; nothing was started"]
    assert run.events() == []


def sigterm_disposition(pid: int) -> str | None:
    """`caught` (a handler is installed) or `blocked` (kept pending) when `pid` would not lose
    a SIGTERM now, else None. Not before it runs Python: unshare(1) itself blocks SIGTERM for a
    moment between its fork and its exec."""
    status = proc_status(pid)
    if status.get("Name") in (None, "unshare"):
        return None
    bit = 1 << (signal.SIGTERM - 1)
    if int(status.get("SigCgt", "0"), 16) & bit:
        return "caught"
    if int(status.get("SigBlk", "0"), 16) & bit:
        return "blocked"
    return None


def test_sigterm_right_after_launch_is_never_lost(start_init, tmp_path):
    """Ten launches, each sent SIGTERM the moment init's process blocks or catches it (the
    earliest a Python program can: the interpreter's own start comes first)."""
    seen = []
    for attempt in range(10):
        directory = tmp_path / f"launch{attempt}"
        directory.mkdir()
        run = start_init(table(service("app", svc("app", events=directory / "events"))),
                         directory=directory)
        pid = run.init_pid
        deadline = time.monotonic() + scaled(30.0)
        while (disposition := sigterm_disposition(pid)) is None:
            assert time.monotonic() < deadline, f"init never blocked SIGTERM; log:\n{run.log()}"
        os.kill(pid, signal.SIGTERM)
        seen.append(disposition)
        assert run.wait() == 0, run.log()
        assert init_lines(run.log())[-1] in (
            "stop requested during the configure phase; nothing was started", "exit 0")
    assert "blocked" in seen, f"no SIGTERM came before init's handlers: {seen}"
