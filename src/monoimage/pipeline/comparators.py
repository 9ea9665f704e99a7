"""The layered comparators, built for real with buildah the way Kolla builds its images.

`plan_layered` (layered.py) cuts the golden image's pinned closure into a base and one child per
service; this module builds that plan:

- the base image comes from the packager, like the golden image: the base subset of the same
  Resolution installed in one transaction into an empty root, stripped by the same rules, with
  monoimage-init's program in it (as Kolla's base carries kolla_start);
- each child is `FROM` the base: a working container over the base image in which the
  service's own pins are installed *on top of it*. apt: `apt-get install name=version…` runs
  inside the container (`buildah run`), with the private APT root's lists and sources and the
  shared .deb cache bind-mounted in, and `--no-download` (every .deb is fetched on the host
  first), so a child build neither updates lists nor touches the network. dnf: the host's
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
import hashlib
import os
import secrets
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
    LABEL_CREATED,
    LABEL_DESCRIPTION,
    LABEL_HEALTH_CMD,
    LABEL_PACKAGER,
    LABEL_PACKAGES_DIGEST,
    LABEL_SERVICES,
    LABEL_SOURCE,
    LABEL_STRATEGY,
    LABEL_TITLE,
    LABEL_VERSION,
)
from monoimage.pipeline.build import (
    CONTAINER_PREFIX,
    ENTRYPOINT,
    HEALTH_CMD,
    INIT_LAUNCHER,
    INIT_PACKAGE,
    INIT_SOURCE,
    LAUNCHER_TEXT,
    PATH,
    TEMP_PREFIX,
    Progress,
    StageEvent,
    add_service_table,
    check_installed,
    compile_init,
    default_cache_dir,
)
from monoimage.pipeline.strip import StripRule, apply_strip, remove_build_cache, strip_rules
from monoimage.plan.comparator_plan import LayeredPlan, Strategy, plan_layered
from monoimage.recipe.model import Recipe, Service
from monoimage.recipe.versions import Family
from monoimage.tools import buildah
from monoimage.tools.packagers.apt import AptRoot, prepare_root
from monoimage.tools.packagers.base import (
    InstalledPackage,
    Resolution,
    ResolvedPackage,
    packager_for,
    tail,
)
from monoimage.tools.packagers.cache import APT_ARCHIVES, deb_file_name, private_cache

BASE_PART = "base"
# Where a child's apt sees the host-side APT state while it installs (removed before commit).
APT_MOUNTS = "/run/monoimage-apt"
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

    strategy: Strategy
    base: str
    children: tuple[tuple[str, str], ...]  # (service, reference), in the recipe's order

    @property
    def references(self) -> tuple[str, ...]:
        return (self.base, *(ref for _, ref in self.children))


def image_reference(recipe: Recipe, strategy: Strategy, part: str, tag: str) -> str:
    """`localhost/<recipe>-<strategy>-<part>:<tag>`; `part` is "base" or a service name."""
    return f"localhost/{recipe.name}-{strategy}-{part}:{tag}"


def build_layered(recipe: Recipe, resolution: Resolution, strategy: Strategy,
                  options: LayeredOptions, progress: Progress | None = None) -> LayeredImages:
    """Build the base and every child of `strategy` from `resolution`; tag them on success."""
    plan = plan_layered(resolution, [s.name for s in recipe.services], strategy)
    report = progress or (lambda event: None)
    with _workspace() as work:
        with stage(report, f"{strategy} base"):
            base_tmp = _build_base(recipe, resolution, plan, options, work)
        # apt: one private APT root (fresh lists) serves every child's install
        apt_root = (prepare_root(recipe, options.cache_dir)
                    if recipe.distro.packager is Family.APT
                    and any(c.packages for c in plan.children) else None)
        children = []
        for child in plan.children:
            with stage(report, f"{strategy} {child.service}"):
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


# ---------------------------------------------------------------- one image


def _build_base(recipe: Recipe, resolution: Resolution, plan: LayeredPlan,
                options: LayeredOptions, work: _Workspace) -> str:
    packager = packager_for(recipe.distro.packager)
    container = work.container("scratch")
    root = buildah.mount(container)
    subset = dataclasses.replace(resolution, packages=plan.base)
    if subset.packages:
        with private_cache(options.cache_dir, container, _debs(subset.packages)) as cache:
            packager.install(recipe, subset, root, cache_dir=cache,
                             source_date_epoch=options.source_date_epoch)
    _finish_root(recipe, root, subset.packages, packager.list_installed(root)
                 if subset.packages else (), options)
    _add_init_program(root)
    compile_init(root)
    buildah.umount(container)
    buildah.configure(container, _image_config(recipe, plan.strategy, None, subset.packages,
                                               options))
    return work.commit(container, options.source_date_epoch)


def _build_child(recipe: Recipe, resolution: Resolution, plan: LayeredPlan, service: Service,
                 packages: tuple[ResolvedPackage, ...], base: str, options: LayeredOptions,
                 work: _Workspace, apt_root: AptRoot | None) -> str:
    packager = packager_for(recipe.distro.packager)
    container = work.container(base)
    root = buildah.mount(container)
    if packages:
        with private_cache(options.cache_dir, container, _debs(packages)) as cache:
            if apt_root is not None:
                _apt_install_in_container(recipe, apt_root, container, root, packages,
                                          cache / APT_ARCHIVES, options)
            else:
                subset = dataclasses.replace(resolution, packages=packages)
                packager.install(recipe, subset, root, cache_dir=cache,
                                 source_date_epoch=options.source_date_epoch)
    wanted = tuple(sorted((*plan.base, *packages), key=lambda p: p.name))
    _finish_root(recipe, root, wanted, packager.list_installed(root) if wanted else (),
                 options)
    add_service_table(root, _single_service_recipe(recipe, plan.strategy, service))
    buildah.umount(container)
    buildah.configure(container, _image_config(recipe, plan.strategy, service, wanted, options))
    return work.commit(container, options.source_date_epoch)


def _finish_root(recipe: Recipe, root: Path, wanted: Sequence[ResolvedPackage],
                 installed: Sequence[InstalledPackage], options: LayeredOptions) -> None:
    """Check the root holds exactly `wanted`, then clean and strip it like the golden image."""
    check_installed(wanted, installed, what="a layered image's packages")
    have = {(p.name, p.version) for p in installed}
    build_only = tuple(name for name in recipe.strip.packages if name in {n for n, _ in have})
    if build_only:
        packager_for(recipe.distro.packager).remove(root, build_only)
    apply_strip(root, INSTALLER_CLEANUP[recipe.distro.packager] + strip_rules(recipe))
    remove_build_cache(root, options.cache_dir)


# ---------------------------------------------------------------- apt inside a child


def _apt_install_in_container(recipe: Recipe, apt_root: AptRoot, container: str, root: Path,
                              packages: Sequence[ResolvedPackage], archives: Path,
                              options: LayeredOptions) -> None:
    """`apt-get install name=version…` inside the container, offline, from host-side state.

    `archives` is this install's private .deb cache (pkgcache.py): what it lacks is fetched
    on the host first, and it is merged back into the shared cache after the install.
    """
    _fetch_debs(apt_root, archives, packages)
    mounts = {"lists": (apt_root.path / "var/lib/apt/lists", "ro"),
              "sources": (apt_root.path / "etc/apt/sources.list.d", "ro"),
              "archives": (archives, "rw")}
    argv = ["apt-get", "-q", "-y", "--no-download",
            "-o", f"Dir::State::Lists={APT_MOUNTS}/lists",
            "-o", "Dir::Etc::SourceList=/dev/null",
            "-o", f"Dir::Etc::SourceParts={APT_MOUNTS}/sources",
            "-o", f"Dir::Cache::Archives={APT_MOUNTS}/archives",
            "-o", f"APT::Install-Recommends={'true' if recipe.distro.recommends else 'false'}",
            "-o", "Acquire::Languages=none", "-o", "Debug::NoLocking=true",
            "install", *(f"{p.name}={p.version}" for p in packages)]
    env = {"DEBIAN_FRONTEND": "noninteractive", "DEBCONF_NONINTERACTIVE_SEEN": "true",
           "LC_ALL": "C.UTF-8", "SOURCE_DATE_EPOCH": str(options.source_date_epoch)}
    args = ["run", "--isolation", "chroot", "--no-hosts"]
    for name, (host_path, mode) in mounts.items():
        args += ["--volume", f"{host_path}:{APT_MOUNTS}/{name}:{mode}"]
    for key, value in env.items():
        args += ["--env", f"{key}={value}"]
    try:
        # Not through buildah.buildah(): its error keeps buildah's last line only ("exit
        # status 100"); apt's own lines say what went wrong.
        done = subprocess.run(["buildah", *args, container, "--", *argv],
                              env=buildah.environment(), capture_output=True, text=True,
                              check=False, stdin=subprocess.DEVNULL)
    finally:
        _remove_mount_points(root)
    if done.returncode != 0:
        output = "\n".join(line for line in (done.stdout + done.stderr).splitlines()
                           if not line.startswith(("debconf:", "W: ")))
        raise UserError(f"apt-get install in a {recipe.name} child container failed "
                        f"(exit {done.returncode}):\n" + tail(output, 15))
    machine_id = root / "etc/machine-id"
    if machine_id.is_file() and not machine_id.is_symlink() and machine_id.stat().st_size:
        machine_id.write_text("")  # as mmdebstrap leaves it: empty, filled at boot


def _fetch_debs(apt_root: AptRoot, archives: Path, packages: Sequence[ResolvedPackage]
                ) -> None:
    """Download into the shared cache, on the host, every pinned .deb it does not hold yet."""
    (archives / "partial").mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if not (archives / deb_file_name(p)).is_file()]
    if missing:
        # apt-get download writes into its working directory.
        done = subprocess.run(
            ["apt-get", "-q", "download", *(f"{p.name}={p.version}" for p in missing)],
            env={**os.environ, **apt_root.env}, cwd=archives, capture_output=True, text=True,
            check=False)
        if done.returncode != 0:
            raise UserError(f"apt-get download failed (exit {done.returncode}):\n"
                            + tail(done.stderr or done.stdout, 15))


def _debs(packages: Sequence[ResolvedPackage]) -> list[str]:
    return [deb_file_name(p) for p in packages]


def _remove_mount_points(root: Path) -> None:
    """buildah leaves the bind mounts' (empty) mount points in the container: remove them."""
    top = root / APT_MOUNTS.lstrip("/")
    if top.is_dir():
        for sub in top.iterdir():
            if sub.is_dir() and not any(sub.iterdir()):
                sub.rmdir()
        if not any(top.iterdir()):
            top.rmdir()


# ---------------------------------------------------------------- the init


def _add_init_program(root: Path) -> None:
    """monoimage-init's package and launcher, without a service table (the base's part)."""
    package = root / INIT_PACKAGE.lstrip("/")
    package.mkdir(parents=True, exist_ok=True)
    for source in sorted(INIT_SOURCE.glob("*.py")):
        _write(root, f"{INIT_PACKAGE}/{source.name}", source.read_text(), 0o644)
    _write(root, INIT_LAUNCHER, LAUNCHER_TEXT, 0o755)


def _single_service_recipe(recipe: Recipe, strategy: Strategy, service: Service) -> Recipe:
    """The recipe as one child sees it: its own service; ordering across images is the host's."""
    alone = dataclasses.replace(service, depends_on=())
    return dataclasses.replace(recipe, name=f"{recipe.name}-{strategy}-{service.name}",
                               services=(alone,))


def _image_config(recipe: Recipe, strategy: Strategy, service: Service | None,
                  packages: Sequence[ResolvedPackage], options: LayeredOptions
                  ) -> buildah.ImageConfig:
    """Entrypoint, ports, volumes and labels of one layered image.

    Labels name what the image holds (its pinned packages' digest), not the recipe file nor the
    local tag: a day-2 rebuild of an image whose packages did not change gives the same config,
    hence the same manifest digest, and a site does not pull it again.
    """
    part = service.name if service else BASE_PART
    pins = "".join(f"{p.name}={p.version}\n" for p in sorted(packages, key=lambda p: p.name))
    created = datetime.fromtimestamp(options.source_date_epoch, UTC)
    labels = {
        LABEL_TITLE: f"{recipe.name}-{strategy}-{part}",
        LABEL_VERSION: recipe.tag,
        LABEL_CREATED: created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        LABEL_SOURCE: recipe.source,
        LABEL_DESCRIPTION:
            f"monoimage {strategy} comparator: "
            + (f"service {service.name}" if service else "base image"),
        LABEL_PACKAGES_DIGEST: "sha256:" + hashlib.sha256(pins.encode()).hexdigest(),
        LABEL_PACKAGER: recipe.distro.packager.value,
        LABEL_STRATEGY: strategy,
        LABEL_SERVICES: service.name if service else "",
        LABEL_HEALTH_CMD: " ".join(HEALTH_CMD),
    }
    pairs = tuple(sorted(labels.items()))
    return buildah.ImageConfig(
        entrypoint=ENTRYPOINT, env=(("PATH", PATH),), workingdir="/",
        ports=tuple(str(p) for p in service.ports) if service else (),
        volumes=service.volumes if service else (), labels=pairs, annotations=pairs,
        stop_signal=service.stop_signal if service else "SIGTERM",
        created_by=f"monoimage footprint ({strategy})")


def _write(root: Path, path: str, text: str, mode: int) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)


# ---------------------------------------------------------------- buildah, atomically


class _Workspace:
    """Working containers and temporary images of one strategy's build, removed at the end."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(6)
        self.containers: list[str] = []
        self.images: list[str] = []

    def container(self, image: str) -> str:
        name = f"{CONTAINER_PREFIX}{self.token}-{len(self.containers)}"
        self.containers.append(name)
        if image == "scratch":
            return buildah.from_scratch(name)
        return buildah.buildah("from", "--name", name, "--pull-never", image).strip()

    def commit(self, container: str, timestamp: int) -> str:
        """Commit the container's new layer on top of its image (no squash); a temporary name."""
        image = f"{TEMP_PREFIX}{self.token}-{len(self.images)}"
        self.images.append(image)
        buildah.buildah("commit", "--quiet", "--format", "oci", "--timestamp", str(timestamp),
                        "--omit-history", "--identity-label=false", "--rm=false",
                        container, image)
        return image

    def clean(self) -> None:
        for action, targets in ((buildah.remove_container, self.containers),
                                (buildah.remove_image, reversed(self.images))):
            for target in targets:
                for attempt in range(2):
                    try:
                        action(target)
                        break
                    except buildah.BuildahError as err:
                        if "not known" in str(err) or "unknown" in str(err):
                            break  # never made, or already gone
                        # an interrupted installer's last child may still be writing there
                        time.sleep(2 * (attempt + 1))


@contextmanager
def _workspace() -> Iterator[_Workspace]:
    work = _Workspace()
    try:
        yield work
    finally:
        _uninterrupted(work.clean)


def _uninterrupted(action: Callable[[], None]) -> None:
    """Run `action` with Ctrl-C ignored: a second Ctrl-C must not stop the cleanup."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        previous = None
    try:
        action()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


@contextmanager
def stage(report: Progress, name: str) -> Iterator[None]:
    """A named stage, its start and its end (with the seconds it took) told to `report`."""
    start = time.monotonic()
    report(StageEvent(name, "start"))
    yield
    report(StageEvent(name, "done", "", round(time.monotonic() - start, 3)))

