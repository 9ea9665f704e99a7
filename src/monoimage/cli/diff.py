"""`monoimage diff OLD NEW`: the packages an update changes, who runs them, and what it costs."""

from __future__ import annotations

import json

import click
from rich.console import Console

from monoimage.pipeline.image_diff import diff_images


@click.command("diff")
@click.argument("old")
@click.argument("new")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON on stdout.")
def diff_command(old: str, new: str, as_json: bool) -> None:
    """What updating from golden image OLD to NEW changes, and the bytes a site pulls."""
    found = diff_images(old, new)
    if as_json:
        click.echo(json.dumps(found.as_json(), indent=2))
        return
    console = Console()
    for change in found.changes:
        console.print(f"{change.name}: {change.before or '(new)'} → "
                      f"{change.after or '(removed)'}, in {change.touches}")
    if not found.changes:
        console.print("no package changed")
    console.print(f"a site holding {old} pulls {found.pull.bytes:,} bytes "
                  f"({found.pull.blobs} blobs, {found.pull.manifests} manifest); it keeps "
                  f"{found.kept_layers} of {found.layers} layers")
