"""The build pipeline: resolve → rootfs → strip → init → manifest → layers → config → commit.

Each stage takes the previous stage's value; the pipeline is reproducible by default (fixed
SOURCE_DATE_EPOCH, deterministic files, buildah commit without history) and atomic (a temporary
image name, the real tag only on success, every working container removed on any failure).
A build can take a `Resolution` instead of resolving (apko's build from a lock file): the
footprint run resolves once and builds every strategy from that one value.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from monoimage.errors import UserError
from monoimage.image import (
    MANIFEST_PATH,
    SBOM_PATH,
)
from monoimage.pipeline.golden_layers import (
    DeltaSummary,
    LayerSummary,
    StagedRoot,
    cut_layers,
)
from monoimage.pipeline.image_checks import check_accounts
from monoimage.pipeline.install_init import add_init, compile_init, is_init_path, write_file
from monoimage.pipeline.previous_image import PreviousImage, named_previous, tagged_previous
from monoimage.pipeline.rootfs import install_root, strip_root
from monoimage.pipeline.stages import Progress, Stages
from monoimage.pipeline.workspace import workspace
from monoimage.plan.config_tools import ConfigTools, config_tools, runtime_resolution
from monoimage.plan.image_config import ImageConfig, golden_image_config
from monoimage.plan.merge import plan
from monoimage.plan.resolution import InstalledPackage, Resolution
from monoimage.plan.sbom import digest, manifest, spdx, to_json
from monoimage.plan.update_impact import (
    PackageFacts,
    PackageImpact,
    facts_from_resolution,
    update_impact,
)
from monoimage.recipe.model import Recipe
from monoimage.tools import buildah
from monoimage.tools.cache_dir import default_cache_dir
from monoimage.tools.packagers import packager_for


@dataclass(frozen=True)
class BuildOptions:
    """How to build; defaults give a reproducible OCI image tagged as the recipe says."""

    tag: str | None = None  # full reference; default the recipe's localhost/NAME:TAG
    cache_dir: Path = field(default_factory=default_cache_dir)
    out_dir: Path | None = None  # default ./out/NAME
    source_date_epoch: int = 0
    with_init_python: bool = True  # False: the image has no interpreter for monoimage-init
    image_format: str = "oci"  # "docker" also keeps HEALTHCHECK
    build_id: str = field(default_factory=lambda: secrets.token_hex(6))  # names temporaries
    previous: str | None = None  # keep this image's layers (layering: packages)
    keep_tagged: bool = True  # without `previous`: keep the layers of the image under the tag
    delta_from: str | None = None  # this image's layers as they are, plus one delta layer


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
    previous: str | None = None  # the image whose layer plan this build kept
    layer_note: str = ""  # kept the previous plan, or why it planned from scratch
    delta: DeltaSummary | None = None  # a delta image: its one new layer
    changes: tuple[PackageImpact, ...] = ()  # against the previous image: who runs them
    config_tools: ConfigTools | None = None  # the recipe's config tools: kept or left out

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
            "previous": self.previous, "layer_note": self.layer_note,
            "delta": self.delta.as_json() if self.delta else None,
            "changes": [c.as_json() for c in self.changes],
            "config_tools": self.config_tools.as_json() if self.config_tools else None,
        }


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


def build(recipe: Recipe, options: BuildOptions, progress: Progress | None = None, *,
          resolution: Resolution | None = None) -> BuildResult:
    """Build the golden image of `recipe`; tag it only if every stage succeeded.

    `resolution`: install exactly this (resolved once by the caller) instead of resolving.
    """
    stages = Stages(progress)
    reference = options.tag or recipe.reference
    out_dir = options.out_dir or Path("out") / recipe.name
    packager = packager_for(recipe.distro.packager)
    previous, layer_note, delta = previous_image(recipe, options, reference)

    with stages.stage("resolve") as note:
        if resolution is None:
            resolution = resolve(recipe, cache_dir=options.cache_dir,
                                 with_init_python=options.with_init_python)
        tools = config_tools(recipe, resolution)
        resolution = runtime_resolution(resolution, tools)
        note(f"{len(resolution.packages)} packages, "
             f"{_mib(resolution.download_size)} download, "
             f"{_mib(resolution.installed_size)} installed"
             + (f"; {tools.note()}" if tools.packages else ""))

    with workspace(options.build_id) as work:
        staging = work.container("scratch")
        root = buildah.mount(staging)
        with stages.stage("rootfs") as note:
            installed = install_root(recipe, packager, resolution, root,
                                     cache_dir=options.cache_dir, token=options.build_id,
                                     source_date_epoch=options.source_date_epoch)
            note(f"{len(installed)} packages installed")
        with stages.stage("strip") as note:
            stripped = strip_root(recipe, packager, root, installed,
                                  cache_dir=options.cache_dir)
            installed = packager.list_installed(root)
            note(f"{_mib(sum(s.bytes for s in stripped))} removed")
        with stages.stage("init") as note:
            check_accounts(root, recipe)
            add_init(root, recipe)
            compile_init(root)
            note(f"{len(recipe.services)} services, "
                 f"{sum(len(s.templates) for s in recipe.services)} templates")
        with stages.stage("manifest") as note:
            manifest_doc = manifest(recipe, resolution, installed, stripped,
                                    source_date_epoch=options.source_date_epoch)
            manifest_text = to_json(manifest_doc)
            manifest_digest = digest(manifest_text)
            sbom_text = to_json(spdx(manifest_doc, manifest_digest=manifest_digest))
            write_file(root, MANIFEST_PATH, manifest_text, 0o644)
            write_file(root, SBOM_PATH, sbom_text, 0o644)
            rootfs_bytes = _tree_bytes(root)
            note(f"{_mib(rootfs_bytes)} image root")
        with stages.stage("layers") as note:
            staged = StagedRoot(staging, root, recipe, resolution, tuple(installed),
                                rootfs_bytes, is_init_path(recipe, root))
            cut = cut_layers(staged, work, previous, delta=delta,
                             timestamp=options.source_date_epoch,
                             image_format=options.image_format)
            layer_note = cut.note or layer_note
            note(f"{len(cut.layers)} layers" + (f"; {layer_note}" if layer_note else ""))
        with stages.stage("config"):
            if cut.top == staging:
                buildah.umount(staging)
            config = image_config(recipe, options, manifest_digest, cut.record)
            if cut.delta and previous:  # the previous image's labels that no longer apply
                buildah.unset_labels(cut.top, sorted(set(previous.labels)
                                                     - {key for key, _ in config.labels}))
            buildah.configure(cut.top, config)
        with stages.stage("commit") as note:
            temporary = work.temporary_image()
            image_id = buildah.commit(cut.top, temporary,
                                      timestamp=options.source_date_epoch,
                                      image_format=options.image_format, squash=cut.squash)
            buildah.tag(temporary, reference)
            image_digest = str(buildah.inspect_image(reference).get("FromImageDigest", ""))
            note(f"{reference} {image_id[:12]}")

    manifest_path = out_dir / "manifest.json"
    sbom_path = out_dir / "sbom.spdx.json"
    write_outputs(((manifest_path, manifest_text), (sbom_path, sbom_text)))
    return BuildResult(
        reference=reference, image_id=image_id, digest=image_digest,
        rootfs_bytes=rootfs_bytes, packages=len(installed),
        download_bytes=resolution.download_size, installed_bytes=resolution.installed_size,
        stripped_bytes=sum(s.bytes for s in stripped), manifest_path=manifest_path,
        sbom_path=sbom_path, manifest_digest=manifest_digest,
        stage_seconds=tuple(stages.seconds.items()), layers=cut.layers,
        previous=previous.reference if previous else None, layer_note=layer_note,
        delta=cut.delta, changes=_changes(recipe, previous, resolution, installed),
        config_tools=tools)


def _changes(recipe: Recipe, previous: PreviousImage | None, resolution: Resolution,
             installed: Sequence[InstalledPackage]) -> tuple[PackageImpact, ...]:
    """The packages whose versions differ from the previous image's, and who runs them."""
    if previous is None:
        return ()
    before = {name: PackageFacts(version) for name, version in previous.record.versions}
    after = facts_from_resolution(resolution, {p.name: p.version for p in installed})
    return update_impact(before, after, [s.name for s in recipe.services])


def previous_image(recipe: Recipe, options: BuildOptions, reference: str
                   ) -> tuple[PreviousImage | None, str, bool]:
    """The image whose layers the build keeps (checked before any work), a note, and whether
    the build is a delta over it (`--delta-from`, or `layering.updates: delta`)."""
    if options.delta_from is not None:
        if options.previous is not None:
            raise UserError("--previous and --delta-from: give one of them (a delta keeps "
                            "the layers of the image it starts from)")
        return named_previous("--delta-from", options.delta_from, recipe), "", True
    delta = recipe.layering.updates == "delta"
    if options.previous is not None:
        return named_previous("--previous", options.previous, recipe), "", delta
    if options.keep_tagged:
        found, note = tagged_previous(reference, recipe)
        return found, note, delta and found is not None
    return None, "", False


def image_config(recipe: Recipe, options: BuildOptions, manifest_digest: str,
                 layer_record: str | None = None) -> ImageConfig:
    """The golden image's config for these build options."""
    return golden_image_config(recipe, manifest_digest=manifest_digest,
                               source_date_epoch=options.source_date_epoch,
                               image_format=options.image_format, layer_record=layer_record)


def write_outputs(files: tuple[tuple[Path, str], ...],
                  done: str = "the image was built and tagged") -> None:
    """Write each (path, text) whole: a temporary file renamed over it, so two runs of one
    recipe at once leave one run's file, never a mix; a refused write is one UserError
    that says what was `done` already."""
    for path, text in files:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(text)
            temporary.replace(path)
        except OSError as err:
            temporary.unlink(missing_ok=True)
            raise UserError(f"{path}: cannot write it ({err.strerror}); {done}") from None


def _tree_bytes(root: Path) -> int:
    total = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"
