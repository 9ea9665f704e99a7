"""The runtime view of every image monoimage commits (pure): entrypoint, ports, labels.

The golden image and the layered comparators' images are configured by the same rules: the
init as entrypoint, the PATH, the OCI labels and their annotation twins; they differ in what
their labels say the image holds. `tools/buildah.configure` applies a config to a container.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from monoimage.image import (
    ENTRYPOINT,
    HEALTH_CMD,
    LABEL_CAPABILITIES,
    LABEL_CREATED,
    LABEL_DESCRIPTION,
    LABEL_DEVICES,
    LABEL_HEALTH_CMD,
    LABEL_HOST_MOUNTS,
    LABEL_IPC,
    LABEL_LAYER_PLAN,
    LABEL_MANIFEST_DIGEST,
    LABEL_MEMORY,
    LABEL_NETWORK,
    LABEL_PACKAGER,
    LABEL_PACKAGES_DIGEST,
    LABEL_PID,
    LABEL_PIDS_LIMIT,
    LABEL_PRIVILEGED,
    LABEL_READ_ONLY,
    LABEL_RECIPE_DIGEST,
    LABEL_SERVICE_PORTS,
    LABEL_SERVICES,
    LABEL_SOURCE,
    LABEL_STRATEGY,
    LABEL_SYSCTLS,
    LABEL_TITLE,
    LABEL_VERSION,
    PATH,
)
from monoimage.plan.resolution import ResolvedPackage
from monoimage.recipe.model import Recipe, Service

BASE_PART = "base"  # the name of a layered strategy's base image, beside its services'


@dataclass(frozen=True)
class ImageConfig:
    """What `buildah config` sets: the runtime view of the image."""

    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    workingdir: str = "/"
    ports: tuple[str, ...] = ()  # "1883/tcp"
    volumes: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    stop_signal: str = "SIGTERM"
    healthcheck: tuple[str, ...] | None = None  # kept only in docker format
    healthcheck_interval: str = "30s"
    created_by: str = "monoimage build"


def golden_image_config(recipe: Recipe, *, manifest_digest: str, source_date_epoch: int,
                        image_format: str = "oci", layer_record: str | None = None
                        ) -> ImageConfig:
    """Entrypoint, ports, volumes, labels and annotations of the golden image.

    OCI image configs have no HEALTHCHECK (buildah drops it outside docker format), so the
    health command also travels as a label that `boot` and `host` turn into --health-cmd.
    `layer_record` (layers by package: `plan/layer_record.py`) is a label only: as an
    annotation it would grow the manifest every site fetches on every update.
    """
    labels = _common_labels(recipe, source_date_epoch) | {
        LABEL_TITLE: recipe.name,
        LABEL_DESCRIPTION:
            f"monoimage golden image: {', '.join(s.name for s in recipe.services)}",
        LABEL_RECIPE_DIGEST: recipe.digest,
        LABEL_MANIFEST_DIGEST: manifest_digest,
        LABEL_SERVICES: ",".join(s.name for s in recipe.services),
    }
    if recipe.capabilities:
        labels[LABEL_CAPABILITIES] = ",".join(recipe.capabilities)
    labels.update(runtime_labels(recipe))
    config = _config(labels, ports=tuple(str(p) for p in recipe.ports), volumes=recipe.volumes,
                     healthcheck=HEALTH_CMD if image_format == "docker" else None)
    if layer_record is None:
        return config
    return replace(config, labels=tuple(sorted((*config.labels,
                                                (LABEL_LAYER_PLAN, layer_record)))))


def layered_image_config(recipe: Recipe, strategy: str, service: Service | None,
                         packages: Sequence[ResolvedPackage], *, source_date_epoch: int
                         ) -> ImageConfig:
    """Entrypoint, ports, volumes and labels of one layered comparator image.

    Labels name what the image holds (its pinned packages' digest), not the recipe file nor the
    local tag: a day-2 rebuild of an image whose packages did not change gives the same config,
    hence the same manifest digest, and a site does not pull it again.
    """
    part = service.name if service else BASE_PART
    pins = "".join(f"{p.name}={p.version}\n" for p in sorted(packages, key=lambda p: p.name))
    labels = _common_labels(recipe, source_date_epoch) | {
        LABEL_TITLE: f"{recipe.name}-{strategy}-{part}",
        LABEL_DESCRIPTION: f"monoimage {strategy} comparator: "
                           + (f"service {service.name}" if service else "base image"),
        LABEL_PACKAGES_DIGEST: "sha256:" + hashlib.sha256(pins.encode()).hexdigest(),
        LABEL_STRATEGY: strategy,
        LABEL_SERVICES: service.name if service else "",
    }
    return _config(labels, ports=tuple(str(p) for p in service.ports) if service else (),
                   volumes=service.volumes if service else (),
                   stop_signal=service.stop_signal if service else "SIGTERM",
                   created_by=f"monoimage footprint ({strategy})")


def runtime_labels(recipe: Recipe) -> dict[str, str]:
    """What `boot` reads back from the image: which service owns which port, and the limits.

    Service ports: `svc=53/udp,53/tcp;svc2=6379/tcp`, services in recipe order, each one's
    ports as declared; services without ports are left out.
    """
    runtime = recipe.runtime
    labels = {
        LABEL_MEMORY: runtime.memory,
        LABEL_PIDS_LIMIT: str(runtime.pids_limit),
        LABEL_READ_ONLY: "true" if runtime.read_only else "false",
    }
    labels.update(host_labels(recipe))
    owners = ";".join(f"{s.name}={','.join(str(p) for p in s.ports)}"
                      for s in recipe.services if s.ports)
    if owners:
        labels[LABEL_SERVICE_PORTS] = owners
    return labels


def host_labels(recipe: Recipe) -> dict[str, str]:
    """The host integration of `runtime:` as labels, each only when asked for (an image that
    asks for none keeps the labels, hence the digest, it had before they existed)."""
    runtime = recipe.runtime
    labels = {label: "host" for label, mode in ((LABEL_NETWORK, runtime.network),
                                                 (LABEL_PID, runtime.pid),
                                                 (LABEL_IPC, runtime.ipc)) if mode == "host"}
    if runtime.privileged:
        labels[LABEL_PRIVILEGED] = "true"
    if runtime.devices:
        labels[LABEL_DEVICES] = ",".join(runtime.devices)
    if runtime.host_mounts:
        labels[LABEL_HOST_MOUNTS] = ",".join(
            f"{m.source}:{m.target}:{'ro' if m.read_only else 'rw'}" for m in runtime.host_mounts)
    if runtime.sysctls:
        labels[LABEL_SYSCTLS] = json.dumps(dict(runtime.sysctls), sort_keys=True)
    return labels


def _common_labels(recipe: Recipe, source_date_epoch: int) -> dict[str, str]:
    created = datetime.fromtimestamp(source_date_epoch, UTC)
    return {LABEL_VERSION: recipe.tag, LABEL_CREATED: created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            LABEL_SOURCE: recipe.source, LABEL_PACKAGER: recipe.distro.packager.value,
            LABEL_HEALTH_CMD: " ".join(HEALTH_CMD)}


def _config(labels: dict[str, str], *, ports: tuple[str, ...], volumes: tuple[str, ...],
            stop_signal: str = "SIGTERM", healthcheck: tuple[str, ...] | None = None,
            created_by: str = "monoimage build") -> ImageConfig:
    pairs = tuple(sorted(labels.items()))
    return ImageConfig(entrypoint=ENTRYPOINT, env=(("PATH", PATH),), workingdir="/",
                       ports=ports, volumes=volumes, labels=pairs, annotations=pairs,
                       stop_signal=stop_signal, healthcheck=healthcheck, created_by=created_by)
