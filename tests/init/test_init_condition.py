"""A service's condition (paths the host must provide, systemd's ConditionPathExists=): on a
host without them the init never configures nor starts it, says why, and counts it as
finished for its dependents and for health; with them it runs as any other."""

from init_harness import init_lines, service, svc, table
from test_init_status import cli


def test_a_service_whose_condition_fails_is_skipped_and_said_so(start_init, tmp_path):
    events = tmp_path / "events"
    missing = str(tmp_path / "no-iscsi-transport")
    made = tmp_path / "made-by-its-command"
    run = start_init(table(
        service("iscsid", svc("iscsid", events=events), condition=[missing],
                commands=[{"argv": ["touch", str(made)]}]),
        service("nova", svc("nova", events=events), depends_on=["iscsid"]),
    ))
    run.wait_state("nova", "ready")
    status = run.wait_state("iscsid", "skipped")
    assert status["last_exit"] == f"skipped: {missing} does not exist on this host"
    health = cli("health", "--socket", str(run.socket))
    assert (health.returncode, health.stdout) == (0, "healthy\n")
    assert run.stop() == 0
    assert f"iscsid skipped: its condition {missing} does not exist on this host" in \
        init_lines(run.log())
    assert not [e for e in run.events() if e.startswith("iscsid")]
    assert not made.exists(), "a skipped service is not configured either"


def test_a_service_whose_condition_holds_runs(start_init, tmp_path):
    events = tmp_path / "events"
    present = tmp_path / "transport"
    present.mkdir()
    run = start_init(table(service("iscsid", svc("iscsid", events=events),
                                   condition=[str(present)])))
    run.wait_state("iscsid", "ready")
    run.wait_event("iscsid start")
    assert run.stop() == 0
