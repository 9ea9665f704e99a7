"""What an edge host runs and where its files go: the small-host `ContainerSpec`, the names of
the units and files made of it, the directories they live in, and the podman version targeted.

Pure: names and paths only; the renderers beside this module write the files' text.
"""

from __future__ import annotations

from monoimage.errors import UserError
from monoimage.plan.run_profile import (
    ContainerSpec,
    SecretMount,
    container_spec,
    rewrite_registry,
    split_domain,
)
from monoimage.recipe.model import Recipe

PodmanVersion = tuple[int, int]
QUADLET_FIRST: PodmanVersion = (4, 4)

PODMAN = "/usr/bin/podman"
QUADLET_DIR = "/etc/containers/systemd"
UNIT_DIR = "/etc/systemd/system"
SITE_DIR = "/etc/monoimage"
REGISTRIES_DIR = "/etc/containers/registries.conf.d"


def parse_podman_version(text: str, quadlet: bool = True) -> PodmanVersion:
    """`4.4` or `5.2.1` as (major, minor); with `quadlet` (a Quadlet file is written, alone or
    inside Ignition and Butane), at least 4.4. A plain systemd unit runs on older podman."""
    parts = text.strip().split(".")
    try:
        version = (int(parts[0]), int(parts[1]) if len(parts) > 1 else 0)
    except ValueError:
        raise UserError(f"--podman-version {text!r}: give MAJOR.MINOR, e.g. 4.4") from None
    if quadlet and version < QUADLET_FIRST:
        raise UserError(f"--podman-version {text}: Quadlet needs podman 4.4 or newer; use "
                        f"--format systemd for older podman")
    return version


def host_spec(recipe: Recipe, image: str | None = None, registry: str | None = None,
              secrets: tuple[str, ...] = ()) -> ContainerSpec:
    """The small-host spec an edge host runs: named state volumes, the site values file,
    podman auto-update (`registry` for an image from a registry, `local` otherwise), and
    `secrets` (site value names) from podman secrets called `<name>-<secret>`."""
    reference = image or recipe.reference
    if registry is not None:
        reference = rewrite_registry(reference, registry)
    domain, _ = split_domain(reference)
    policy = "local" if domain in (None, "localhost") else "registry"
    mounts = tuple(SecretMount(f"{recipe.name}-{s}", s) for s in secrets)
    return container_spec(recipe, image=reference, profile="small-host",
                          env_files=(env_file_path(recipe.name),), secrets=mounts,
                          auto_update=policy)


def quadlet_name(spec: ContainerSpec) -> str:
    return f"{spec.name}.container"


def quadlet_service(spec: ContainerSpec) -> str:
    """The unit Quadlet's generator makes of the `.container` file."""
    return f"{spec.name}.service"


def plain_unit_name(spec: ContainerSpec) -> str:
    """The plain unit has its own name: the same name in /etc/systemd/system would mask the
    unit Quadlet generates."""
    return f"{spec.name}-podman.service"


def env_file_path(name: str) -> str:
    """Where the host keeps the site values of container `name` (0600)."""
    return f"{SITE_DIR}/{name}.env"


def mirror_conf_name(spec: ContainerSpec) -> str:
    return f"50-monoimage-{spec.name}.conf"
