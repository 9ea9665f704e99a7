"""`monoimage build RECIPE`: the golden image, with progress, quiet, or a JSON summary."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import click
from rich.console import Console

from monoimage.cli.arguments import reference_argument, usable_folder
from monoimage.cli.progress import interruptible, stage_reporter
from monoimage.errors import UserError
from monoimage.pipeline.build import BuildOptions, BuildResult, build
from monoimage.pipeline.build import source_date_epoch_from_env as _env_epoch
from monoimage.recipe.load import load_recipe
from monoimage.tools.cache_dir import default_cache_dir


@click.command("build")
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option("-t", "--tag", help="Image reference to tag (default: localhost/NAME:TAG).")
@click.option("-q", "--quiet", is_flag=True, help="No progress; only errors.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@click.option("--cache-dir", type=click.Path(path_type=Path),
              help="Package cache kept between builds (default ~/.cache/monoimage).")
@click.option("--out-dir", type=click.Path(path_type=Path),
              help="Where manifest.json and sbom.spdx.json go (default ./out/NAME).")
@click.option("--source-date-epoch", type=int,
              help="Timestamp of every file and of the image (default $SOURCE_DATE_EPOCH, "
                   "else 0).")
@click.option("--format", "image_format", type=click.Choice(["oci", "docker"]), default="oci",
              show_default=True,
              help="Image format; docker also keeps a HEALTHCHECK (OCI has none: the health "
                   "command is the io.monoimage.health-cmd label).")
@click.option("--no-init-python", is_flag=True,
              help="Do not add the init's Python (for repositories that have none; the image "
                   "then cannot run monoimage-init).")
@click.option("--previous", metavar="IMAGE",
              help="Keep the layers of IMAGE, the image sites run today: every unchanged "
                   "package stays in its layer (default: the image under the target tag, "
                   "when monoimage built it by package).")
@click.option("--no-previous", is_flag=True,
              help="Plan the layers from scratch, whatever the target tag holds.")
@click.option("--delta-from", metavar="IMAGE",
              help="A delta update: IMAGE's layers byte for byte plus one layer of what "
                   "changed (a long chain compacts; see layering.max_deltas).")
@click.option("--build-id", hidden=True, help="Names the temporary container and image.")
def build_command(recipe: Path, tag: str | None, quiet: bool, as_json: bool,
                  cache_dir: Path | None, out_dir: Path | None, source_date_epoch: int | None,
                  image_format: str, no_init_python: bool, previous: str | None,
                  no_previous: bool, delta_from: str | None, build_id: str | None) -> None:
    """Build the golden image of RECIPE with buildah; tag it only if every stage succeeds."""
    console = Console(stderr=True, quiet=quiet)
    if tag is not None:
        reference_argument(tag, "-t/--tag")
    if previous is not None and no_previous:
        raise UserError("--previous and --no-previous: give one of them")
    loaded = load_recipe(recipe)
    options = BuildOptions(
        tag=tag, cache_dir=usable_folder(cache_dir or default_cache_dir(), "--cache-dir"),
        out_dir=usable_folder(out_dir or Path("out") / loaded.name, "--out-dir"),
        source_date_epoch=(source_date_epoch if source_date_epoch is not None
                           else _env_epoch()),
        with_init_python=not no_init_python, image_format=image_format,
        previous=previous, keep_tagged=not no_previous, delta_from=delta_from)
    if build_id:
        options = dataclasses.replace(options, build_id=build_id)
    started = time.monotonic()
    with interruptible("build interrupted: nothing was tagged; the working container and "
                       "temporary image were removed"), \
            console.status(f"building {options.tag or loaded.reference}") as status:
        result = build(loaded, options, stage_reporter(console, status))
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2))
    _summary(console, result, time.monotonic() - started)


def _summary(console: Console, result: BuildResult, seconds: float) -> None:
    console.print(f"[bold]{result.reference}[/] {result.image_id[:12]}  "
                  f"{result.packages} packages, {result.rootfs_bytes / 2**20:.1f} MiB unpacked, "
                  f"{result.stripped_bytes / 2**20:.1f} MiB stripped, {seconds:.0f}s")
    for change in result.changes:
        console.print(f"changed: {change.name} {change.before or '(new)'} → "
                      f"{change.after or '(removed)'}, in {change.touches}")
    if result.layer_note or result.previous:
        console.print(f"layers: {result.layer_note or 'kept'}"
                      + (f" (previous image {result.previous})" if result.previous else ""))
    if result.config_tools and result.config_tools.packages:
        console.print(f"config tools: {result.config_tools.note()}")
    console.print(f"manifest {result.manifest_path}  sbom {result.sbom_path}")
