"""The VM's root filesystem and disk: Debian packages into a folder with mmdebstrap, a folder
into an ext4 disk image with `mke2fs -d` (no loop mount, no privileges beyond reading it).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from monoimage.tools.run import run

DISK_HEADROOM = 1 << 30     # bytes of free room on the disk past the root's own size


def debootstrap(target: Path, suite: str, sources: Sequence[str], packages: Sequence[str],
                archives: Path, initramfs_modules: Sequence[str] = (),
                timeout: float = 1800) -> None:
    """A Debian `suite` root in `target` (a folder) with `packages` (minbase, no recommends);
    the .debs go through the shared package cache folder `archives`. `initramfs_modules`: the
    initramfs holds only these kernel modules (MODULES=list; the default, most, takes minutes
    to pack and boots slower), written before the kernel is installed."""
    archives.mkdir(parents=True, exist_ok=True)
    hooks = []
    if initramfs_modules:
        conf = '"$1"/etc/initramfs-tools/conf.d'
        listed = '"$1"/usr/share/initramfs-tools/modules.d'
        hooks = [f"--essential-hook=mkdir -p {conf} {listed}",
                 f"--essential-hook=echo MODULES=list > {conf}/monoimage-vm.conf",
                 (f"--essential-hook=printf '%s\\n' {shlex.join(initramfs_modules)} > "
                  f"{listed}/monoimage-vm")]
    run(["mmdebstrap", "--variant=minbase", "--format=directory", "--quiet",
         "--aptopt=APT::Install-Recommends \"false\"",
         "--aptopt=Acquire::Languages \"none\"",
         '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
         f"--setup-hook=sync-in {shlex.quote(str(archives))} /var/cache/apt/archives/",
         f"--customize-hook=sync-out /var/cache/apt/archives {shlex.quote(str(archives))}",
         "--customize-hook=rm -f \"$1\"/var/cache/apt/archives/*.deb", *hooks,
         "--include=" + ",".join(packages), suite, str(target), *sources],
        timeout=timeout, what="mmdebstrap (VM root)", env={"LC_ALL": "C.UTF-8"})


def tree_bytes(root: Path) -> int:
    """Bytes of the files under `root` (a link counted once)."""
    seen: set[int] = set()
    total = 0
    for path in root.rglob("*"):
        try:
            info = path.lstat()
        except OSError:
            continue
        if info.st_ino not in seen:
            seen.add(info.st_ino)
            total += info.st_blocks * 512
    return total


def make_ext4(root: Path, disk: Path, size_bytes: int, label: str = "root") -> None:
    """An ext4 image file `disk` of `size_bytes` (sparse) holding `root`'s tree (owners, modes,
    links and extended attributes as they are), made by `mke2fs -d`."""
    with disk.open("wb") as handle:
        handle.truncate(size_bytes)
    run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", label, "-E", "root_owner=0:0",
         "-d", str(root), str(disk)], what="mke2fs -d", package="e2fsprogs")


def copy_tree_linked(source: Path, target: Path) -> None:
    """`target`: a copy of `source` whose files are hard links to the source's (`cp -a -l`);
    write a file of it only after unlinking it."""
    run(["cp", "-a", "-l", "--", str(source), str(target)], what="cp -al")
