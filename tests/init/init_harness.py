"""Runs monoimage-init for real as PID 1 of a fresh PID namespace
(`unshare --pid --fork --mount-proc`), with every path it uses under a test's tmp_path.

Tests wait for events (a log line, a service's event, a state), never for a time; every wait of
the harness is bounded by a timeout that `MONOIMAGE_TEST_TIME_FACTOR` (a float, default 1)
multiplies, for slow or busy machines. A timeout is how long a test gives up after, never a
claim about speed.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from monoimage.init.control import request_status
from timing import scaled

PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
SVCPROG = str(Path(__file__).with_name("svcprog.py"))
SRC = str(Path(__file__).resolve().parents[2] / "src")


def svc(name: str, *args: str, events: Path | None = None) -> list[str]:
    """argv of a svcprog.py service called `name`."""
    return [PY, SVCPROG, "--name", name, *(["--events", str(events)] if events else []), *args]


def service(name: str, argv: list[str], **fields: Any) -> dict[str, Any]:
    """A service table entry with test-friendly defaults (short timeouts, quick restarts)."""
    entry: dict[str, Any] = {
        "name": name, "argv": argv, "stop_timeout": 30.0,
        "restart": {"policy": "always", "backoff_initial": 0.1, "backoff_max": 0.4,
                    "max_restarts": 3, "window": 3600.0},
    }
    entry.update(fields)
    return entry


def free_port() -> int:
    """A TCP port nobody listens on right now, on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def table(*services: dict[str, Any], site: dict[str, str] | None = None) -> dict[str, Any]:
    return {"version": 1, "image": "test", "site": site or {}, "services": list(services)}


def children(pid: int) -> list[tuple[int, str, str]]:
    """(pid, state, comm) of every process whose parent is `pid` (host view of /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            found.append((int(entry), fields[0], comm))
    return found


def init_lines(log: str) -> list[str]:
    """init's own lines of a log, without their `monoimage-init | ` prefix."""
    prefix = "monoimage-init | "
    return [line[len(prefix):] for line in log.splitlines() if line.startswith(prefix)]


def proc_status(pid: int) -> dict[str, str]:
    """/proc/PID/status as a dict ({} once the pid is gone, zombies included until reaped)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            return dict(line.rstrip("\n").partition(":\t")[::2] for line in handle)
    except OSError:
        return {}


def host_pid(parent: int, ns_pid: int) -> int | None:
    """The host pid of the child of `parent` whose pid in its own namespace is `ns_pid`."""
    for pid, _, _ in children(parent):
        if proc_status(pid).get("NSpid", "").split()[-1:] == [str(ns_pid)]:
            return pid
    return None


def start_time(pid: int) -> int | None:
    """The start time of `pid` (clock ticks since boot), None once it is gone: with the pid,
    it names one process even if the number is reused."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def wait_until(predicate: Any, timeout: float, what: Any) -> Any:
    """Poll `predicate` until it returns something true, for at most `scaled(timeout)`
    seconds; `what` (text, or a callable giving it at failure time) says what was awaited."""
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for "
                                 f"{what() if callable(what) else what}")
        time.sleep(0.02)


class InitRun:
    """One monoimage-init in its own PID namespace, logs captured to files."""

    def __init__(self, directory: Path, table_data: dict[str, Any],
                 env: dict[str, str] | None = None, split_output: bool = False,
                 command: list[str] | None = None, prefix: list[str] | None = None,
                 output_fd: int | None = None, table_fifo: bool = False) -> None:
        self.dir = directory
        self.table_path = directory / "services.py"
        self.socket = directory / "run" / "init.sock"
        self.secrets = directory / "secrets"
        self.events_path = directory / "events"
        self.stdout_path = directory / "init.out"
        self.stderr_path = directory / ("init.err" if split_output else "init.out")
        if table_fifo:   # the test writes the table itself, when it likes
            os.mkfifo(self.table_path)
        else:
            self.table_path.write_text(repr(table_data))
        self.secrets.mkdir(exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MONOIMAGE_")}
        self.env.update(env or {})
        self.command = command or [sys.executable, "-m", "monoimage.init"]
        self.prefix = prefix or []
        self.output_fd = output_fd   # init's stdout and stderr, instead of the log files
        self.process: subprocess.Popen[bytes] | None = None
        self._init_pid: int | None = None

    def start(self) -> "InitRun":
        argv = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", *self.prefix,
                *self.command, "run", "--table", str(self.table_path),
                "--socket", str(self.socket), "--secrets-dir", str(self.secrets)]
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        if self.output_fd is not None:
            out, err = os.dup(self.output_fd), os.dup(self.output_fd)
        else:
            out = os.open(self.stdout_path, flags, 0o644)
            err = os.open(self.stderr_path, flags, 0o644)
        try:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=err, env=self.env)
        finally:
            os.close(out)
            os.close(err)
        return self

    @property
    def init_pid(self) -> int:
        """Host pid of the namespace's PID 1 (the init under test)."""
        if self._init_pid is None:
            assert self.process is not None
            unshare = self.process.pid
            found = wait_until(lambda: children(unshare), 10.0, "unshare's child")
            self._init_pid = found[0][0]
        return self._init_pid

    def send(self, signum: int) -> None:
        os.kill(self.init_pid, signum)

    def wait(self, timeout: float = 20.0) -> int:
        """init's exit code, once it has exited (the wait is scaled)."""
        assert self.process is not None
        return self.process.wait(scaled(timeout))

    def stop(self, timeout: float = 20.0) -> int:
        self.send(signal.SIGTERM)
        return self.wait(timeout)

    def log(self) -> str:
        if self.output_fd is not None:
            return "(init's output goes to a pipe the test holds)"
        text = self.stdout_path.read_text(errors="replace")
        if self.stderr_path != self.stdout_path and self.stderr_path.exists():
            text += self.stderr_path.read_text(errors="replace")
        return text

    def wait_log(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        match: re.Match[str] = wait_until(
            lambda: re.search(pattern, self.log(), re.MULTILINE), timeout,
            lambda: f"{pattern!r} in the log:\n{self.log()}")
        return match

    def events(self) -> list[str]:
        if not self.events_path.exists():
            return []
        return self.events_path.read_text().splitlines()

    def wait_event(self, line: str, timeout: float = 10.0) -> list[str]:
        return wait_until(lambda: [e for e in self.events() if e.startswith(line)], timeout,
                          lambda: f"event {line!r}; events: {self.events()}; log:\n{self.log()}")

    def records(self) -> list[tuple[str, dict[str, str]]]:
        """Every record of a status answer (waits for the socket)."""
        wait_until(self.socket.exists, 10.0, lambda: f"the status socket; log:\n{self.log()}")
        return request_status(str(self.socket), timeout=scaled(5.0))

    def status(self) -> dict[str, dict[str, str]]:
        """Service records by name, from the status socket (waits for the socket)."""
        return {fields["name"]: fields for kind, fields in self.records() if kind == "service"}

    def wait_state(self, name: str, state: str, timeout: float = 10.0) -> dict[str, str]:
        return wait_until(lambda: (s := self.status().get(name)) and s["state"] == state and s,
                          timeout, lambda: f"{name} to be {state}; log:\n{self.log()}")

    def kill(self) -> None:
        """Teardown: whatever happened, nothing of this run survives."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.kill(self.init_pid, signal.SIGKILL)
            except (ProcessLookupError, AssertionError):
                pass
            self.process.kill()
            self.process.wait(scaled(10.0))
