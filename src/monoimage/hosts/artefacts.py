"""The files `monoimage host` writes for the formats asked: each renderer's text, named and
given its mode, so that `cli/host.py` only writes them.

Pure: every function returns values.
"""

from __future__ import annotations

from dataclasses import dataclass

from monoimage.errors import UserError
from monoimage.hosts.ignition import (
    host_bundle,
    render_butane,
    render_ignition,
    render_mirror_conf,
    render_site_env,
)
from monoimage.hosts.quadlet import render_quadlet
from monoimage.hosts.spec import (
    QUADLET_FIRST,
    PodmanVersion,
    mirror_conf_name,
    plain_unit_name,
    quadlet_name,
)
from monoimage.hosts.systemd import render_systemd_unit
from monoimage.plan.run_profile import ContainerSpec
from monoimage.recipe.model import Recipe

FORMATS = ("quadlet", "systemd", "ignition", "butane")


@dataclass(frozen=True)
class Artefact:
    """One file `monoimage host` writes into its output directory."""

    filename: str
    content: str
    mode: int


def artefact_names(spec: ContainerSpec) -> frozenset[str]:
    """Every file name `render_artefacts` can write for `spec`, whatever the formats."""
    return frozenset({quadlet_name(spec), plain_unit_name(spec), f"{spec.name}.env",
                      mirror_conf_name(spec), f"{spec.name}.ign", f"{spec.name}.bu"})


def render_artefacts(spec: ContainerSpec, recipe: Recipe, formats: tuple[str, ...],
                     podman: PodmanVersion = QUADLET_FIRST,
                     mirror: str | None = None) -> tuple[Artefact, ...]:
    """The files for `formats` (a subset of FORMATS): the units come with the site values file
    (and the mirror drop-in) they need; Ignition and Butane carry everything inside."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise UserError(f"unknown format {unknown[0]!r}: choose from {', '.join(FORMATS)}")
    bundle = host_bundle(spec, recipe, podman, mirror)
    out: list[Artefact] = []
    if "quadlet" in formats:
        out.append(Artefact(quadlet_name(spec), render_quadlet(spec, recipe, podman), 0o644))
    if "systemd" in formats:
        out.append(Artefact(plain_unit_name(spec), render_systemd_unit(spec, recipe), 0o644))
    if "quadlet" in formats or "systemd" in formats:
        out.append(Artefact(f"{spec.name}.env", render_site_env(spec, recipe), 0o600))
        if mirror is not None:
            out.append(Artefact(mirror_conf_name(spec), render_mirror_conf(spec.image, mirror),
                                0o644))
    if "ignition" in formats:
        out.append(Artefact(f"{spec.name}.ign", render_ignition(bundle), 0o600))
    if "butane" in formats:
        out.append(Artefact(f"{spec.name}.bu", render_butane(bundle), 0o600))
    return tuple(out)
