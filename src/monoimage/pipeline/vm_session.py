"""One VM of `boot --vm`, from the image on the build host to a booted guest, and its end.

`vm_session()` pushes the image to a loopback registry (behind the counting proxy: the bytes
the VM pulls are counted on the wire), writes the host artefacts for the VM-side reference as
`monoimage host` does, applies their Ignition config with the real engine to an empty folder
(what it wrote is the report's "Ignition applied"), makes this run's disk from the cached VM
root plus those files (`mke2fs -d`: the cache is never written), and starts QEMU. The block gets
a `VmSession`; at its end the VM, registry, proxy and run folder go away (on failure and Ctrl-C
too), unless `keep`: then the VM stays running and only the registry goes.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from monoimage.hosts.artefacts import render_artefacts
from monoimage.hosts.ignition import HostFile, host_bundle, render_ignition, render_site_env
from monoimage.hosts.spec import REGISTRIES_DIR, env_file_path, host_spec
from monoimage.image import SITE_ENV_PREFIX
from monoimage.pipeline.vm_image import CMDLINE, VmImage
from monoimage.plan.run_profile import ContainerSpec, split_domain
from monoimage.recipe.model import Recipe
from monoimage.tools.counting_proxy import Proxy, counting_proxy
from monoimage.tools.guest_agent import GuestAgent
from monoimage.tools.ignition_engine import Applied, apply_ignition
from monoimage.tools.qemu import Accelerator, Forward, Machine, Vm, start_vm, stop_vm
from monoimage.tools.registry import Registry, push, serve_registry
from monoimage.tools.vm_disk import DISK_HEADROOM, copy_tree_linked, make_ext4, tree_bytes

# Where the guest finds the registry: QEMU's guestfwd turns this address into the build host's
# loopback registry. Plain HTTP there: the VM's registries.conf marks it insecure.
VM_REGISTRY = ("10.0.2.100", 5000)
PODMAN_IN_VM = (5, 4)              # trixie's podman: the Quadlet keys of that version


@dataclass
class VmSession:
    """A booted (or booting) VM and what it was made of."""

    vm: Vm
    agent: GuestAgent
    spec: ContainerSpec
    recipe: Recipe
    registry: Registry
    proxy: Proxy
    applied: Applied
    run_dir: Path
    repo_tag: str                      # the image's name:tag in the registry
    started: float                     # time.monotonic() when QEMU started
    forwards: tuple[Forward, ...]
    kept: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def unit(self) -> str:
        return f"{self.spec.name}.service"


def vm_reference(image: str) -> tuple[str, str]:
    """(name:tag in the registry, the reference the VM pulls) for a build host `image`."""
    _, path = split_domain(image)
    name, _, tag = path.rpartition(":") if ":" in path.rsplit("/", 1)[-1] else (path, "", "")
    repo_tag = f"{name.rsplit('/', 1)[-1]}:{tag or 'latest'}"
    return repo_tag, f"{VM_REGISTRY[0]}:{VM_REGISTRY[1]}/{repo_tag}"


def insecure_registry_conf() -> HostFile:
    """The drop-in that lets the VM's podman pull from the plain-HTTP registry."""
    address = f"{VM_REGISTRY[0]}:{VM_REGISTRY[1]}"
    text = (f"# The build host's registry, reached through QEMU's guestfwd (monoimage boot --vm)\n"
            f'[[registry]]\nlocation = "{address}"\ninsecure = true\n')
    return HostFile(f"{REGISTRIES_DIR}/10-monoimage-vm.conf", text, 0o644)


def site_env(spec: ContainerSpec, recipe: Recipe, values: Mapping[str, str]) -> str:
    """The site values file with this boot's values after the image's defaults (podman's
    env file: a later line wins)."""
    given = "".join(f"{SITE_ENV_PREFIX}{k.upper()}={v}\n" for k, v in values.items())
    return render_site_env(spec, recipe) + given


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def vm_session(image: str, recipe: Recipe, values: Mapping[str, str], vm_image: VmImage,
               accelerator: Accelerator, *, keep: bool = False,
               on_pushed: Callable[[Registry], None] | None = None,
               on_ignition: Callable[[str], str] | None = None,
               progress: Callable[[str], None] = lambda _: None) -> Iterator[VmSession]:
    """A VM running `image` through Quadlet (see the module's docstring).

    `on_pushed` runs after the push, before the VM starts; `on_ignition` may replace the
    Ignition text before the engine applies it: the tests break a registry or a config there.
    """
    run_dir = Path(tempfile.mkdtemp(prefix="monoimage-vm-"))
    os.chmod(run_dir, 0o700)
    vm: Vm | None = None
    try:
        with ExitStack() as stack:
            registry = stack.enter_context(serve_registry())
            proxy = stack.enter_context(counting_proxy(registry.host))
            repo_tag, reference = vm_reference(image)
            progress(f"pushing {image} to the loopback registry")
            push(registry, image, repo_tag)
            if on_pushed is not None:
                on_pushed(registry)
            proxy.take()
            spec = host_spec(recipe, image=reference)
            applied = _apply_artefacts(spec, recipe, values, run_dir, on_ignition)
            progress("making this run's disk (VM root + what Ignition wrote)")
            disk = _make_disk(vm_image, run_dir)
            forwards = tuple(
                Forward(p.protocol, free_port(socket.SOCK_STREAM if p.protocol == "tcp"
                                              else socket.SOCK_DGRAM), p.container_port)
                for p in spec.ports)
            host, port = proxy.host.split(":")
            machine = Machine(vm_image.kernel, vm_image.initrd, disk, CMDLINE, run_dir,
                              VM_REGISTRY, (host, int(port)), forwards)
            progress(f"starting the VM ({accelerator.upper()})")
            started = time.monotonic()
            vm = start_vm(machine, accelerator)
            session = VmSession(vm, GuestAgent(machine.agent_socket), spec, recipe, registry,
                                proxy, applied, run_dir, repo_tag, started, forwards)
            try:
                yield session
            finally:
                session.agent.close()
                if keep:
                    session.kept = True
    finally:
        if vm is not None and not keep:
            stop_vm(vm)
        if not keep or vm is None:
            shutil.rmtree(run_dir, ignore_errors=True)


def _apply_artefacts(spec: ContainerSpec, recipe: Recipe, values: Mapping[str, str],
                     run_dir: Path, on_ignition: Callable[[str], str] | None) -> Applied:
    """Write the host artefacts (as `monoimage host` does) into RUN/host/, and apply this
    boot's Ignition (the same bundle, with its site values and the insecure-registry drop-in)
    to RUN/ignition/ with the real engine."""
    artefacts = run_dir / "host"
    artefacts.mkdir()
    for artefact in render_artefacts(spec, recipe, ("quadlet", "systemd", "ignition"),
                                     PODMAN_IN_VM):
        (artefacts / artefact.filename).write_text(artefact.content)
        (artefacts / artefact.filename).chmod(artefact.mode)
    bundle = host_bundle(spec, recipe, PODMAN_IN_VM)
    env_path = env_file_path(spec.name)
    files = tuple(replace(f, content=site_env(spec, recipe, values)) if f.path == env_path
                  else f for f in bundle.files) + (insecure_registry_conf(),)
    text = render_ignition(replace(bundle, files=files))
    if on_ignition is not None:
        text = on_ignition(text)
    config = run_dir / "boot.ign"
    config.touch(mode=0o600)
    config.write_text(text)
    target = run_dir / "ignition"
    target.mkdir()
    return apply_ignition(config, target)


def _make_disk(vm_image: VmImage, run_dir: Path) -> Path:
    """This run's root: the cached root hard-linked, Ignition's files copied over it (a file
    it replaces is unlinked first: the cache's own inode is never written), as an ext4 disk."""
    root = run_dir / "root"
    copy_tree_linked(vm_image.root, root)
    ignition = run_dir / "ignition"
    for path in sorted(ignition.rglob("*")):
        target = root / path.relative_to(ignition)
        if path.is_dir() and not path.is_symlink():
            target.mkdir(exist_ok=True)
            shutil.copystat(path, target)
            continue
        if target.exists() or target.is_symlink():
            target.unlink()
        shutil.copy2(path, target, follow_symlinks=False)
    disk = run_dir / "disk.img"
    make_ext4(root, disk, tree_bytes(root) + DISK_HEADROOM)
    shutil.rmtree(root)
    return disk
