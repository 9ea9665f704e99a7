"""The configure phase: for each service in dependency order, resolve its account, create its
runtime directories, render its templates and run its one-shot config commands.

Any failure ends the boot with one ConfigureError naming the service, the step and (for a
command) its output: a half-configured service would only fail later, less clearly.
"""

import _signal
import os
import select
import time

from .accounts import Account, AccountError, resolve_account
from .files import ensure_directory, write_atomic
from .logs import prefixed, quote_argv
from .logwriter import CONTAINER_LOG
from .render import MissingValue, SiteValues, render
from .service import unmet_condition
from .signals import SignalInbox, signal_name
from .spawn import child_environment, spawn
from .table import Command, Service, Table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

OUTPUT_CAP = 8192          # of a failed command's output, in its ConfigureError
OUTPUT_KEEP = 1024 * 1024  # of a command's output, for the log
READS_PER_CALL = 16


class ConfigureError(Exception):
    """One step of one service's configuration failed."""

    def __init__(self, service: str, step: str, detail: str) -> None:
        super().__init__(f"configure failed: service {service}, {step}: {detail}")
        self.service = service
        self.step = step
        self.detail = detail


class ConfigureInterrupted(Exception):
    """SIGTERM or SIGINT arrived during the configure phase."""


def configure(table: Table, values: SiteValues, environ: "Mapping[str, str]",
              inbox: SignalInbox) -> dict[str, Account]:
    """Configure every service; returns each service's resolved account for the run phase.
    SIGTERM or SIGINT (in `inbox`) interrupts it: ConfigureInterrupted."""
    accounts: dict[str, Account] = {}
    for service in table.services:
        if inbox.stop_requested():
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
            if inbox.stop_requested():
                raise ConfigureInterrupted()
            run_command(service, command, env, inbox)
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
                inbox: SignalInbox) -> None:
    """Run one config command as its user; its output goes to the log on success and into
    the ConfigureError otherwise.

    The command is done when it exits, not when its output pipe ends: a background child it
    left behind may hold the pipe for ever. Whatever is left of its session then is killed, as
    for a service; the output already written is kept. Its exit is an event (SIGCHLD wakes
    the wait through the inbox's pipe), not something polled for."""
    step = f"command {quote_argv(command.argv)} (as {command.user})"
    read_end, write_end = os.pipe()
    try:
        account = resolve_account(command.user, command.group)
        pid = spawn(command.argv, env, service.workdir, account, write_end, write_end)
    except (AccountError, OSError) as error:
        os.close(read_end)
        raise ConfigureError(service.name, step, f"cannot start: {error}") from None
    finally:
        os.close(write_end)
    output = CommandOutput(read_end)
    deadline = None if command.timeout is None else time.monotonic() + command.timeout
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                returncode = os.waitstatus_to_exitcode(status)
                break
            if inbox.stop_requested():
                _kill(pid)
                raise ConfigureInterrupted() from None
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left < 0:
                _kill(pid)
                raise ConfigureError(service.name, step,
                                     f"still running after {command.timeout:g} s; killed")
            output.wait(inbox, left)
        _kill_group(pid)   # leftovers of its session; their output so far is kept
        output.read()
    finally:
        os.close(read_end)
    if returncode != 0:
        raise ConfigureError(service.name, step,
                             f"{describe_exit(returncode)}; output:\n"
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

    def wait(self, inbox: SignalInbox, timeout: float | None) -> None:
        """Wait up to `timeout` (None: no limit) for output or a signal (the command's
        SIGCHLD, a SIGTERM); read the output that is there."""
        watched = [inbox.fileno()] if self.ended else [self.fd, inbox.fileno()]
        readable = select.select(watched, [], [], timeout)[0]
        if inbox.fileno() in readable:
            inbox.drain()   # the signals themselves stay in the inbox for the caller
        if self.fd in readable:
            self.read()

    def read(self) -> None:
        """Read what is there now (bounded: a leftover that escaped its session could write
        for ever)."""
        if self.ended:
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
    """`exit code 3` or `killed by SIGSEGV`, from a return code (negative: the signal)."""
    if returncode < 0:
        return f"killed by {signal_name(-returncode)}"
    return f"exit code {returncode}"


def _tail(output: bytes) -> str:
    text = output[-OUTPUT_CAP:].decode("utf-8", "replace").rstrip("\n")
    return text if text else "(no output)"


def _kill(pid: int) -> None:
    _kill_group(pid)
    os.waitpid(pid, 0)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, _signal.SIGKILL)
    except OSError:
        pass
