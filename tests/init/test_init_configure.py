"""Configure phase: runtime directories, templates from secrets/env/site, one-shot commands,
and one clear message with exit code 3 when any step fails."""

import os
import stat

from init_harness import children, init_lines, service, svc, table, wait_until

from monoimage.init.logs import quote_argv


def test_runtime_dirs_templates_and_commands_are_in_place_before_services(start_init,
                                                                           tmp_path):
    events = tmp_path / "events"
    run_dir = tmp_path / "run" / "mosquitto"
    target = tmp_path / "run" / "config" / "etc" / "edge.conf"
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "password").write_text("from-secret\n")
    template = ("listener {{ mqtt_port }} 0.0.0.0\nuser {{user}}\npassword {{  password }}\n"
                "location / { try_files $uri $uri/ =404; }\n{{ $labels.instance }}\n")
    run = start_init(table(
        service("mosquitto", svc("mosquitto", events=events),
                runtime_dirs=[{"path": str(run_dir), "owner": "nobody", "group": "daemon",
                               "mode": 0o750}],
                templates=[{"target": str(target), "content": template, "mode": 0o640,
                            "owner": "nobody", "group": None}],
                commands=[{"argv": ["id", "-u"], "user": "nobody"},
                          {"argv": ["cat", str(target)], "user": "root"}]),
        site={"mqtt_port": "1883", "user": "site-user", "password": "from-site"},
    ), env={"MONOIMAGE_SITE_USER": "env-user", "MONOIMAGE_SITE_PASSWORD": "from-env"})
    run.wait_event("mosquitto ready")
    info = os.stat(run_dir)
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (65534, 1, 0o750)
    info = os.stat(target)
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (65534, 65534, 0o640)
    assert target.read_text() == ("listener 1883 0.0.0.0\nuser env-user\npassword from-secret\n"
                                  "location / { try_files $uri $uri/ =404; }\n"
                                  "{{ $labels.instance }}\n")
    assert not [p for p in target.parent.iterdir() if p.name != "edge.conf"], "no temp file"
    lines = run.log().splitlines()
    assert "mosquitto | 65534" in lines  # the command ran as nobody; its output is logged
    assert lines.index("mosquitto | user env-user") < lines.index(
        f"monoimage-init | started mosquitto: pid {run.status()['mosquitto']['pid']}, "
        f"user root: {quote_argv(svc('mosquitto', events=events))}")
    assert run.stop() == 0


def test_failing_command_stops_the_boot_naming_service_step_and_output(start_init, tmp_path):
    events = tmp_path / "events"
    run = start_init(table(
        service("first", svc("first", events=events)),
        service("broken", svc("broken", events=events), commands=[
            {"argv": ["sh", "-c", "echo checking config; echo 'boom: bad key' >&2; exit 3"],
             "user": "root"}]),
    ))
    assert run.wait() == 3
    log = run.log()
    assert ("monoimage-init | configure failed: service broken, command sh -c "
            "'echo checking config; echo '\\''boom: bad key'\\'' >&2; exit 3' (as root): "
            "exit code 3; output:\n"
            "monoimage-init | checking config\n"
            "monoimage-init | boom: bad key\n") in log
    assert run.events() == [], "no service starts after a configure failure"


def test_unknown_template_variable_names_service_target_and_variable(start_init, tmp_path):
    target = tmp_path / "out" / "app.conf"
    run = start_init(table(service("app", svc("app"), templates=[
        {"target": str(target), "content": "port {{ port }}\nhost {{ hostname }}\n"}]),
        site={"port": "80"}))
    assert run.wait() == 3
    assert init_lines(run.log())[-1] == (
        f"configure failed: service app, template {target}: no value for "
        f"{{{{ hostname }}}}: give a site default, the environment variable "
        f"MONOIMAGE_SITE_HOSTNAME or the secret file {tmp_path}/secrets/hostname")
    assert not target.exists()


def test_unknown_user_is_a_configure_failure(start_init):
    run = start_init(table(service("app", svc("app"), user="no-such-user")))
    assert run.wait() == 3
    assert init_lines(run.log())[-1] == ("configure failed: service app, user: user "
                                         "'no-such-user' does not exist")


def test_invalid_table_exits_2_before_anything_runs(start_init):
    run = start_init(table(service("app", svc("app"), restart={"policy": "sometimes"})))
    assert run.wait() == 2
    assert init_lines(run.log()) == [
        (f"{run.table_path}: services[0] (app).restart.policy: expected one of always, "
         f"on-failure, never, got 'sometimes'")]


def test_command_leaving_a_background_child_on_its_pipe_lets_the_boot_go_on(start_init,
                                                                           tmp_path):
    events = tmp_path / "events"
    run = start_init(table(service("app", svc("app", events=events), commands=[
        {"argv": ["sh", "-c", "sleep 300 & echo done"], "user": "root"}])))
    run.wait_event("app ready")   # before: init waited for the end of the pipe, 300 s
    lines = run.log().splitlines()
    assert lines.index("app | done") < lines.index(
        f"monoimage-init | started app: pid {run.status()['app']['pid']}, user root: "
        f"{quote_argv(svc('app', events=events))}")
    wait_until(lambda: "sleep" not in [comm for _, _, comm in children(run.init_pid)], 10.0,
               "the command's leftover sleep to be killed and reaped")
    assert run.stop() == 0
