"""The commands of monoimage-init and their arguments.

    run      (the default) be PID 1: configure, then supervise, until SIGTERM/SIGINT
    check    validate the service table (and the accounts it names) and exit
    status   print the running init's status (aligned table, or --json)
    health   exit 0 only when every service is ready (HEALTHCHECK), else list the others

Paths: --table (env MONOIMAGE_TABLE, default /usr/share/monoimage/services.py), --socket (env
MONOIMAGE_SOCKET, default /run/monoimage/init.sock), --secrets-dir (env MONOIMAGE_SECRETS_DIR,
default /run/secrets). Exit codes: exitcodes.py.
"""

import os
import sys
import time

from . import exitcodes
from .accounts import AccountError, resolve_account, resolve_group
from .configure import ConfigureError, ConfigureInterrupted, configure
from .control import DEFAULT_SOCKET, request_status
from .logs import say
from .logwriter import CONTAINER_LOG
from .render import DEFAULT_SECRETS_DIR, SiteValues, placeholders
from .signals import SignalInbox, release_startup_signals
from .supervisor import Supervisor
from .table import Table, TableError, load_table
from .table_apart import load_table_apart

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

DEFAULT_TABLE = "/usr/share/monoimage/services.py"
COMMANDS = ("run", "check", "status", "health")


def dispatch(argv: list[str]) -> int:
    """Parse `argv` and run its command; returns the exit code."""
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv = ["run", *argv]
    if argv[0] != "run":
        release_startup_signals()   # only PID 1 needs them held until its handlers exist
    args: Any = _run_arguments(argv[1:]) if argv[0] == "run" else None
    if args is None:
        args = _parser().parse_args(argv)
    handler = {"run": command_run, "check": command_check, "status": command_status,
               "health": command_health}[args.command]
    return handler(args)


RUN_OPTIONS = {"--table": "table", "--socket": "socket", "--secrets-dir": "secrets_dir"}


class RunArguments:
    """`run`'s options, as argparse would give them."""

    def __init__(self, **values: str) -> None:
        self.__dict__.update(values)


def _run_arguments(rest: list[str]) -> RunArguments | None:
    """`run`'s options read without argparse, which would cost PID 1 a third of a MiB of RSS
    for its whole life; None for anything else (help, abbreviations, errors): argparse then
    parses, and says what is wrong."""
    values = {"command": "run",
              "table": os.environ.get("MONOIMAGE_TABLE", DEFAULT_TABLE),
              "socket": os.environ.get("MONOIMAGE_SOCKET", DEFAULT_SOCKET),
              "secrets_dir": os.environ.get("MONOIMAGE_SECRETS_DIR", DEFAULT_SECRETS_DIR)}
    index = 0
    while index < len(rest):
        option, equals, value = rest[index].partition("=")
        if option not in RUN_OPTIONS:
            return None
        if not equals:
            index += 1
            if index == len(rest) or rest[index].startswith("-"):
                return None
            value = rest[index]
        values[RUN_OPTIONS[option]] = value
        index += 1
    return RunArguments(**values)


def _parser() -> "argparse.ArgumentParser":
    import argparse
    parser = argparse.ArgumentParser(
        prog="monoimage-init", description="PID 1 of a monoimage image: configure, then "
        "supervise its services.", epilog="run is the default command.")
    commands = parser.add_subparsers(dest="command", required=True)
    table = argparse.ArgumentParser(add_help=False)
    table.add_argument("--table", default=os.environ.get("MONOIMAGE_TABLE", DEFAULT_TABLE),
                       help="service table (env MONOIMAGE_TABLE; default %(default)s)")
    sock = argparse.ArgumentParser(add_help=False)
    sock.add_argument("--socket", default=os.environ.get("MONOIMAGE_SOCKET", DEFAULT_SOCKET),
                      help="status socket (env MONOIMAGE_SOCKET; default %(default)s)")
    run = commands.add_parser("run", parents=[table, sock],
                              help="be PID 1: configure, then supervise (default)")
    run.add_argument("--secrets-dir",
                     default=os.environ.get("MONOIMAGE_SECRETS_DIR", DEFAULT_SECRETS_DIR),
                     help="secret files for templates (env MONOIMAGE_SECRETS_DIR; "
                          "default %(default)s)")
    check = commands.add_parser("check", parents=[table], help="validate the service table")
    check.add_argument("--no-accounts", action="store_true",
                       help="do not look the users and groups up (outside the image)")
    status = commands.add_parser("status", parents=[sock], help="print the services' status")
    status.add_argument("--json", action="store_true", help="JSON instead of a table")
    commands.add_parser("health", parents=[sock], help="exit 0 when every service is ready")
    return parser


def command_run(args: "Any") -> int:
    """Configure, then supervise, as PID 1 (or as any process: then orphans are not ours)."""
    try:
        return _run(args)
    finally:
        CONTAINER_LOG.finish()   # what a stalled log reader has not taken yet, briefly


def _run(args: "Any") -> int:
    try:
        table = load_table_apart(args.table)
    except TableError as error:
        say(str(error))
        return exitcodes.BAD_TABLE
    inbox = SignalInbox()   # before any child starts; what arrived since startup is pending
    values = SiteValues(dict(table.site), os.environ, args.secrets_dir)
    began = time.monotonic()
    say(f"configuring {len(table.services)} service(s) from {args.table}")
    try:
        accounts = configure(table, values, os.environ, inbox)
    except ConfigureInterrupted:
        say("stop requested during the configure phase; nothing was started")
        return exitcodes.OK
    except ConfigureError as error:
        say(str(error))
        return exitcodes.CONFIGURE_FAILED
    say(f"configured in {(time.monotonic() - began) * 1000:.0f} ms")
    supervisor = Supervisor(table, accounts, os.environ, values, inbox, args.socket)
    try:
        return supervisor.run()
    except Exception:  # noqa: BLE001 - PID 1 must not leave its services behind on a bug
        import traceback  # only now: it costs PID 1 half a MiB of RSS for its whole life
        say("internal error, killing every service:\n" + traceback.format_exc())
        supervisor.kill_everything()
        return exitcodes.INTERNAL_ERROR


def command_check(args: "Any") -> int:
    """Validate the table; print what it holds and which template values it leaves open."""
    try:
        table = load_table(args.table)
        if not args.no_accounts:
            _check_accounts(table)
    except (TableError, AccountError) as error:
        print(f"monoimage-init: {error}", file=sys.stderr)
        return exitcodes.BAD_TABLE
    names = ", ".join(service.name for service in table.services)
    print(f"{args.table}: valid: image {table.image or '-'}, "
          f"{len(table.services)} service(s): {names}")
    site = dict(table.site)
    for service in table.services:
        for template in service.templates:
            for name in placeholders(template.content):
                if name not in site:
                    print(f"note: {service.name}: {template.target}: {{{{ {name} }}}} has no "
                          f"site default: it needs MONOIMAGE_SITE_{name.upper()} or a secret "
                          f"file at boot")
    return exitcodes.OK


def _check_accounts(table: Table) -> None:
    for service in table.services:
        owners = [(service.user, service.group)]
        owners += [(command.user, command.group) for command in service.commands]
        owners += [(directory.owner, directory.group) for directory in service.runtime_dirs]
        owners += [(template.owner, template.group) for template in service.templates]
        for user, group in owners:
            try:
                resolve_account(user)
                if group is not None:
                    resolve_group(group)
            except AccountError as error:
                raise AccountError(f"service {service.name}: {error}") from None


def command_status(args: "Any") -> int:
    """Print the running init's status."""
    try:
        records = request_status(args.socket)
    except OSError as error:
        print(f"monoimage-init: cannot reach init at {args.socket}: {error}", file=sys.stderr)
        return exitcodes.UNREACHABLE
    from .report import status_json, status_table  # not in PID 1
    sys.stdout.write(status_json(records) if args.json else status_table(records))
    return exitcodes.OK


def command_health(args: "Any") -> int:
    """Exit 0 when every service is ready (or done); otherwise say which are not."""
    try:
        records = request_status(args.socket)
    except OSError as error:
        print(f"unhealthy: cannot reach init at {args.socket}: {error}", file=sys.stderr)
        return exitcodes.UNREACHABLE
    from .report import is_healthy, not_ready  # not in PID 1
    if is_healthy(records):
        print("healthy")
        return exitcodes.OK
    waiting = not_ready(records)
    print("unhealthy: not ready: " + (", ".join(waiting) if waiting else "init is stopping"))
    return exitcodes.UNHEALTHY
