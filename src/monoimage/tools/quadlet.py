"""The real Quadlet generator of an image root, run on the build host: `quadlet -dryrun`.

The generator is the root's own binary (Debian trixie's podman 5.4 in the VM image), started
through the root's own dynamic loader and libraries, so nothing of the build host's podman
takes part and the root is never written: the `.container` files are read from a folder given
in `QUADLET_UNIT_DIRS`. `-dryrun` prints the units it would generate, or says what it refused.
"""

from __future__ import annotations

from pathlib import Path

from monoimage.tools.run import Completed, run

LOADER = "lib64/ld-linux-x86-64.so.2"
LIBRARIES = ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu")
GENERATOR = "usr/libexec/podman/quadlet"


def quadlet_dryrun(root: Path, units: Path) -> Completed:
    """`ROOT/…/quadlet -dryrun` over the `.container` files in `units` (whatever its exit)."""
    libraries = ":".join(str(root / part) for part in LIBRARIES)
    return run([str(root / LOADER), "--library-path", libraries, str(root / GENERATOR),
                "-dryrun"], env={"QUADLET_UNIT_DIRS": str(units), "PATH": "/usr/bin:/bin"},
               clean_env=True, check=False, what="quadlet -dryrun")


def quadlet_version(root: Path) -> str:
    """The generator's own version line (`quadlet -version`)."""
    libraries = ":".join(str(root / part) for part in LIBRARIES)
    return run([str(root / LOADER), "--library-path", libraries, str(root / GENERATOR),
                "-version"], clean_env=True, env={}, what="quadlet -version").stdout.strip()
