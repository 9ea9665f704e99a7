"""Build small noarch RPMs with rpmbuild and an RPM repository with createrepo_c.

The dnf path of monoimage is tested against repositories made here, since only Debian's
mirror is reachable from this host. Reused by the footprint tests (day-2 updates).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SPEC_TEMPLATE = Path(__file__).parent / "fixtures" / "rpm" / "noarch.spec.in"


@dataclass(frozen=True)
class RpmSpec:
    """One noarch package: its files (path → text) and its relations."""

    name: str
    version: str = "1.0"
    release: str = "1"
    epoch: int | None = None
    requires: tuple[str, ...] = ()  # e.g. "libshared >= 1.1"
    provides: tuple[str, ...] = ()
    files: tuple[tuple[str, str], ...] = field(default=())  # (absolute path, content)

    @property
    def nevra(self) -> str:
        epoch = f"{self.epoch}:" if self.epoch is not None else ""
        return f"{self.name}-{epoch}{self.version}-{self.release}.noarch"

    def spec_text(self) -> str:
        files = self.files or ((f"/usr/share/{self.name}/VERSION", f"{self.version}\n"),)
        install = []
        for path, content in files:
            install.append(f"mkdir -p %{{buildroot}}{Path(path).parent}")
            install.append(f"cat > %{{buildroot}}{path} <<'MONOIMAGE_EOF'\n"
                           f"{content.rstrip()}\nMONOIMAGE_EOF")
        fields = {
            "@NAME@": self.name, "@VERSION@": self.version, "@RELEASE@": self.release,
            "@EPOCH@": f"Epoch:          {self.epoch}" if self.epoch is not None else "",
            "@REQUIRES@": "\n".join(f"Requires:       {r}" for r in self.requires),
            "@PROVIDES@": "\n".join(f"Provides:       {p}" for p in self.provides),
            "@INSTALL@": "\n".join(install),
            "@FILES@": "\n".join(path for path, _ in files),
        }
        text = SPEC_TEMPLATE.read_text()
        for key, value in fields.items():
            text = text.replace(key, value)
        return text


def build_rpm(spec: RpmSpec, dest: Path) -> Path:
    """rpmbuild one package into `dest`; returns the .rpm path. Fixed build time and host."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="monoimage-rpmbuild-") as top:
        spec_path = Path(top) / f"{spec.name}.spec"
        spec_path.write_text(spec.spec_text())
        subprocess.run(
            ["rpmbuild", "-bb", "--nodeps", "--quiet",
             "--define", f"_topdir {top}",
             "--define", "_buildhost monoimage-test",
             "--define", "use_source_date_epoch_as_buildtime 1",
             "--define", "clamp_mtime_to_source_date_epoch 1",
             "--define", "__os_install_post %{nil}",
             "--define", "_binary_payload w9.gzdio",
             str(spec_path)],
            check=True, capture_output=True, env={"SOURCE_DATE_EPOCH": "0", "PATH": _path()})
        built = next(Path(top, "RPMS", "noarch").glob(f"{spec.name}-*.rpm"))
        target = dest / built.name
        shutil.copy2(built, target)
        return target


def make_rpm_repo(dest: Path, packages: list[RpmSpec]) -> Path:
    """Build every package into `dest` and make it a repository (createrepo_c); returns dest."""
    dest.mkdir(parents=True, exist_ok=True)
    for spec in packages:
        build_rpm(spec, dest)
    subprocess.run(["createrepo_c", "--quiet", "--update", str(dest)], check=True,
                   capture_output=True)
    return dest


def _path() -> str:
    return os.environ.get("PATH", "/usr/bin:/bin")


# Two services with overlapping dependencies: both need libshared (at different minimum
# versions) and common-data; the repository holds two versions of libshared.
EDGE_FIXTURE: list[RpmSpec] = [
    RpmSpec("common-data", "1.0", files=(("/usr/share/common-data/README", "shared data\n"),)),
    RpmSpec("libshared", "1.0", requires=("common-data",)),
    RpmSpec("libshared", "1.2", requires=("common-data",)),
    RpmSpec("alpha-daemon", "2.0", requires=("libshared >= 1.0", "common-data"),
            files=(("/usr/bin/alpha-daemon", "#!/bin/sh\necho alpha\n"),)),
    RpmSpec("beta-agent", "3.1", requires=("libshared >= 1.1",),
            files=(("/usr/bin/beta-agent", "#!/bin/sh\necho beta\n"),)),
    RpmSpec("beta-tools", "3.1", requires=("beta-agent = 3.1-1",)),
]
