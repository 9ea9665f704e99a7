"""sd_notify: init tells the service manager STATUS= as services come up, READY=1 only once every
service is ready (skipped ones count as done), STOPPING=1 on stop; to a real AF_UNIX datagram
socket the test binds (a path, or an abstract address), as systemd's would be."""

import secrets
import signal

from init_harness import PY, service, svc, table
from notify_socket import NotifySocket

from monoimage.init.notify import Notifier

# A service that writes what it sees of NOTIFY_SOCKET to $OUT, then stays up.
ENV_CHECK = ("import os, time; open(os.environ['OUT'], 'w')"
             ".write(os.environ.get('NOTIFY_SOCKET', 'unset')); time.sleep(3600)")


def test_status_lines_then_ready_after_the_last_service_then_stopping(start_init, tmp_path):
    notify = NotifySocket(tmp_path / "notify.sock")
    gate = tmp_path / "gate"
    env_seen = tmp_path / "env-seen"
    run = start_init(table(
        service("fast", svc("fast")),
        service("absent", svc("absent"), condition=[str(tmp_path / "no-such-device")]),
        service("gated", svc("gated"),  # ready when the test creates the file
                ready={"kind": "file", "path": str(gate), "timeout": 3600.0, "interval": 0.05}),
        service("envcheck", [PY, "-c", ENV_CHECK],
                env={"OUT": str(env_seen)},
                ready={"kind": "file", "path": str(env_seen), "interval": 0.05}),
    ), env={"NOTIFY_SOCKET": notify.address})
    run.wait_state("gated", "starting")
    run.wait_state("envcheck", "ready")
    notify.wait_line("STATUS=3/4 ready: fast, absent (skipped), envcheck", log=run.log)
    assert "READY=1" not in notify.lines(), "a service is still starting"
    gate.touch()
    ready_at = notify.wait_line("READY=1", log=run.log)
    status = {name: fields["state"] for name, fields in run.status().items()}
    assert status == {"fast": "ready", "absent": "skipped", "gated": "ready",
                      "envcheck": "ready"}
    lines = notify.lines()
    assert all(line.startswith("STATUS=") for line in lines[:ready_at]), lines
    assert lines[ready_at + 1] == "STATUS=4/4 ready: fast, absent (skipped), gated, envcheck"
    assert lines.count("READY=1") == 1
    assert env_seen.read_text() == "unset", "NOTIFY_SOCKET is init's alone"
    assert "STOPPING=1" not in lines
    run.send(signal.SIGTERM)
    notify.wait_line("STOPPING=1", log=run.log)
    assert run.wait() == 0
    assert notify.lines().count("READY=1") == 1
    assert "cannot notify" not in run.log()
    notify.close()


def test_a_critical_failure_before_ready_sends_stopping_and_never_ready(start_init, tmp_path):
    notify = NotifySocket(f"@monoimage-test-{secrets.token_hex(6)}")   # abstract address
    run = start_init(table(
        service("ok", svc("ok")),
        service("broken", svc("broken", "--exit", "3", "--after", "0.2"),
                ready={"kind": "file", "path": str(tmp_path / "never"), "timeout": 3600.0},
                restart={"policy": "never"}),
    ), env={"NOTIFY_SOCKET": notify.address})
    assert run.wait() == 4
    lines = notify.lines()
    assert "STOPPING=1" in lines and "READY=1" not in lines, lines
    notify.close()


def test_a_notify_socket_that_is_gone_never_fails_the_init(start_init, tmp_path):
    run = start_init(table(service("web", svc("web"))),
                     env={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    run.wait_state("web", "ready")
    assert run.stop() == 0
    log = run.log()
    assert log.count(f"cannot notify the service manager at {tmp_path / 'gone.sock'}: "
                     f"No such file or directory (the services run on regardless)") == 1, log


def test_without_notify_socket_nothing_is_opened():
    notifier = Notifier(None)
    notifier.update([], stopping=False)
    notifier.update([], stopping=True)
    assert notifier.sock is None and notifier.address is None
