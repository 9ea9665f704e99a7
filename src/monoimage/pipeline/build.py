"""The build pipeline: resolve → rootfs → strip → init → manifest → config → commit.

Each stage takes the previous stage's value; the pipeline is reproducible by default (fixed
SOURCE_DATE_EPOCH, deterministic files, buildah commit without history) and atomic (a temporary
image name, the real tag only on success, every working container removed on any failure).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from monoimage.errors import UserError
from monoimage.image import (
    ENTRYPOINT,
    HEALTH_CMD,
    IMAGE_PYTHON,
    INIT_LAUNCHER,
    INIT_LIB,
    INIT_PACKAGE,
    LABEL_CAPABILITIES,
    LABEL_CREATED,
    LABEL_DESCRIPTION,
    LABEL_HEALTH_CMD,
    LABEL_MANIFEST_DIGEST,
    LABEL_MEMORY,
    LABEL_PACKAGER,
    LABEL_PIDS_LIMIT,
    LABEL_READ_ONLY,
    LABEL_RECIPE_DIGEST,
    LABEL_SERVICE_PORTS,
    LABEL_SERVICES,
    LABEL_SOURCE,
    LABEL_TITLE,
    LABEL_VERSION,
    MANIFEST_PATH,
    PATH,
    SBOM_PATH,
    TABLE_PATH,
)
from monoimage.pipeline.layer_commit import commit_layers, split_root
from monoimage.pipeline.strip import apply_strip, remove_build_cache, strip_rules
from monoimage.plan.layer_plan import plan_layers
from monoimage.plan.merge import plan
from monoimage.plan.sbom import digest, manifest, spdx, to_json
from monoimage.plan.service_table import service_table_text, template_target
from monoimage.recipe.model import Recipe
from monoimage.tools import buildah
from monoimage.tools.packagers.base import (
    InstalledPackage,
    Resolution,
    ResolvedPackage,
    packager_for,
    tail,
)
from monoimage.tools.packagers.cache import deb_file_name, private_cache

INIT_SOURCE = Path(__file__).parents[1] / "init"
# -I (isolated): no PYTHON* variable, user site or script folder reaches PID 1; the launcher
# puts the init's own folder on sys.path itself.
LAUNCHER_TEXT = ('#!/usr/bin/python3 -I\nimport sys; sys.path.insert(0, "/usr/lib/monoimage"); '
                 'from monoimage_init.__main__ import main; sys.exit(main())\n')
TEMP_PREFIX = "localhost/monoimage-tmp-"
CONTAINER_PREFIX = "monoimage-build-"
STAGES = ("resolve", "rootfs", "strip", "init", "manifest", "layers", "config", "commit")


@dataclass(frozen=True)
class BuildOptions:
    """How to build; defaults give a reproducible OCI image tagged as the recipe says."""

    tag: str | None = None  # full reference; default the recipe's localhost/NAME:TAG
    cache_dir: Path = field(default_factory=lambda: default_cache_dir())
    out_dir: Path | None = None  # default ./out/NAME
    source_date_epoch: int = 0
    with_init_python: bool = True  # False: the image has no interpreter for monoimage-init
    image_format: str = "oci"  # "docker" also keeps HEALTHCHECK
    build_id: str = field(default_factory=lambda: secrets.token_hex(6))  # names temporaries


@dataclass(frozen=True)
class StageEvent:
    stage: str
    state: str  # "start" | "done"
    detail: str = ""
    elapsed: float = 0.0


@dataclass(frozen=True)
class LayerSummary:
    """One layer of the built image: its plan name, the packages whose files it holds, and the
    bytes of its regular files."""

    name: str
    packages: tuple[str, ...]
    bytes: int


@dataclass(frozen=True)
class BuildResult:
    reference: str
    image_id: str
    digest: str
    rootfs_bytes: int  # apparent size of every file in the image, unpacked
    packages: int
    download_bytes: int
    installed_bytes: int  # what the package databases say (before strip)
    stripped_bytes: int
    manifest_path: Path
    sbom_path: Path
    manifest_digest: str
    stage_seconds: tuple[tuple[str, float], ...]
    layers: tuple[LayerSummary, ...] = ()  # bottom first

    def as_json(self) -> dict[str, object]:
        return {
            "image": self.reference, "image_id": self.image_id, "digest": self.digest,
            "size": self.rootfs_bytes, "packages": self.packages,
            "download_bytes": self.download_bytes, "installed_bytes": self.installed_bytes,
            "stripped_bytes": self.stripped_bytes, "manifest": str(self.manifest_path),
            "sbom": str(self.sbom_path), "manifest_digest": self.manifest_digest,
            "stages": dict(self.stage_seconds),
            "layers": [{"name": x.name, "packages": list(x.packages), "bytes": x.bytes}
                       for x in self.layers],
        }


Progress = Callable[[StageEvent], None]


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "monoimage"


def source_date_epoch_from_env(default: int = 0) -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    if not value:
        return default
    if not value.isdigit():
        raise UserError(f"SOURCE_DATE_EPOCH: expected seconds since 1970, got '{value}'")
    return int(value)


def resolve(recipe: Recipe, *, cache_dir: Path, with_init_python: bool = True) -> Resolution:
    """The build's first stage, also what `monoimage plan --resolve` prints."""
    merged = plan(recipe, with_init=with_init_python)
    return packager_for(recipe.distro.packager).resolve(recipe, merged.packages,
                                                        cache_dir=cache_dir)


def build(recipe: Recipe, options: BuildOptions, progress: Progress | None = None
          ) -> BuildResult:
    """Build the golden image of `recipe`; tag it only if every stage succeeded."""
    timer = _Stages(progress or (lambda event: None))
    reference = options.tag or recipe.reference
    out_dir = options.out_dir or Path("out") / recipe.name
    packager = packager_for(recipe.distro.packager)

    with timer.stage("resolve") as note:
        resolution = resolve(recipe, cache_dir=options.cache_dir,
                             with_init_python=options.with_init_python)
        plan_layers(recipe.layering, resolution.packages)
        note(f"{len(resolution.packages)} packages, "
             f"{_mib(resolution.download_size)} download, "
             f"{_mib(resolution.installed_size)} installed")

    token = options.build_id
    temporary = f"{TEMP_PREFIX}{token}"
    containers = [buildah.from_scratch(f"{CONTAINER_PREFIX}{token}")]
    images: list[str] = []
    try:
        staging = containers[0]
        root = buildah.mount(staging)
        with timer.stage("rootfs") as note:
            # A private copy of the shared cache: concurrent builds never write one folder.
            with private_cache(options.cache_dir, token,
                               [deb_file_name(p) for p in resolution.packages]) as cache:
                packager.install(recipe, resolution, root, cache_dir=cache,
                                 source_date_epoch=options.source_date_epoch)
            installed = packager.list_installed(root)
            check_installed(resolution.packages, installed)
            note(f"{len(installed)} packages installed")
        with timer.stage("strip") as note:
            if recipe.strip.packages:
                packager.remove(root, recipe.strip.packages)
            stripped = apply_strip(root, strip_rules(recipe))
            leaked = remove_build_cache(root, options.cache_dir)
            stripped += (leaked,) if leaked else ()
            installed = packager.list_installed(root)
            note(f"{_mib(sum(s.bytes for s in stripped))} removed")
        with timer.stage("init") as note:
            add_init(root, recipe)
            compile_init(root)
            note(f"{len(recipe.services)} services, "
                 f"{sum(len(s.templates) for s in recipe.services)} templates")
        with timer.stage("manifest") as note:
            manifest_doc = manifest(recipe, resolution, installed, stripped,
                                    source_date_epoch=options.source_date_epoch)
            manifest_text = to_json(manifest_doc)
            manifest_digest = digest(manifest_text)
            sbom_text = to_json(spdx(manifest_doc, manifest_digest=manifest_digest))
            _write(root, MANIFEST_PATH, manifest_text, 0o644)
            _write(root, SBOM_PATH, sbom_text, 0o644)
            rootfs_bytes = _tree_bytes(root)
            note(f"{_mib(rootfs_bytes)} image root")
        if recipe.layering.policy == "single":
            top = staging
            layers: tuple[LayerSummary, ...] = (
                LayerSummary("rootfs", tuple(p.name for p in installed), rootfs_bytes),)
        else:
            with timer.stage("layers") as note:
                _plan, planned = split_root(root, recipe, resolution, installed, is_init_path(
                    recipe))
                top = commit_layers(root, planned, container=f"{CONTAINER_PREFIX}{token}-layer",
                                    image=f"{TEMP_PREFIX}{token}-layer",
                                    timestamp=options.source_date_epoch,
                                    image_format=options.image_format, containers=containers,
                                    images=images)
                layers = tuple(LayerSummary(x.name, x.packages, x.bytes) for x in planned)
                note(f"{len(planned)} layers")
        with timer.stage("config"):
            if top == staging:
                buildah.umount(staging)
            buildah.configure(top, image_config(recipe, options, manifest_digest))
        with timer.stage("commit") as note:
            image_id = buildah.commit(top, temporary, timestamp=options.source_date_epoch,
                                      image_format=options.image_format,
                                      squash=recipe.layering.policy == "single")
            images.append(temporary)
            buildah.tag(temporary, reference)
            image_digest = str(buildah.inspect_image(reference).get("FromImageDigest", ""))
            note(f"{reference} {image_id[:12]}")
    finally:
        _cleanup(containers, images)

    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / "manifest.json"
    sbom_path = out_dir / "sbom.spdx.json"
    manifest_path.write_text(manifest_text)
    sbom_path.write_text(sbom_text)
    return BuildResult(
        reference=reference, image_id=image_id, digest=image_digest,
        rootfs_bytes=rootfs_bytes, packages=len(installed),
        download_bytes=resolution.download_size, installed_bytes=resolution.installed_size,
        stripped_bytes=sum(s.bytes for s in stripped), manifest_path=manifest_path,
        sbom_path=sbom_path, manifest_digest=manifest_digest,
        stage_seconds=tuple(timer.seconds.items()), layers=layers)


def image_config(recipe: Recipe, options: BuildOptions, manifest_digest: str
                 ) -> buildah.ImageConfig:
    """Entrypoint, ports, volumes, labels and annotations of the golden image.

    OCI image configs have no HEALTHCHECK (buildah drops it outside docker format), so the
    health command also travels as a label that `boot` and `host` turn into --health-cmd.
    """
    created = datetime.fromtimestamp(options.source_date_epoch, UTC)
    labels = {
        LABEL_TITLE: recipe.name,
        LABEL_VERSION: recipe.tag,
        LABEL_CREATED: created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        LABEL_SOURCE: recipe.source,
        LABEL_DESCRIPTION:
            f"monoimage golden image: {', '.join(s.name for s in recipe.services)}",
        LABEL_RECIPE_DIGEST: recipe.digest,
        LABEL_MANIFEST_DIGEST: manifest_digest,
        LABEL_PACKAGER: recipe.distro.packager.value,
        LABEL_SERVICES: ",".join(s.name for s in recipe.services),
        LABEL_HEALTH_CMD: " ".join(HEALTH_CMD),
    }
    if recipe.capabilities:
        labels[LABEL_CAPABILITIES] = ",".join(recipe.capabilities)
    labels.update(runtime_labels(recipe))
    pairs = tuple(sorted(labels.items()))
    return buildah.ImageConfig(
        entrypoint=ENTRYPOINT, env=(("PATH", PATH),), workingdir="/",
        ports=tuple(str(p) for p in recipe.ports), volumes=recipe.volumes,
        labels=pairs, annotations=pairs, stop_signal="SIGTERM",
        healthcheck=HEALTH_CMD if options.image_format == "docker" else None)


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
    owners = ";".join(f"{s.name}={','.join(str(p) for p in s.ports)}"
                      for s in recipe.services if s.ports)
    if owners:
        labels[LABEL_SERVICE_PORTS] = owners
    return labels


def init_paths(recipe: Recipe) -> tuple[str, ...]:
    """What `add_init` writes: the init's folder (a tree), launcher, table, template links."""
    links = tuple(t.dest for s in recipe.services for t in s.templates)
    return (INIT_LIB, INIT_LAUNCHER, TABLE_PATH, *links)


def is_init_path(recipe: Recipe) -> Callable[[str], bool]:
    """Whether a path of the image belongs to the top (init) layer."""
    roots = init_paths(recipe)
    return lambda path: any(path == r or path.startswith(r + "/") for r in roots)


def add_init(root: Path, recipe: Recipe) -> None:
    """monoimage-init (package + launcher), the service table, and one symlink per template."""
    package = root / INIT_PACKAGE.lstrip("/")
    if package.exists():
        shutil.rmtree(package)
    package.mkdir(parents=True)
    for source in sorted(INIT_SOURCE.glob("*.py")):
        _write(root, f"{INIT_PACKAGE}/{source.name}", source.read_text(), 0o644)
    _write(root, INIT_LAUNCHER, LAUNCHER_TEXT, 0o755)
    add_service_table(root, recipe)


def add_service_table(root: Path, recipe: Recipe) -> None:
    """The service table, and a link from each template's dest to where the init renders it."""
    _write(root, TABLE_PATH, service_table_text(recipe), 0o644)
    for service in recipe.services:
        for template in service.templates:
            link = root / template.dest.lstrip("/")
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or link.is_file():
                link.unlink()
            elif link.exists():
                raise UserError(f"{service.source}: template dest {template.dest} is a "
                                f"directory in the image")
            link.symlink_to(template_target(template.dest))


def compile_init(root: Path) -> bool:
    """Byte-compile the init package with the image's own python; False if it has none.

    A read-only root cannot cache bytecode, so without this every start recompiles the init.
    The image's interpreter writes its own magic number; `unchecked-hash` .pyc files hold a
    source hash, not an mtime, and a fixed hash seed orders set constants the same way on
    every build, so the image stays reproducible.
    """
    if not os.path.lexists(root / IMAGE_PYTHON.lstrip("/")):
        return False
    proc = subprocess.run(["chroot", str(root), IMAGE_PYTHON, "-m", "compileall", "-q",
                           "--invalidation-mode", "unchecked-hash", INIT_PACKAGE],
                          env=_CLEAN_PYTHON_ENV, capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise UserError(f"compiling monoimage-init with the image's python failed "
                        f"(exit {proc.returncode}):\n{tail(proc.stderr or proc.stdout, 15)}")
    return True


# PYTHONHASHSEED only works from the environment, which -I/-E would ignore: the environment is
# cleared instead, so no PYTHON* variable of the build host (PYTHONPYCACHEPREFIX…) leaks in.
_CLEAN_PYTHON_ENV = {"PATH": PATH, "PYTHONHASHSEED": "0", "LC_ALL": "C.UTF-8"}


def check_installed(wanted: Sequence[ResolvedPackage], installed: Sequence[InstalledPackage],
                    *, what: str = "the installed packages") -> None:
    """A root must hold exactly what was resolved for it: same names, same versions."""
    want = {(p.name, p.version) for p in wanted}
    have = {(p.name, p.version) for p in installed}
    if want != have:
        extra = ", ".join(f"{n}={v}" for n, v in sorted(have - want)) or "none"
        lacking = ", ".join(f"{n}={v}" for n, v in sorted(want - have)) or "none"
        raise UserError(f"{what} differ from the resolution (did the repositories change "
                        f"during the build?): extra {extra}; missing {lacking}")


def _cleanup(containers: list[str], images: list[str]) -> None:
    """Remove the working containers and temporary image names, whatever happened.

    Images go top first (a name, not the layers the tagged image still uses). A second Ctrl-C
    during cleanup would leave exactly what cleanup exists to remove: ignored.
    """
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: signals are not ours to manage
        previous = None
    try:
        _remove(containers, images)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _remove(containers: list[str], images: list[str]) -> None:
    for action, target in ([(buildah.remove_container, c) for c in reversed(containers)]
                           + [(buildah.remove_image, i) for i in reversed(images)]):
        try:
            action(target)
        except buildah.BuildahError:
            pass  # gone already (or never made): the error that brought us here is the one


def _write(root: Path, path: str, text: str, mode: int) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)


def _tree_bytes(root: Path) -> int:
    total = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


class _Stages:
    """Times named stages and reports their start and end to a progress callback."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[Callable[[str], None]]:
        details: list[str] = []
        start = time.monotonic()
        self.progress(StageEvent(name, "start"))
        yield details.append
        self.seconds[name] = round(time.monotonic() - start, 3)
        self.progress(StageEvent(name, "done", "; ".join(details), self.seconds[name]))

