"""SIGHUP: templates rendered again (a rotated secret shows up), then reload signals."""

import signal

from init_harness import service, svc, table


def test_sighup_renders_again_then_signals_each_service(start_init, tmp_path):
    events = tmp_path / "events"
    target = tmp_path / "conf" / "app.conf"
    other = tmp_path / "conf" / "other.conf"
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text("one\n")
    run = start_init(table(
        service("app", svc("app", "--hup-read", str(target), events=events),
                templates=[{"target": str(target), "content": "token={{ token }}"}]),
        service("quiet", svc("quiet", events=events), reload_signal=None,
                templates=[{"target": str(other), "content": "token={{ token }}"}]),
    ))
    run.wait_event("quiet ready")
    assert target.read_text() == "token=one"
    (tmp_path / "secrets" / "token").write_text("two\n")
    run.send(signal.SIGHUP)
    run.wait_event("app hup token=two")
    assert other.read_text() == "token=two", "re-rendered even without a reload signal"
    assert not [e for e in run.events() if e.startswith("quiet hup")]
    assert run.status()["app"]["state"] == "ready"
    assert run.stop() == 0


def test_sighup_with_a_broken_template_keeps_the_service_and_its_old_config(start_init,
                                                                            tmp_path):
    events = tmp_path / "events"
    target = tmp_path / "conf" / "app.conf"
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text("one")
    run = start_init(table(service("app", svc("app", events=events),
                                   templates=[{"target": str(target),
                                               "content": "token={{ token }}"}])))
    run.wait_event("app ready")
    (tmp_path / "secrets" / "token").unlink()
    run.send(signal.SIGHUP)
    run.wait_log("app keeps its current configuration")
    assert target.read_text() == "token=one"
    assert not [e for e in run.events() if e.startswith("app hup")]
    assert run.stop() == 0
