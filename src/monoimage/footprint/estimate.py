"""Estimate mode: the footprint figures predicted from repository metadata alone, no build.

The resolved closure gives, per package, its download size D (the .deb or .rpm) and its
installed size I. Each strategy's images are predicted layer by layer, as the builds cut them
(layered.py), and then counted by the very arithmetic that counts real images (footprint.py):

- a layer that installs packages into an empty root (the golden image, a base) compresses to
  K × ΣD and unpacks to U × ΣI: the same files, gzip instead of the packages' own compression,
  minus what the strip rules remove. On apt, Python packages (names with `python3`) get their
  own K_PY and U_PY: Debian compiles their byte code at install time (py3compile), files that
  no package lists and Installed-Size does not count. The layer also holds the package
  database and other files no package owns: ROOT_DB_GZ and ROOT_DB_DISK per package;
- a child layer installs its packages on top of the base, the same K × ΣD and U × ΣI of them,
  and rewrites the package database of the whole image (dpkg's status and debconf's templates;
  rpm's sqlite database): DB_GZ × N compressed and DB_DISK × N unpacked, N being the packages
  the image holds. This is why even shared-base duplicates bytes: every child that installs
  anything ships its own copy of the database. A child that installs nothing (its packages are
  all in the base) holds only its service table;
- each image adds its manifest and config (META bytes);
- a layer's digest is predicted from what it holds (its packages and versions, and for a child
  its base's), so a day-2 resolution changes exactly the layers a rebuild would change.

The constants are measured on real images, not fitted to the figure a test checks: see
`APT_CALIBRATION` and bench/footprint.py, which measures them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from monoimage.footprint.figures import (
    MONOIMAGE,
    MONOIMAGE_SINGLE,
    FootprintReport,
    Strategy,
    footprint_report,
)
from monoimage.footprint.fleet import StrategyRollout
from monoimage.footprint.oci import Blob, FileEntry, Image, Layer
from monoimage.footprint.report import FootprintFacts
from monoimage.image import MEDIA_OCI_CONFIG, MEDIA_OCI_GZIP_LAYER, MEDIA_OCI_MANIFEST
from monoimage.plan.comparator_plan import STRATEGIES, plan_layered
from monoimage.plan.config_tools import config_tools, runtime_resolution
from monoimage.plan.day2 import PackageUpdate, VersionChange
from monoimage.plan.layer_plan import LayerPlan, plan_layers
from monoimage.plan.resolution import Resolution, ResolvedPackage
from monoimage.plan.update_impact import PackageImpact
from monoimage.recipe.model import Layering, Recipe
from monoimage.recipe.versions import Family

PACKAGE_PREFIX = "/monoimage-estimate/package/"
DATABASE_PATH = "/monoimage-estimate/package-database"
DEFAULT_LAYERING = Layering()  # a recipe that says nothing: layers by package


@dataclass(frozen=True)
class Calibration:
    """How metadata sizes turn into layer sizes; where the numbers come from, in `source`."""

    layer_per_download: float  # K: compressed layer bytes per package download byte
    disk_per_installed: float  # U: unpacked layer bytes per installed byte
    python_layer_per_download: float  # K_PY: the same for apt's Python packages, byte code in
    python_disk_per_installed: float  # U_PY
    root_database_gz_per_package: float  # ROOT_DB_GZ: files no package owns, per package
    root_database_disk_per_package: float  # ROOT_DB_DISK
    database_gz_per_package: float  # DB_GZ: a child's rewritten database, per package held
    database_disk_per_package: float  # DB_DISK
    image_metadata: int  # META: manifest + config bytes per image
    source: str

    def as_json(self) -> dict[str, object]:
        return {"layer_per_download": self.layer_per_download,
                "disk_per_installed": self.disk_per_installed,
                "python_layer_per_download": self.python_layer_per_download,
                "python_disk_per_installed": self.python_disk_per_installed,
                "root_database_gz_per_package": self.root_database_gz_per_package,
                "root_database_disk_per_package": self.root_database_disk_per_package,
                "database_gz_per_package": self.database_gz_per_package,
                "database_disk_per_package": self.database_disk_per_package,
                "image_metadata": self.image_metadata, "source": self.source}


# Measured by bench/footprint.py on edge-compute's images (Debian 12, 641 packages, gzip
# layers as skopeo writes them); edge-lite, which the tests check the estimate against, was
# not used. The same constants measured on edge-lite differ by 3-7% for K and U.
APT_CALIBRATION = Calibration(
    layer_per_download=1.097, disk_per_installed=0.787,
    python_layer_per_download=2.747, python_disk_per_installed=1.670,
    root_database_gz_per_package=9_337, root_database_disk_per_package=45_486,
    database_gz_per_package=1_650, database_disk_per_package=8_039, image_metadata=2_473,
    source="measured on edge-compute (bench/footprint.py)")


def generates_byte_code(package: ResolvedPackage, family: Family) -> bool:
    """Whether installing the package compiles Python byte code no package lists (apt)."""
    return family is Family.APT and "python3" in package.name


@dataclass(frozen=True)
class Estimate:
    """The predicted figures, in the shape of a measured run."""

    recipe: Recipe
    resolution: Resolution
    report: FootprintReport
    rollouts: tuple[StrategyRollout, ...]
    calibration: Calibration
    update: PackageUpdate | None = None
    version_changes: tuple[VersionChange, ...] = ()
    impacts: tuple[PackageImpact, ...] = ()

    def facts(self) -> FootprintFacts:
        """What the JSON report says of this estimate."""
        return FootprintFacts(
            recipe=self.recipe, packages=len(self.resolution.packages), report=self.report,
            rollouts=self.rollouts, update=self.update, version_changes=self.version_changes,
            impacts=self.impacts,
            calibration=self.calibration.as_json(),
            config_tools=config_tools(self.recipe, self.resolution))


def estimate_report(recipe: Recipe, resolution: Resolution, after: Resolution | None = None,
                    calibration: Calibration = APT_CALIBRATION) -> FootprintReport:
    """The footprint report of predicted images (day 2 when `after` is given).

    The golden image leaves out the config tools no config command runs (plan/config_tools.py),
    as a build does; on day 2 it keeps day 1's layer plan, as `footprint` builds it.
    """
    services = [s.name for s in recipe.services]
    golden = _runtime(recipe, resolution)
    first = predicted_strategies(resolution, services, calibration, recipe.layering,
                                 golden=golden)
    second = []
    if after is not None:
        day1 = golden_plan(golden, recipe.layering)
        second = predicted_strategies(after, services, calibration, recipe.layering,
                                      golden=_runtime(recipe, after), previous=day1)
    return footprint_report(first, second, owner=_owner, baseline=MONOIMAGE)


def _runtime(recipe: Recipe, resolution: Resolution) -> Resolution:
    return runtime_resolution(resolution, config_tools(recipe, resolution))


def golden_plan(resolution: Resolution, layering: Layering,
                previous: LayerPlan | None = None) -> LayerPlan:
    """The golden image's layer plan as the estimate predicts it (sizes from the repository)."""
    return plan_layers(layering, resolution.packages, needed_by=resolution.needed_by(),
                       previous=previous)


def predicted_strategies(resolution: Resolution, services: Sequence[str],
                         calibration: Calibration, layering: Layering = DEFAULT_LAYERING, *,
                         golden: Resolution | None = None, previous: LayerPlan | None = None
                         ) -> list[Strategy]:
    """monoimage (and, layered by package, its single variant) and both layered strategies
    as predicted images (pure). `golden`: the closure the golden image installs (default
    `resolution`); `previous`: the layer plan it keeps."""
    sizes = _Sizes(calibration, resolution.family)
    golden = golden or resolution
    single = _image("monoimage", [sizes.root_layer(golden.packages)], calibration)
    if layering.policy == "single":
        strategies = [Strategy(MONOIMAGE, (single,))]
    else:
        layers = sizes.golden_layers(golden, golden_plan(golden, layering, previous))
        golden_image = _image("monoimage layered", layers, calibration)
        strategies = [Strategy(MONOIMAGE, (golden_image,)), Strategy(MONOIMAGE_SINGLE, (single,))]
    for name in STRATEGIES:
        plan = plan_layered(resolution, services, name)
        base_layer = sizes.root_layer(plan.base)
        images = [_image(f"{name} base", [base_layer], calibration)]
        for child in plan.children:
            layer = sizes.child_layer(base_layer, child.packages, len(plan.base))
            images.append(_image(f"{name} {child.service}", [base_layer, layer], calibration))
        strategies.append(Strategy(name, tuple(images)))
    return strategies


@dataclass(frozen=True)
class _Sizes:
    """Predicted sizes of layers, under one calibration and packager family."""

    cal: Calibration
    family: Family

    def compressed(self, packages: Sequence[ResolvedPackage]) -> float:
        return sum(p.download_size * (self.cal.python_layer_per_download
                                      if generates_byte_code(p, self.family)
                                      else self.cal.layer_per_download) for p in packages)

    def package_file(self, package: ResolvedPackage) -> FileEntry:
        """One package's files (and byte code) as a single predicted file."""
        ratio = (self.cal.python_disk_per_installed if generates_byte_code(package, self.family)
                 else self.cal.disk_per_installed)
        return FileEntry(PACKAGE_PREFIX + package.name, round(ratio * package.installed_size),
                         "file", _digest(f"{package.name}={package.version}"))

    def root_layer(self, packages: Sequence[ResolvedPackage]) -> Layer:
        count = len(packages)
        database = self._database(packages)
        files = [self.package_file(p) for p in packages]
        size = self.compressed(packages) + self.cal.root_database_gz_per_package * count
        return _layer(f"root\n{_pins(packages)}", round(size),
                      sum(f.size for f in files) + database.size, [*files, database])

    def golden_layers(self, resolution: Resolution, plan: LayerPlan) -> list[Layer]:
        """The layers by package (plan/layer_plan.py), then the files no package owns."""
        by_name = {p.name: p for p in resolution.packages}
        layers = []
        for planned in plan.layers:
            held = [by_name[name] for name in planned.packages]
            if held:
                files = [self.package_file(p) for p in held]
                layers.append(_layer(f"packages\n{_pins(held)}", round(self.compressed(held)),
                                     sum(f.size for f in files), files))
        database = self._database(resolution.packages)
        size = self.cal.root_database_gz_per_package * len(resolution.packages)
        return [*layers, _layer(f"metadata\n{_pins(resolution.packages)}", round(size),
                                database.size, [database])]

    def _database(self, packages: Sequence[ResolvedPackage]) -> FileEntry:
        return FileEntry(DATABASE_PATH, round(self.cal.root_database_disk_per_package
                                              * len(packages)), "file",
                         _digest(f"db\n{_pins(packages)}"))

    def child_layer(self, base: Layer, packages: Sequence[ResolvedPackage], base_count: int
                    ) -> Layer:
        files = [self.package_file(p) for p in packages]
        size = self.compressed(packages)
        if packages:  # installing rewrites the whole image's package database
            held = base_count + len(packages)
            files.append(FileEntry(DATABASE_PATH,
                                   round(self.cal.database_disk_per_package * held), "file",
                                   _digest(f"db\n{base.diff_id}\n{_pins(packages)}")))
            size += self.cal.database_gz_per_package * held
        return _layer(f"child\n{base.diff_id}\n{_pins(packages)}", round(size),
                      sum(f.size for f in files), files)


def _layer(key: str, size: int, unpacked: int, files: Iterable[FileEntry]) -> Layer:
    digest = "sha256:" + _digest(key)
    return Layer(Blob(digest, size, MEDIA_OCI_GZIP_LAYER), "sha256:" + _digest("diff\n" + key),
                 unpacked, tuple(files))


def _image(name: str, layers: Sequence[Layer], cal: Calibration) -> Image:
    key = name + "\n" + "\n".join(layer.diff_id for layer in layers)
    config = Blob("sha256:" + _digest("config\n" + key), cal.image_metadata // 2, MEDIA_OCI_CONFIG)
    manifest = Blob("sha256:" + _digest("manifest\n" + key), cal.image_metadata // 2,
                    MEDIA_OCI_MANIFEST)
    return Image(name, manifest, config, tuple(layers))


def _owner(path: str) -> str | None:
    return path.removeprefix(PACKAGE_PREFIX) if path.startswith(PACKAGE_PREFIX) else None


def _pins(packages: Iterable[ResolvedPackage]) -> str:
    return "".join(f"{p.name}={p.version}\n" for p in sorted(packages, key=lambda p: p.name))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class EstimateCheck:
    """One estimated figure next to the measured one."""

    strategy: str
    figure: str  # "first deploy", "disk", "duplicated", "day 2"
    estimated: int
    measured: int

    @property
    def relative_error(self) -> float:
        """(estimated − measured) / measured; 0 when both are 0."""
        if self.measured == 0:
            return 0.0 if self.estimated == 0 else float("inf")
        return (self.estimated - self.measured) / self.measured


def compare_reports(estimated: FootprintReport, measured: FootprintReport
                    ) -> tuple[EstimateCheck, ...]:
    """Every figure both reports hold, strategy by strategy."""
    found = {f.name: f for f in estimated.strategies}
    checks = []
    for real in measured.strategies:
        guess = found.get(real.name)
        if guess is None:
            continue
        pairs = [("first deploy", guess.first_deploy.bytes, real.first_deploy.bytes),
                 ("disk", guess.disk_bytes, real.disk_bytes),
                 ("duplicated", guess.duplicated_bytes, real.duplicated_bytes)]
        if guess.day2 is not None and real.day2 is not None:
            pairs.append(("day 2", guess.day2.bytes, real.day2.bytes))
        checks += [EstimateCheck(real.name, figure, e, m) for figure, e, m in pairs]
    return tuple(checks)

