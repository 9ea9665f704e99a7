"""`monoimage host RECIPE`: Quadlet, systemd, Ignition and Butane artefacts for edge hosts."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import click

from monoimage.cli.arguments import reference_argument, usable_folder
from monoimage.errors import UserError
from monoimage.hosts.artefacts import FORMATS, Artefact, artefact_names, render_artefacts
from monoimage.hosts.spec import host_spec, parse_podman_version
from monoimage.recipe.load import load_recipe


@click.command("host")
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option("--image", help="Image reference to run (default: the recipe's, localhost/NAME:TAG).")
@click.option("--format", "format_", type=click.Choice([*FORMATS, "all"]), required=True,
              help="Which artefacts to write.")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Directory to write into: new (parents are made), empty, or holding only "
                   "these artefacts.")
@click.option("--registry", help="Pull from this registry (HOST[:PORT][/PATH]) instead of the "
                                 "image reference's own.")
@click.option("--mirror", help="Site-local mirror (HOST[:PORT][/PATH]) the host pulls through: "
                               "writes a registries.conf.d drop-in.")
@click.option("--podman-version", default="4.4", show_default=True,
              help="Oldest podman on the hosts: Quadlet keys newer than it go through "
                   "PodmanArgs=. Quadlet (also inside Ignition and Butane) needs 4.4; "
                   "--format systemd takes older podman too.")
@click.option("--secret", "secrets", multiple=True, metavar="NAME",
              help="Site value read from the podman secret <image name>-NAME (repeatable).")
def host_command(recipe: Path, image: str | None, format_: str, output: Path,
                 registry: str | None, mirror: str | None, podman_version: str,
                 secrets: tuple[str, ...]) -> None:
    """Write the artefacts that run RECIPE's image on a small container-OS host."""
    formats = FORMATS if format_ == "all" else (format_,)
    podman = parse_podman_version(podman_version, quadlet=formats != ("systemd",))
    if image is not None:
        reference_argument(image, "--image")
    usable_folder(output, "-o/--output")
    loaded = load_recipe(recipe)
    unknown = [s for s in secrets if s not in loaded.site_names]
    if unknown:
        raise UserError(f"--secret {unknown[0]}: not a site value of {loaded.name} "
                        f"(site values: {', '.join(loaded.site_names) or 'none'})")
    spec = host_spec(loaded, image=image, registry=registry, secrets=secrets)
    if registry is not None:
        reference_argument(spec.image, "--registry")
    artefacts = render_artefacts(spec, loaded, formats, podman, mirror)
    write_directory(output, artefacts, artefact_names(spec))
    for artefact in artefacts:
        click.echo(str(output / artefact.filename))


def write_directory(output: Path, artefacts: tuple[Artefact, ...],
                    replaceable: frozenset[str] = frozenset()) -> None:
    """Write every artefact into `output` at once: all files appear, or none do.

    The files are written into a temporary directory beside `output`, which then takes its
    place. An `output` holding anything but artefacts (`replaceable`: an earlier run's, of any
    format) is refused, so nothing of the user's is lost.
    """
    names = {a.filename for a in artefacts} | replaceable
    if output.exists() or output.is_symlink():
        if not output.is_dir() or output.is_symlink():
            raise UserError(f"{output}: exists and is not a directory")
        others = sorted(p.name for p in output.iterdir() if p.name not in names)
        if others:
            raise UserError(f"{output}: holds other files ({', '.join(others[:5])}"
                            f"{', …' if len(others) > 5 else ''}); give a new or empty directory")
    parent = output.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=parent))
    except OSError as err:
        raise UserError(f"{output}: cannot make it ({err.strerror})") from None
    try:
        for artefact in artefacts:
            path = staging / artefact.filename
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, artefact.mode)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(artefact.content)
            os.chmod(path, artefact.mode)
        os.chmod(staging, 0o755)
        _swap_into_place(staging, output)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        kept = "; the previous files are as they were" if output.is_dir() else ""
        raise UserError(f"{output}: cannot write the artefacts ({err.strerror}){kept}"
                        ) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _swap_into_place(staging: Path, output: Path) -> None:
    if not output.exists():
        os.rename(staging, output)
        return
    previous = output.with_name(f".{output.name}.previous-{os.getpid()}")
    os.rename(output, previous)
    try:
        os.rename(staging, output)
    except BaseException:
        os.rename(previous, output)
        raise
    shutil.rmtree(previous, ignore_errors=True)
