"""SIGHUP: templates rendered again (a rotated secret shows up), then reload signals.

What init decided for each service is in its log once it has processed the SIGHUP; that a
service got no SIGHUP shows after the stop: a SIGHUP sent before the SIGTERM is handled before
it (a lower signal number, and the service handles both in arrival order)."""

import signal

from init_harness import init_lines, service, svc, table


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
    run.wait_event("app ready")    # its SIGHUP handler is installed (before: killed by it)
    run.wait_event("quiet ready")
    assert target.read_text() == "token=one"
    (tmp_path / "secrets" / "token").write_text("two\n")
    run.send(signal.SIGHUP)
    run.wait_log(r"^monoimage-init \| reloaded quiet: ")
    run.wait_event("app hup token=two")
    assert other.read_text() == "token=two", "re-rendered even without a reload signal"
    assert run.status()["app"]["state"] == "ready"
    assert run.stop() == 0
    lines = init_lines(run.log())
    start = lines.index("SIGHUP: rendering the templates again and reloading the services")
    assert lines[start:start + 3] == [
        "SIGHUP: rendering the templates again and reloading the services",
        "reloaded app: SIGHUP sent",
        "reloaded quiet: templates only (no reload signal)"]
    quiet = [e.split()[1] for e in run.events() if e.startswith("quiet ")]
    assert quiet == ["start", "ready", "stop"], "quiet never got a SIGHUP"


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
    run.wait_log(r"^monoimage-init \| .*; app keeps its current configuration$")
    assert target.read_text() == "token=one"
    assert run.stop() == 0
    lines = init_lines(run.log())
    start = lines.index("SIGHUP: rendering the templates again and reloading the services")
    assert lines[start + 1] == (
        f"configure failed: service app, template {target}: no value for {{{{ token }}}}: "
        f"give a site default, the environment variable MONOIMAGE_SITE_TOKEN or the secret "
        f"file {tmp_path}/secrets/token; app keeps its current configuration")
    assert lines[start + 2] == "stopping every service: received SIGTERM"
    assert [e.split()[1] for e in run.events()] == ["start", "ready", "stop"], "no SIGHUP"
