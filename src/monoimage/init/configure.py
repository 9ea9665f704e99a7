"""The configure phase: for each service in dependency order, resolve its account, create its
runtime directories, render its templates and run its one-shot config commands.

Any failure ends the boot with one ConfigureError naming the service, the step and (for a
command) its output: a half-configured service would only fail later, less clearly.
"""

import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Mapping

from .accounts import Account, AccountError, resolve_account
from .files import ensure_directory, write_atomic
from .logs import prefixed, quote_argv
from .logwriter import CONTAINER_LOG
from .render import MissingValue, SiteValues, render
from .service import unmet_condition
from .spawn import child_environment, identity_arguments, session_arguments
from .table import Command, Service, Table

OUTPUT_CAP = 8192          # of a failed command's output, in its ConfigureError
OUTPUT_KEEP = 1024 * 1024  # of a command's output, for the log
READS_PER_CALL = 16
POLL_INTERVAL = 0.1


class ConfigureError(Exception):
    """One step of one service's configuration failed."""

    def __init__(self, service: str, step: str, detail: str) -> None:
        super().__init__(f"configure failed: service {service}, {step}: {detail}")
        self.service = service
        self.step = step
        self.detail = detail


class ConfigureInterrupted(Exception):
    """SIGTERM or SIGINT arrived during the configure phase."""


def configure(table: Table, values: SiteValues, environ: Mapping[str, str],
              stop_requested: Callable[[], bool]) -> dict[str, Account]:
    """Configure every service; returns each service's resolved account for the run phase."""
    accounts: dict[str, Account] = {}
    for service in table.services:
        if stop_requested():
            raise ConfigureInterrupted()
        try:
            accounts[service.name] = resolve_account(service.user, service.group)
        except AccountError as error:
            raise ConfigureError(service.name, "user", str(error)) from None
        if unmet_condition(service) is not None:
            continue   # never started: nothing of it is configured (the run phase says so)
        for directory in service.runtime_dirs:
            create_runtime_directory(service, directory.path, directory.owner, directory.group,
                                     directory.mode)
        render_templates(service, values)
        env = child_environment(environ, accounts[service.name], service.env)
        for command in service.commands:
            if stop_requested():
                raise ConfigureInterrupted()
            run_command(service, command, env, stop_requested)
    return accounts


def create_runtime_directory(service: Service, path: str, owner: str, group: str | None,
                             mode: int) -> None:
    """Create one runtime directory of `service` with owner and mode."""
    step = f"runtime directory {path}"
    try:
        account = resolve_account(owner, group)
        ensure_directory(path, mode, account.uid, account.gid)
    except (AccountError, OSError) as error:
        raise ConfigureError(service.name, step, str(error)) from None


def render_templates(service: Service, values: SiteValues) -> None:
    """Render and write every template of `service` (also called again on SIGHUP)."""
    for template in service.templates:
        step = f"template {template.target}"
        try:
            content = render(template.content, values)
        except MissingValue as missing:
            raise ConfigureError(
                service.name, step,
                f"no value for {{{{ {missing.name} }}}}: give a site default, the environment "
                f"variable MONOIMAGE_SITE_{missing.name.upper()} or the secret file "
                f"{os.path.join(values.secrets_dir, missing.name)}") from None
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigureError(service.name, step, f"cannot read a secret: {error}") from None
        try:
            owner = resolve_account(template.owner, template.group)
            write_atomic(template.target, content.encode("utf-8"), template.mode, owner.uid,
                         owner.gid)
        except (AccountError, OSError) as error:
            raise ConfigureError(service.name, step, str(error)) from None


def run_command(service: Service, command: Command, env: dict[str, str],
                stop_requested: Callable[[], bool]) -> None:
    """Run one config command as its user; its output goes to the log on success and into
    the ConfigureError otherwise.

    The command is done when it exits, not when its output pipe ends: a background child it
    left behind may hold the pipe for ever. Whatever is left of its session then is killed, as
    for a service; the output already written is kept."""
    step = f"command {quote_argv(command.argv)} (as {command.user})"
    try:
        account = resolve_account(command.user, command.group)
        process = subprocess.Popen(command.argv, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT,
                                   **session_arguments(service.workdir, env),
                                   **identity_arguments(account))
    except (AccountError, OSError, subprocess.SubprocessError) as error:
        raise ConfigureError(service.name, step, f"cannot start: {error}") from None
    assert process.stdout is not None
    output = CommandOutput(process.stdout.fileno())
    deadline = None if command.timeout is None else time.monotonic() + command.timeout
    try:
        while process.poll() is None:
            output.read(POLL_INTERVAL)
            if stop_requested():
                _kill(process)
                raise ConfigureInterrupted() from None
            if deadline is not None and time.monotonic() > deadline:
                _kill(process)
                raise ConfigureError(service.name, step,
                                     f"still running after {command.timeout:g} s; killed")
        _kill_group(process.pid)   # leftovers of its session; their output so far is kept
        output.read(0.0)
    finally:
        process.stdout.close()
    if process.returncode != 0:
        raise ConfigureError(service.name, step,
                             f"{describe_exit(process.returncode)}; output:\n"
                             f"{_tail(bytes(output.data))}")
    if output.data:
        lines = bytes(output.data).rstrip(b"\n").split(b"\n")
        CONTAINER_LOG.write(1, prefixed(f"{service.name} | ".encode(), lines))


class CommandOutput:
    """What a config command writes to its pipe; only the last OUTPUT_KEEP bytes are kept."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.data = bytearray()
        self.ended = False
        os.set_blocking(fd, False)

    def read(self, timeout: float) -> None:
        """Wait up to `timeout` for output, then read what is there (bounded: a leftover that
        escaped its session could write for ever)."""
        if self.ended:
            if timeout:
                time.sleep(timeout)
            return
        if not select.select([self.fd], [], [], timeout)[0]:
            return
        for _ in range(READS_PER_CALL):
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            if not chunk:
                self.ended = True
                return
            self.data += chunk
            del self.data[:-OUTPUT_KEEP]


def describe_exit(returncode: int) -> str:
    """`exit code 3` or `killed by SIGSEGV`, from a subprocess return code."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def _tail(output: bytes) -> str:
    text = output[-OUTPUT_CAP:].decode("utf-8", "replace").rstrip("\n")
    return text if text else "(no output)"


def _kill(process: subprocess.Popen[bytes]) -> None:
    _kill_group(process.pid)
    process.wait()


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
