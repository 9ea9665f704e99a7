"""The layered comparators, built for real with buildah the way Kolla builds its images.

`plan_layered` (plan/comparator_plan.py) cuts the golden image's pinned closure into a base and one child per
service; this module builds that plan:

- the base image comes from the packager, like the golden image: the base subset of the same
  Resolution installed in one transaction into an empty root, stripped by the same rules, with
  monoimage-init's program in it (as Kolla's base carries kolla_start);
- each child is `FROM` the base: a working container over the base image in which the
  service's own pins are installed *on top of it*. apt: `apt-get install name=version…` runs
  inside the container (tools/packagers/apt_child.py); dnf: the host's
  `dnf --installroot=<the container's mount>` installs the exact NEVRs. Then the same strip
  rules, and the child's entrypoint: monoimage-init over a service table holding only its own
  service;
- every image is committed with the golden image's reproducible flags (fixed `--timestamp`,
  `--omit-history`, `--identity-label=false`) but without `--squash`: a child is the base's
  layer plus one layer of its own, and an unchanged layer keeps its digest on a rebuild.

Atomic like the golden build: every image is committed under a temporary name and tagged only
when the whole strategy is built; working containers and temporary images go on any failure.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from monoimage.pipeline.install_init import add_init_program, add_service_table, compile_init
from monoimage.pipeline.rootfs import check_installed, install_root, strip_root
from monoimage.pipeline.stages import Progress, Stages
from monoimage.pipeline.workspace import Workspace, workspace
from monoimage.plan.comparator_plan import LayeredPlan, LayeredStrategy, plan_layered
from monoimage.plan.image_config import BASE_PART, layered_image_config
from monoimage.plan.resolution import Resolution, ResolvedPackage
from monoimage.plan.strip_rules import StripRule
from monoimage.recipe.model import Recipe, Service
from monoimage.recipe.versions import Family
from monoimage.tools import buildah
from monoimage.tools.cache_dir import default_cache_dir
from monoimage.tools.packagers import packager_for
from monoimage.tools.packagers.apt import AptRoot, snapshot_root
from monoimage.tools.packagers.apt_child import install_in_container
from monoimage.tools.packagers.cache import APT_ARCHIVES, deb_file_names, private_cache

# What mmdebstrap removes after it installed the golden image and the bases (its cleanup/run
# and cleanup/reproducible steps): apt-get in a child leaves the same files behind. (dnf needs
# nothing beyond the strip rules, which drop its transaction history.)
INSTALLER_CLEANUP = {
    Family.APT: (
        StripRule("installer leftovers", (
            "var/log/dpkg.log", "var/log/apt/history.log", "var/log/apt/term.log",
            "var/log/alternatives.log", "var/log/apt/eipp.log.xz",
            "var/cache/ldconfig/aux-cache", "var/lib/dbus/machine-id")),
        StripRule("run leftovers", ("run/*",), keep=("run/lock",)),
    ),
    Family.DNF: (),
}


@dataclass(frozen=True)
class LayeredOptions:
    """How to build the comparators; the defaults match `BuildOptions`."""

    tag: str  # the tag of every image: localhost/<recipe>-<strategy>-<part>:<tag>
    cache_dir: Path = field(default_factory=default_cache_dir)
    source_date_epoch: int = 0


@dataclass(frozen=True)
class LayeredImages:
    """The images one layered strategy ships: the base, then one child per service."""

    strategy: LayeredStrategy
    base: str
    children: tuple[tuple[str, str], ...]  # (service, reference), in the recipe's order

    @property
    def references(self) -> tuple[str, ...]:
        return (self.base, *(ref for _, ref in self.children))


def image_reference(recipe: Recipe, strategy: LayeredStrategy, part: str, tag: str) -> str:
    """`localhost/<recipe>-<strategy>-<part>:<tag>`; `part` is "base" or a service name."""
    return f"localhost/{recipe.name}-{strategy}-{part}:{tag}"


def build_layered(recipe: Recipe, resolution: Resolution, strategy: LayeredStrategy,
                  options: LayeredOptions, progress: Progress | None = None) -> LayeredImages:
    """Build the base and every child of `strategy` from `resolution`; tag them on success."""
    plan = plan_layered(resolution, [s.name for s in recipe.services], strategy)
    stages = Stages(progress)
    token = secrets.token_hex(6)
    with workspace(token) as work, ExitStack() as private:
        with stages.stage(f"{strategy} base"):
            base_tmp = _build_base(recipe, resolution, plan, options, work)
        # apt: one APT root of this run's own (fresh lists, a snapshot of the shared root
        # taken under its lock) serves every child's install
        apt_root = (private.enter_context(snapshot_root(recipe, options.cache_dir, token))
                    if recipe.distro.packager is Family.APT
                    and any(c.packages for c in plan.children) else None)
        children = []
        for child in plan.children:
            with stages.stage(f"{strategy} {child.service}"):
                ref = _build_child(recipe, resolution, plan, recipe.service(child.service),
                                   child.packages, base_tmp, options, work, apt_root)
            children.append((child.service, ref))
        final = LayeredImages(
            strategy, image_reference(recipe, strategy, BASE_PART, options.tag),
            tuple((name, image_reference(recipe, strategy, name, options.tag))
                  for name, _ in children))
        for temporary, reference in zip((base_tmp, *(ref for _, ref in children)),
                                        final.references, strict=True):
            buildah.tag(temporary, reference)
    return final


def _build_base(recipe: Recipe, resolution: Resolution, plan: LayeredPlan,
                options: LayeredOptions, work: Workspace) -> str:
    """The base, by the golden image's own stages: rootfs, strip, the init's program."""
    packager = packager_for(recipe.distro.packager)
    container = work.container("scratch")
    root = buildah.mount(container)
    subset = dataclasses.replace(resolution, packages=plan.base)
    installed = install_root(recipe, packager, subset, root, cache_dir=options.cache_dir,
                             token=container, source_date_epoch=options.source_date_epoch,
                             what="a layered image's packages")
    strip_root(recipe, packager, root, installed, cache_dir=options.cache_dir,
               before=INSTALLER_CLEANUP[recipe.distro.packager])
    add_init_program(root)
    compile_init(root)
    return _commit(recipe, plan.strategy, None, subset.packages, container, options, work)


def _build_child(recipe: Recipe, resolution: Resolution, plan: LayeredPlan, service: Service,
                 packages: tuple[ResolvedPackage, ...], base: str, options: LayeredOptions,
                 work: Workspace, apt_root: AptRoot | None) -> str:
    """One service's image: its own pins installed on top of the base, then the same strip."""
    packager = packager_for(recipe.distro.packager)
    container = work.container(base)
    root = buildah.mount(container)
    if packages:
        with private_cache(options.cache_dir, container,
                           deb_file_names(packages)) as cache:
            if apt_root is not None:
                install_in_container(recipe, apt_root, container, root, packages,
                                     cache / APT_ARCHIVES, pins=resolution.packages,
                                     source_date_epoch=options.source_date_epoch)
            else:
                subset = dataclasses.replace(resolution, packages=packages)
                packager.install(recipe, subset, root, cache_dir=cache,
                                 source_date_epoch=options.source_date_epoch)
    wanted = tuple(sorted((*plan.base, *packages), key=lambda p: p.name))
    installed = packager.list_installed(root) if wanted else ()
    check_installed(wanted, installed, what="a layered image's packages")
    strip_root(recipe, packager, root, installed, cache_dir=options.cache_dir,
               before=INSTALLER_CLEANUP[recipe.distro.packager])
    add_service_table(root, _single_service_recipe(recipe, plan.strategy, service))
    return _commit(recipe, plan.strategy, service, wanted, container, options, work)


def _commit(recipe: Recipe, strategy: LayeredStrategy, service: Service | None,
            packages: Sequence[ResolvedPackage], container: str, options: LayeredOptions,
            work: Workspace) -> str:
    """Configure and commit the container's new layer on top of its image (no squash)."""
    buildah.umount(container)
    buildah.configure(container, layered_image_config(
        recipe, strategy, service, packages, source_date_epoch=options.source_date_epoch))
    return work.commit(container, timestamp=options.source_date_epoch)


def _single_service_recipe(recipe: Recipe, strategy: LayeredStrategy, service: Service) -> Recipe:
    """The recipe as one child sees it: its own service; ordering across images is the host's."""
    alone = dataclasses.replace(service, depends_on=())
    return dataclasses.replace(recipe, name=f"{recipe.name}-{strategy}-{service.name}",
                               services=(alone,))
