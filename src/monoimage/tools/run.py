"""The one way monoimage starts a program: `run()` to its end, `spawn()` in the background.

Every program monoimage drives (buildah, podman, skopeo, mmdebstrap, apt, dnf, rpm, dpkg, tar,
chroot, gpg, docker-registry…) starts here, through `sh`, under one policy:

- arguments are a list, never a shell string; a recipe's names reach a program only as
  arguments (its callers put `--` before them);
- the environment is the caller's plus the call's own variables, with `CONTAINERS_CONF`
  pointing at monoimage's own containers.conf unless the user set one (this host's container
  configuration is never touched);
- a program that is not installed is a `MissingToolError` naming its Debian package;
- the program runs in its own process group. When waiting for it is interrupted (Ctrl-C,
  SIGTERM turned into KeyboardInterrupt, any exception) or its time is up, the whole group
  gets SIGINT as a terminal's Ctrl-C would send it, then SIGTERM, then SIGKILL, and is
  awaited: nothing goes on writing (a commit, an unmount) behind the caller's back;
- a failure is a `ToolError` that names the program, its arguments and the tail of its output.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import sh

from monoimage.errors import MissingToolError, UserError

CONTAINERS_CONF = Path(__file__).parents[1] / "data" / "containers.conf"
# Debian packages of the programs whose package is not named like the program.
PACKAGES = {"apt-get": "apt", "apt-cache": "apt", "apt-ftparchive": "apt-utils",
            "dpkg-deb": "dpkg", "dpkg-query": "dpkg", "chroot": "coreutils",
            "ignition-validate": "ignition", "systemd-analyze": "systemd"}
# How long each signal of the escalation is given before the next one.
GRACE_SECONDS = (30.0, 30.0)
Running = sh.RunningCommand  # a spawned program
_ANY_EXIT = tuple(range(-64, 256))  # exit codes are ours to judge, signals included


class ToolError(UserError):
    """A program failed: which one, with which arguments, and the last lines it printed."""

    def __init__(self, done: Completed, what: str | None = None, lines: int = 15) -> None:
        self.done = done
        label = what or Path(done.argv[0]).name
        super().__init__(f"{label} failed (exit {done.exit_code}): {_summary(done.argv)}\n"
                         + tail(done.output, lines))


class ToolTimeout(UserError):
    """A program did not finish in its time; it was stopped."""


@dataclass(frozen=True)
class Completed:
    """A program that ran to its end, successful or not."""

    argv: tuple[str, ...]
    exit_code: int
    stdout_bytes: bytes
    stderr_bytes: bytes

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_bytes.decode(errors="replace")

    @property
    def output(self) -> str:
        """What it printed, stderr first: that is where programs explain a failure."""
        return (self.stderr + "\n" + self.stdout).strip()

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def last_line(self, ignore: Sequence[str] = ()) -> str:
        """The program's own last word on stderr (lines holding an `ignore` text skipped), or
        its exit code when it said nothing."""
        lines = [line for line in self.stderr.splitlines()
                 if line.strip() and not any(noise in line for noise in ignore)]
        return lines[-1] if lines else f"exit {self.exit_code}"


def environment(extra: Mapping[str, str] | None = None, without: Sequence[str] = ()
                ) -> dict[str, str]:
    """The environment every program gets (see the module's docstring); `without`: prefixes of
    variables the program must not see (a registry reads REGISTRY_* as its configuration)."""
    env = {key: value for key, value in {**os.environ, **(extra or {})}.items()
           if not key.startswith(tuple(without))}
    env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    return env


def run(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None, input: bytes | str | None = None,
        timeout: float | None = None, check: bool = True, what: str | None = None,
        package: str | None = None, tail_lines: int = 15, clean_env: bool = False
        ) -> Completed:
    """Run `argv` to its end; with `check`, a non-zero exit is a ToolError.

    `clean_env`: the program gets exactly `env`, nothing of this process's environment (a
    program of an image root must not see the build host's PYTHON* variables, say).
    """
    running = _start(argv, package, env=env, cwd=cwd, clean_env=clean_env,
                     _in=b"" if input is None else input, _bg=True, _bg_exc=False,
                     _tty_out=False, _ok_code=_ANY_EXIT, _out_bufsize=1 << 16,
                     _err_bufsize=1 << 16)
    return finish(running, argv, what=what, check=check, timeout=timeout,
                  tail_lines=tail_lines)


def spawn(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
          cwd: Path | str | None = None, stdout: IO[bytes] | Path | None = None,
          stdin: Any = None, piped: bool = False, package: str | None = None,
          without: Sequence[str] = ()) -> Running:
    """Start `argv` in the background (a server, one end of a pipe); stop it with `stop_group`.

    `stdout`: a file (or path) its output and errors go to; `piped`: its output feeds the
    `stdin` of another `spawn`/`run`; `stdin`: bytes or another piped command.
    """
    options: dict[str, Any] = {"_bg": True, "_bg_exc": False, "_tty_out": False,
                               "_ok_code": _ANY_EXIT}
    if isinstance(stdout, Path):
        # The program writes to the file itself (sh would copy through a thread, so the file
        # would lag behind what the program has said).
        with stdout.open("ab") as handle:
            return spawn(argv, env=env, cwd=cwd, stdout=handle, stdin=stdin, piped=piped,
                         package=package, without=without)
    if stdout is not None:
        options.update(_out=stdout, _err_to_out=True)
    if piped:
        options.update(_piped=True, _out_bufsize=1 << 16)
    if stdin is not None:
        options["_in"] = stdin
    return _start(argv, package, env=env, cwd=cwd, without=without, **options)


def finish(running: Running, argv: Sequence[str], *, what: str | None = None,
           check: bool = True, timeout: float | None = None, tail_lines: int = 15
           ) -> Completed:
    """Wait for a started program; with `check`, a non-zero exit is a ToolError. Interrupted
    or past its `timeout`, its process group is stopped (and the timeout is a ToolTimeout)."""
    try:
        running.wait(timeout=timeout)
        if timeout is not None:
            running.process.wait()  # sh's timed wait returns before it has read all output
    except sh.TimeoutException:
        stop_group(running)
        raise ToolTimeout(f"{what or Path(argv[0]).name}: no answer within {timeout:g} s: "
                          f"{_summary(argv)}") from None
    except BaseException:
        stop_group(running)
        raise
    stdout = b"" if running.call_args.get("piped") else bytes(running.stdout or b"")
    done = Completed(tuple(argv), running.exit_code, stdout, bytes(running.stderr or b""))
    if check and not done.ok:
        raise ToolError(done, what, tail_lines)
    return done


def require(program: str) -> str:
    """The path of `program`, or a MissingToolError naming its Debian package: for a check
    before work starts (a program that is missing later fails the same way)."""
    path = shutil.which(program)
    if path is None:
        raise MissingToolError(program, PACKAGES.get(program, program))
    return path


def is_running(running: Running) -> bool:
    """Whether a spawned program is still running."""
    return bool(running.process.is_alive()[0])


def stop_group(running: Running, grace: Sequence[float] = GRACE_SECONDS) -> None:
    """SIGINT, then SIGTERM, then SIGKILL to the program's process group, until it is gone."""
    for sig, seconds in zip((signal.SIGINT, signal.SIGTERM), grace, strict=True):
        if not _signal_group(running, sig):
            return
        with contextlib.suppress(sh.TimeoutException, sh.ErrorReturnCode):
            running.wait(timeout=seconds)
            return
    _signal_group(running, signal.SIGKILL)
    with contextlib.suppress(Exception):
        running.wait()


def tail(text: str, lines: int) -> str:
    """The last `lines` non-empty lines of a program's output, indented for a message."""
    kept = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(f"  {line}" for line in kept)


def _start(argv: Sequence[str], package: str | None, *, env: Mapping[str, str] | None,
           cwd: Path | str | None, without: Sequence[str] = (), clean_env: bool = False,
           **options: Any) -> Running:
    if not argv:
        raise ValueError("run: empty argument list")
    try:
        command = sh.Command(argv[0])
    except sh.CommandNotFound:
        name = Path(argv[0]).name
        raise MissingToolError(name, package or PACKAGES.get(name, name)) from None
    full_env = dict(env or {}) if clean_env else environment(env, without)
    with _interrupts_held() as held:
        running = command(*argv[1:], _env=full_env, _cwd=None if cwd is None else str(cwd),
                          _new_group=True, **options)
    if held:
        try:
            _deliver(held)
        except BaseException:
            stop_group(running)  # an interrupt that waited: the program does not outlive it
            raise
    return running


_INTERRUPTS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _interrupts_held() -> Iterator[list[tuple[signal.Signals, Any]]]:
    """Ctrl-C or SIGTERM while sh forks would run their handler inside the fork's callbacks,
    where Python drops what it raises (a `footprint` went on as if nothing had come). In the
    block they are only noted; the caller delivers them, with the handlers they had, after."""
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    held: list[tuple[signal.Signals, Any]] = []
    previous = {sig: signal.getsignal(sig) for sig in _INTERRUPTS}

    def note(number: int, _frame: Any) -> None:
        sig = signal.Signals(number)
        held.append((sig, previous[sig]))

    for sig in _INTERRUPTS:
        signal.signal(sig, note)
    try:
        yield held
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _deliver(held: list[tuple[signal.Signals, Any]]) -> None:
    sig, handler = held[0]
    if callable(handler):
        handler(sig, None)
    elif handler == signal.SIG_DFL:
        os.kill(os.getpid(), sig)


def _signal_group(running: Running, sig: signal.Signals) -> bool:
    """Signal the group; False when the program has already ended."""
    try:
        if not running.process.is_alive()[0]:
            return False
        os.killpg(running.process.pgid, sig)
    except (ProcessLookupError, PermissionError, OSError):
        return False
    return True


def _summary(argv: Sequence[str], limit: int = 12) -> str:
    """The command line, shortened: a long list of package names says nothing more."""
    shown = list(argv[:limit]) + ([f"… ({len(argv) - limit} more)"] if len(argv) > limit
                                  else [])
    return " ".join(shown)
