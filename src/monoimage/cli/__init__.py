"""The `monoimage` command line: each subcommand parses, calls the library, prints."""

from __future__ import annotations

import errno
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from monoimage.cli.boot import boot_command
from monoimage.cli.build import build_command
from monoimage.cli.diff import diff_command
from monoimage.cli.fleet import fleet_command
from monoimage.cli.footprint import footprint_command
from monoimage.cli.host import host_command
from monoimage.cli.plan import plan_command
from monoimage.errors import UserError

USAGE = 2
# What the machine refuses a run that is not wrong itself: a full disk, a folder that cannot
# be written, a file where a folder is wanted. Anything else an OSError says stays a traceback.
_ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM,
                                 errno.EROFS, errno.ENOTDIR, errno.EISDIR, errno.EEXIST,
                                 errno.ENAMETOOLONG, errno.ELOOP, errno.EFBIG, errno.EMFILE})


class _Group(click.Group):
    """One line on stderr for every error a user can cause: a UserError (its exit code), a
    usage error (exit 2, the help hint on a second line), a file system that refuses a write;
    a closed or broken stdout ends the run quietly (click's own handling)."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        if not standalone_mode:  # a caller that handles click's exceptions itself
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            result = super().main(args, prog_name or "monoimage", complete_var,
                                  standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as err:  # bare `monoimage`: the help
            click.echo(err.format_message(), err=True)
            sys.exit(USAGE)
        except click.UsageError as err:
            where = err.ctx.command_path if err.ctx is not None else "monoimage"
            _fail(f"{err.format_message()}\n  see '{where} --help'", USAGE)
        except click.ClickException as err:
            _fail(err.format_message(), err.exit_code)
        except click.Abort:
            _fail("aborted", 130)
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except UserError as err:
            _fail(str(err), err.exit_code)
        except OSError as err:
            if err.errno not in _ENVIRONMENT_ERRNOS or err.filename is None:
                raise
            _fail(f"{err.filename}: {err.strerror}", USAGE)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"monoimage: {message}", err=True)
    sys.exit(code)


@click.group(cls=_Group)
@click.version_option(package_name="monoimage")
def main() -> None:
    """Build one golden all-in-one container image for edge sites, and measure the trade."""


for command in (plan_command, build_command, footprint_command, fleet_command, boot_command,
                host_command, diff_command):
    main.add_command(command)
