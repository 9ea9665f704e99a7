"""The `monoimage` command line: each subcommand parses, calls the library, prints."""

from __future__ import annotations

import sys

import click

from monoimage.cli.boot import boot_command
from monoimage.cli.build import build_command
from monoimage.cli.diff import diff_command
from monoimage.cli.footprint import footprint_command
from monoimage.cli.host import host_command
from monoimage.cli.plan import plan_command
from monoimage.errors import UserError


class _Group(click.Group):
    """Turns every UserError into one clear line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except UserError as err:
            click.echo(f"monoimage: {err}", err=True)
            sys.exit(err.exit_code)


@click.group(cls=_Group)
@click.version_option(package_name="monoimage")
def main() -> None:
    """Build one golden all-in-one container image for edge sites, and measure the trade."""


for command in (plan_command, build_command, footprint_command, boot_command, host_command,
                diff_command):
    main.add_command(command)
