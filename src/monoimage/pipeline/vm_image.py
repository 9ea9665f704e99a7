"""The small container-OS VM image `boot --vm` runs: Debian trixie from Debian's packages.

systemd, podman 5.4 with Quadlet, crun, netavark + aardvark-dns, nftables (netavark's firewall:
without it `podman run` fails), a kernel and its initramfs, systemd-networkd (the guest's one
static address on QEMU's user network) and qemu-guest-agent (the control channel: no sshd).
Sources are the build host's own Debian mirror (its apt configuration), suite trixie.

Built once into `CACHE/vm/<key>/` (`root/`, `vmlinuz`, `initrd.img`), keyed by everything that
decides it: the package list, the sources, the guest files below and this module's own code; a
change of any rebuilds it. A build goes to a temporary folder that takes the key's place only
when complete, under a lock, so two runs never see half an image. The cache is never written
by a boot: each boot makes its own disk from `root/` plus what Ignition wrote.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from monoimage.errors import UserError
from monoimage.tools.cache_dir import locked
from monoimage.tools.chroot import run_in_root
from monoimage.tools.packagers.apt_sources import host_repositories
from monoimage.tools.qemu import GUEST_ADDRESS
from monoimage.tools.vm_disk import debootstrap

SUITE = "trixie"
PACKAGES = ("systemd", "systemd-sysv", "udev", "dbus", "podman", "crun",
            "netavark", "aardvark-dns", "nftables", "linux-image-amd64", "qemu-guest-agent",
            "iproute2")
QUADLET = "/usr/libexec/podman/quadlet"
HOSTNAME = "monoimage-vm"
# Files the guest gets besides its packages: its network, no first-boot questions, a root
# login on the serial console (for a kept VM), a quiet journal in memory.
GUEST_FILES = {
    "etc/hostname": f"{HOSTNAME}\n",
    "etc/hosts": f"127.0.0.1 localhost\n127.0.1.1 {HOSTNAME}\n",
    "etc/systemd/network/20-monoimage-vm.network":
        "[Match]\nName=en* eth*\n\n[Network]\n"
        f"Address={GUEST_ADDRESS}/24\nGateway=10.0.2.2\nLinkLocalAddressing=no\n",
    "etc/systemd/journald.conf.d/monoimage-vm.conf": "[Journal]\nStorage=volatile\n",
    "etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf":
        "[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --noclear "
        "--keep-baud 115200,57600,38400,9600 - $TERM\n",
    # A new machine: systemd applies the presets Ignition wrote (podman-auto-update.timer)
    "etc/machine-id": "uninitialized\n",
}
# The initramfs needs only what mounts the root: the virtio disk and ext4.
INITRAMFS_MODULES = ("virtio_pci", "virtio_blk", "ext4")
ENABLE = ("systemd-networkd.service", "systemd-networkd-wait-online.service")
# The kernel's command line (not part of the image: changing it rebuilds nothing). Under TCG
# every cycle counts: no audit, AppArmor or speculation mitigations in a throwaway test VM.
CMDLINE = ("root=/dev/vda rw console=ttyS0,115200 systemd.firstboot=off "
           "systemd.show_status=auto loglevel=4 net.ifnames=0 8250.nr_uarts=1 "
           "audit=0 apparmor=0 selinux=0 mitigations=off random.trust_cpu=on")
# Bump when _build() or tools/vm_disk.debootstrap change what they make: the cache key holds
# it, with the inputs above.
BUILDER_VERSION = 2
UPDATED_STAMP = ("# This file was created by systemd-update-done. Its only\n"
                 "# purpose is to hold a timestamp of the time this directory\n"
                 "# was updated. See man:systemd-update-done.service(8).\n"
                 "TIMESTAMP_NSEC={}\n")


@dataclass(frozen=True)
class VmImage:
    """A built VM image in the cache."""

    folder: Path
    key: str
    built_seconds: float | None       # None: it came from the cache

    @property
    def root(self) -> Path:
        return self.folder / "root"

    @property
    def kernel(self) -> Path:
        return self.folder / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.folder / "initrd.img"

    @property
    def quadlet(self) -> Path:
        return self.root / QUADLET.lstrip("/")


def trixie_sources() -> tuple[str, ...]:
    """One-line apt sources for trixie on the build host's own Debian mirror."""
    lines = []
    for repo in host_repositories():
        plain = [s for s in repo.suites if "-" not in s]
        if plain and repo.uri.rstrip("/").endswith("/debian"):
            options = f"[signed-by={repo.signed_by}] " if repo.signed_by and \
                repo.signed_by.startswith("/") else ""
            lines.append(f"deb {options}{repo.uri} {SUITE} main")
    if not lines:
        raise UserError("boot --vm: no Debian mirror in this host's apt sources "
                        "(/etc/apt/sources.list[.d]) to take trixie from")
    return tuple(dict.fromkeys(lines))


def image_key(sources: tuple[str, ...]) -> str:
    """The cache key: packages, sources, guest files and the builder's version."""
    text = repr((BUILDER_VERSION, SUITE, PACKAGES, INITRAMFS_MODULES, sources,
                 sorted(GUEST_FILES.items()), ENABLE))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def vm_image(cache_dir: Path, progress=lambda _: None) -> VmImage:  # type: ignore[no-untyped-def]
    """The VM image from the cache, built first when its inputs changed."""
    sources = trixie_sources()
    key = image_key(sources)
    folder = cache_dir / "vm" / key
    with locked(cache_dir / "vm" / "build.lock"):
        if (folder / "complete").exists():
            image = VmImage(folder, key, None)
            for path, what in ((image.kernel, "kernel"), (image.initrd, "initramfs")):
                if not path.is_file():
                    raise UserError(f"VM image {folder}: no {what} ({path.name}); remove "
                                    f"{folder} and boot --vm builds it again")
            return image
        progress(f"building the VM image (Debian {SUITE}, once; cached under {folder.parent})")
        began = time.monotonic()
        staging = cache_dir / "vm" / f".build-{key}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            _build(staging, sources, cache_dir / "apt" / "archives")
            shutil.rmtree(folder, ignore_errors=True)
            os.rename(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        for old in (cache_dir / "vm").iterdir():   # earlier keys: their inputs are gone
            if old.is_dir() and old.name != key and not old.name.startswith("."):
                shutil.rmtree(old, ignore_errors=True)
        return VmImage(folder, key, time.monotonic() - began)


def _build(staging: Path, sources: tuple[str, ...], archives: Path) -> None:
    root = staging / "root"
    staging.mkdir(parents=True)
    debootstrap(root, SUITE, sources, PACKAGES, archives, INITRAMFS_MODULES)
    for relative, text in GUEST_FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            path.unlink()
        path.write_text(text)
    done = run_in_root(root, ["systemctl", "enable", *ENABLE], env={"PATH": "/usr/bin:/bin"})
    if not done.ok:
        raise UserError(f"VM image: systemctl enable failed: {done.last_line()}")
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    initrds = sorted((root / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        raise UserError(f"VM image: no kernel or initramfs in {root / 'boot'} "
                        f"(linux-image-amd64 and its initramfs)")
    # Nothing to update at first boot: no ldconfig, hwdb or catalog rebuild (minutes under TCG)
    usr = (root / "usr").stat().st_mtime_ns
    for folder in ("etc", "var"):
        (root / folder / ".updated").write_text(UPDATED_STAMP.format(usr))
    shutil.copyfile(kernels[-1], staging / "vmlinuz")
    shutil.copyfile(initrds[-1], staging / "initrd.img")
    (staging / "complete").write_text(f"{SUITE} {' '.join(PACKAGES)}\n")
