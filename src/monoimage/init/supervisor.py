"""The run phase: one single-threaded loop that starts, probes, restarts, reloads and stops the
services, reaps every child (orphans included), copies their output to the container log and
answers status requests.

Why one thread: `os.waitpid(-1)` is the only way to reap orphans, and it would steal the exit
status of any child another thread waits for. So every wait happens here, every pid is matched
to its owner (service or probe), and everything else (signals, output, probe sockets, status
clients) wakes the same `selectors` loop. Nothing here blocks: not even a container log whose
reader stalls (logwriter.py buffers, then drops and counts whole lines).

Start: in table (= dependency) order, a service starts once every dependency is ready (or done).
Stop: a service gets its stop signal (to its process group) once every service that depends on
it has exited, i.e. reverse dependency order; SIGKILL after its stop_timeout. Whatever is left
of a service's process group when its main process exits is SIGKILLed at once. As PID 1, a
final SIGKILL to every remaining process of the namespace leaves nothing behind.
"""

import functools
import os
import select
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from . import exitcodes, policy
from .accounts import Account
from .configure import ConfigureError, describe_exit, render_templates
from .control import Record, StatusEndpoint
from .logs import OutputStream, quote_argv, say
from .logwriter import CONTAINER_LOG, LogWriter
from .probes import CommandAttempt, SocketAttempt, start_attempt
from .render import SiteValues
from .service import (
    BACKOFF,
    DONE,
    FAILED,
    FINISHED,
    READY,
    SATISFIES_DEPENDENTS,
    SKIPPED,
    STARTING,
    STOPPED,
    STOPPING,
    WAITING,
    ServiceRun,
    kill_group,
    signal_name,
    unmet_condition,
)
from .signals import SignalInbox
from .spawn import child_environment, identity_arguments, session_arguments
from .table import Table

if TYPE_CHECKING:
    from .notify import Notifier

MAX_SLEEP = 5.0
FINAL_REAP_TIMEOUT = 5.0


class Supervisor:
    """Runs the services of `table` until asked to stop or a critical service fails."""

    def __init__(self, table: Table, accounts: Mapping[str, Account],
                 environ: Mapping[str, str], values: SiteValues, inbox: SignalInbox,
                 socket_path: str | None) -> None:
        self.table = table
        self.values = values
        self.inbox = inbox
        self.runs = [ServiceRun(spec, accounts[spec.name],
                                child_environment(environ, accounts[spec.name], spec.env))
                     for spec in table.services]
        by_name = {run.name: run for run in self.runs}
        for run in self.runs:
            for dependency in run.spec.depends_on:
                by_name[dependency].dependents.append(run)
        self.by_name = by_name
        self.service_pids: dict[int, ServiceRun] = {}
        self.probe_pids: dict[int, ServiceRun] = {}
        self.streams: list[OutputStream] = []
        self.log_watched: set[LogWriter] = set()
        self.stopping = False
        self.exit_code = exitcodes.OK
        self.started_at = time.monotonic()
        self.selector = selectors.DefaultSelector()
        self.selector.register(inbox.fileno(), selectors.EVENT_READ, self._on_wakeup)
        self.status_endpoint: StatusEndpoint | None = None
        self.socket_path = socket_path
        self.notifier: Notifier | None = None
        if environ.get("NOTIFY_SOCKET"):   # only then: init's imports stay as they were
            from . import notify
            self.notifier = notify.Notifier(environ["NOTIFY_SOCKET"])

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> int:
        """Supervise until everything has stopped; returns init's exit code."""
        self._open_control()
        say(f"running {len(self.runs)} service(s) of image {self.table.image or '-'}")
        while True:
            now = time.monotonic()
            self._take_signals()
            self._reap()
            self._flush_partial_lines(now)
            if self.status_endpoint is not None:
                self.status_endpoint.drop_idle(now)
            if self.stopping:
                self._advance_stop(now)
            else:
                self._advance(now)
            if self.notifier is not None:
                self.notifier.update(self.runs, self.stopping)
            if self._finished():
                break
            timeout = self._sleep_time(time.monotonic())
            self._watch_log()
            for key, _ in self.selector.select(timeout):
                callback: Callable[[object], None] = key.data
                callback(key.fileobj)
        self._shutdown()
        return self.exit_code

    def _on_wakeup(self, _: object) -> None:
        """Signals are taken at the top of the loop; the wakeup byte only ends select()."""

    def _take_signals(self) -> None:
        for signum in self.inbox.take():
            if signum in (signal.SIGTERM, signal.SIGINT):
                self.begin_stop(exitcodes.OK, f"received {signal_name(signum)}")
            elif signum == signal.SIGHUP:
                self._reload()

    def _sleep_time(self, now: float) -> float:
        deadlines = [now + MAX_SLEEP]
        for run in self.runs:
            if run.state == STARTING and not run.not_ready:
                deadlines.append(run.probe_deadline)
                if run.attempt is None:
                    deadlines.append(run.next_probe_at)
                elif isinstance(run.attempt, SocketAttempt) and run.attempt.deadline:
                    deadlines.append(run.attempt.deadline)
            elif run.state == BACKOFF and not self.stopping:
                deadlines.append(run.restart_at)
            if run.state == STOPPING and run.stop_deadline is not None:
                deadlines.append(run.stop_deadline)
        deadlines.extend(due for stream in self.streams
                         if (due := stream.buffer.flush_due()) is not None)
        if self.status_endpoint is not None:
            deadlines.extend(self.status_endpoint.deadlines())
        return max(0.0, min(deadlines) - now)

    def _finished(self) -> bool:
        if any(run.process is not None for run in self.runs):
            return False
        if self.stopping:
            return True
        if all(run.state in FINISHED for run in self.runs):
            say("every service has finished")
            return True
        return False

    # -- starting and probing --------------------------------------------------------------

    def _advance(self, now: float) -> None:
        for run in self.runs:
            if self.stopping:
                return
            if run.state == WAITING:
                dependencies = [self.by_name[name] for name in run.spec.depends_on]
                failed = [dep.name for dep in dependencies if dep.state == FAILED]
                if failed:
                    self._fail(run, f"its dependency {failed[0]} failed")
                elif all(dep.state in SATISFIES_DEPENDENTS for dep in dependencies):
                    missing = unmet_condition(run.spec)
                    if missing is None:
                        self._start(run, now)
                    else:
                        run.state = SKIPPED
                        run.last_exit = f"skipped: {missing} does not exist on this host"
                        say(f"{run.name} skipped: its condition {missing} does not exist on "
                            f"this host")
            elif run.state == BACKOFF and now >= run.restart_at:
                self._start(run, now)
            elif run.state == STARTING:
                self._probe(run, now)

    def _start(self, run: ServiceRun, now: float) -> None:
        spec = run.spec
        run.starts += 1
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        try:
            process = subprocess.Popen(spec.argv, stdout=out_write, stderr=err_write,
                                       **session_arguments(spec.workdir, run.env),
                                       **identity_arguments(run.account))
        except (OSError, subprocess.SubprocessError) as error:
            os.close(out_read)
            os.close(err_read)
            say(f"{run.name}: cannot start {quote_argv(spec.argv)}: {error}")
            run.last_exit = "cannot start"
            self._after_exit(run, now, True, "cannot start")
            return
        finally:
            os.close(out_write)
            os.close(err_write)
        run.process = process
        self.service_pids[process.pid] = run
        prefix = f"{run.name} | ".encode()
        for fd, target in ((out_read, 1), (err_read, 2)):
            os.set_blocking(fd, False)
            stream = OutputStream(fd, prefix, target)
            self.streams.append(stream)
            self.selector.register(stream, selectors.EVENT_READ, self._on_output)
        run.started_at = now
        run.ready_since = None
        run.ready_after_ms = None
        run.not_ready = False
        run.probe_deadline = now + spec.ready.timeout
        run.next_probe_at = now
        restarted = f" (restart {run.restarts})" if run.restarts else ""
        say(f"started {run.name}{restarted}: pid {process.pid}, user {run.account.user}: "
            f"{quote_argv(spec.argv)}")
        if spec.ready.kind == "none":
            self._ready(run, now)
        else:
            run.state = STARTING

    def _probe(self, run: ServiceRun, now: float) -> None:
        if run.not_ready:
            return
        if now >= run.probe_deadline:
            self._not_ready(run)
            return
        attempt = run.attempt
        if isinstance(attempt, SocketAttempt) and attempt.deadline and now >= attempt.deadline:
            self._cancel_probe(run)   # no answer in time (http): a fresh attempt
        elif attempt is not None or now < run.next_probe_at:
            return
        result = start_attempt(run.spec.ready, run.env, run.spec.workdir)
        if result is True:
            self._ready(run, now)
        elif result is False:
            run.next_probe_at = now + run.spec.ready.interval
        else:
            run.attempt = result
            if isinstance(result, SocketAttempt):
                self.selector.register(result, result.events(),
                                       functools.partial(self._on_probe_socket, run))
            else:
                self.probe_pids[result.pid] = run

    def _on_probe_socket(self, run: ServiceRun, attempt: object) -> None:
        if run.attempt is not attempt or not isinstance(attempt, SocketAttempt):
            return  # cancelled earlier in this same batch of events
        answer = attempt.advance()
        if answer is None:    # a step of a longer exchange (http): wait for the next one
            self.selector.modify(attempt, attempt.events(),
                                 functools.partial(self._on_probe_socket, run))
            return
        self.selector.unregister(attempt)
        run.attempt = None
        self._probe_answered(run, answer)

    def _probe_answered(self, run: ServiceRun, ok: bool) -> None:
        now = time.monotonic()
        if run.state != STARTING or run.not_ready or self.stopping:
            return
        if ok:
            self._ready(run, now)
        else:
            run.next_probe_at = now + run.spec.ready.interval

    def _ready(self, run: ServiceRun, now: float) -> None:
        run.state = READY
        run.ready_since = time.time()
        run.ready_after_ms = round((now - run.started_at) * 1000)
        say(f"{run.name} is ready ({run.spec.ready.kind} probe, {run.ready_after_ms} ms)")

    def _not_ready(self, run: ServiceRun) -> None:
        say(f"{run.name} was not ready within {run.spec.ready.timeout:g} s; killing it")
        run.not_ready = True
        self._cancel_probe(run)
        run.signal_group(signal.SIGKILL)

    def _cancel_probe(self, run: ServiceRun) -> None:
        attempt, run.attempt = run.attempt, None
        if isinstance(attempt, SocketAttempt):
            self.selector.unregister(attempt)
            attempt.cancel()
        elif isinstance(attempt, CommandAttempt):
            attempt.cancel()   # reaped by _reap, which then finds no attempt to answer

    # -- exits -----------------------------------------------------------------------------

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            run = self.service_pids.pop(pid, None)
            if run is not None and run.process is not None:
                run.process.returncode = code  # so Popen never waits for a reused pid
                self._service_exited(run, code)
                continue
            prober = self.probe_pids.pop(pid, None)
            if prober is not None:
                attempt = prober.attempt
                if isinstance(attempt, CommandAttempt) and attempt.pid == pid:
                    attempt.process.returncode = code
                    prober.attempt = None
                    self._probe_answered(prober, code == 0)
            # any other pid is an orphan inherited as PID 1: reaping it was the point

    def _service_exited(self, run: ServiceRun, code: int) -> None:
        assert run.process is not None
        now = time.monotonic()
        pgid = run.process.pid
        run.process = None
        kill_group(pgid, signal.SIGKILL)  # leftovers of its session; at once, before reuse
        self._cancel_probe(run)
        description = describe_exit(code)
        run.last_exit = description
        run.ready_since = None
        if self.stopping or run.state == STOPPING:
            run.state = STOPPED
            run.stop_deadline = None
            say(f"{run.name} stopped ({description})")
            return
        failed = code != 0 or run.not_ready
        if run.not_ready:
            description = f"not ready within {run.spec.ready.timeout:g} s"
            run.last_exit = description
        say(f"{run.name} exited: {description}")
        self._after_exit(run, now, failed, description)

    def _after_exit(self, run: ServiceRun, now: float, failed: bool, description: str) -> None:
        decision = policy.after_exit(run.spec.restart, failed, run.recent_exits, now)
        run.recent_exits = decision.recent_exits
        if decision.action == policy.RESTART:
            run.state = BACKOFF
            run.restart_at = now + decision.delay
            say(f"{run.name} restarts in {decision.delay:g} s ({decision.reason})")
        elif decision.action == policy.DONE:
            run.state = DONE
            say(f"{run.name} is done ({decision.reason})")
        else:
            self._fail(run, f"{description}; {decision.reason}")

    def _fail(self, run: ServiceRun, reason: str) -> None:
        run.state = FAILED
        if run.spec.critical:
            say(f"critical service {run.name} failed: {reason}")
            self.begin_stop(exitcodes.CRITICAL_FAILED, f"critical service {run.name} failed")
        else:
            say(f"service {run.name} failed: {reason} (not critical: the others keep running)")

    # -- reload and stop -------------------------------------------------------------------

    def _reload(self) -> None:
        if self.stopping:
            say("SIGHUP ignored: stopping")
            return
        say("SIGHUP: rendering the templates again and reloading the services")
        for run in self.runs:
            try:
                render_templates(run.spec, self.values)
            except ConfigureError as error:
                say(f"{error}; {run.name} keeps its current configuration")
                continue
            signum = run.spec.reload_signal
            if signum is None:
                say(f"reloaded {run.name}: templates only (no reload signal)")
            elif run.process is None or run.state not in (STARTING, READY):
                say(f"reloaded {run.name}: templates only ({run.state}: not signalled)")
            else:
                try:
                    os.kill(run.process.pid, signum)
                except ProcessLookupError:
                    pass
                say(f"reloaded {run.name}: {signal_name(signum)} sent")

    def begin_stop(self, code: int, reason: str) -> None:
        """Stop every service in reverse dependency order, then exit with `code` (the first
        reason to stop decides the exit code)."""
        if self.stopping:
            if code != exitcodes.OK:
                say(f"{reason} (already stopping)")
            return
        self.stopping = True
        self.exit_code = code
        say(f"stopping every service: {reason}")
        for run in self.runs:
            self._cancel_probe(run)
            if run.process is None and run.state not in FINISHED:
                run.state = STOPPED

    def _advance_stop(self, now: float) -> None:
        for run in reversed(self.runs):
            if run.process is None:
                continue
            if run.state != STOPPING:
                if any(dependent.process is not None for dependent in run.dependents):
                    continue
                run.state = STOPPING
                run.stop_deadline = now + run.spec.stop_timeout
                say(f"stopping {run.name} ({signal_name(run.spec.stop_signal)}, "
                    f"timeout {run.spec.stop_timeout:g} s)")
                run.signal_group(run.spec.stop_signal)
            elif run.stop_deadline is not None and now >= run.stop_deadline:
                say(f"{run.name} still running {run.spec.stop_timeout:g} s after "
                    f"{signal_name(run.spec.stop_signal)}; sending SIGKILL")
                run.stop_deadline = None
                run.signal_group(signal.SIGKILL)

    def kill_everything(self) -> None:
        """Last resort after a bug in init: SIGKILL every service's process group."""
        for run in self.runs:
            run.signal_group(signal.SIGKILL)
        self._final_sweep()

    def _shutdown(self) -> None:
        if self.notifier is not None:
            self.notifier.close()
        if self.status_endpoint is not None:
            self.status_endpoint.close()
        self._final_sweep()
        now = time.monotonic()
        for stream in self.streams:   # what the services wrote last (a stray may hold the pipe)
            for _ in range(64):
                if not select.select([stream.fd], [], [], 0)[0] or not stream.pump(now):
                    break
            stream.emit(stream.buffer.flush())
            os.close(stream.fd)
        self.streams = []
        for writer in self.log_watched:
            self.selector.unregister(writer)
        self.log_watched = set()
        dropped = CONTAINER_LOG.summary()
        if dropped:
            say(f"{dropped} line(s) of output dropped in all: the log's reader did not keep up")
        say(f"exit {self.exit_code}")

    def _final_sweep(self) -> None:
        """As PID 1, SIGKILL whatever is left in the namespace; reap what can be reaped."""
        if os.getpid() == 1:
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + (FINAL_REAP_TIMEOUT if os.getpid() == 1 else 0.0)
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                if time.monotonic() >= deadline:
                    return
                time.sleep(0.01)

    # -- output and status -----------------------------------------------------------------

    def _on_output(self, stream: object) -> None:
        assert isinstance(stream, OutputStream)
        if not stream.pump(time.monotonic()):
            self.selector.unregister(stream)
            os.close(stream.fd)
            self.streams.remove(stream)

    def _watch_log(self) -> None:
        """Wake up when a log fd holding buffered output turns writable (and only then)."""
        waiting = set(CONTAINER_LOG.waiting())
        for writer in self.log_watched - waiting:
            self.selector.unregister(writer)
        for writer in waiting - self.log_watched:
            try:
                self.selector.register(writer, selectors.EVENT_WRITE, CONTAINER_LOG.flush)
            except (OSError, ValueError):
                waiting.discard(writer)   # cannot be watched: flushed at the next write
        self.log_watched = waiting

    def _flush_partial_lines(self, now: float) -> None:
        for stream in self.streams:
            due = stream.buffer.flush_due()
            if due is not None and now >= due:
                stream.emit(stream.buffer.flush())

    def _open_control(self) -> None:
        if self.socket_path is None:
            return
        try:
            self.status_endpoint = StatusEndpoint(self.socket_path, self.selector,
                                                  self.status_records)
        except OSError as error:
            say(f"cannot listen on {self.socket_path}: {error}; status and health will fail")

    def status_records(self) -> list[Record]:
        """The full status answer (see control.py for the protocol)."""
        records: list[Record] = [("init", [
            ("version", 1), ("pid", os.getpid()),
            ("state", "stopping" if self.stopping else "running"),
            ("image", self.table.image or None),
            ("uptime_s", time.monotonic() - self.started_at),
            ("log_dropped_lines", CONTAINER_LOG.dropped_total),
        ])]
        records.extend(run.status_record() for run in self.runs)
        healthy = not self.stopping and all(run.state in SATISFIES_DEPENDENTS
                                            for run in self.runs)
        records.append(("end", [("healthy", healthy), ("services", len(self.runs))]))
        return records
