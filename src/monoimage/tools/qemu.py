"""QEMU, the one way monoimage runs a VM: accelerator probe, start, stop.

The VM boots a kernel and initramfs directly (`-kernel/-initrd/-append`) from one raw virtio
disk, with QEMU user networking only: `restrict=on` (the guest reaches nothing of the host or
the world), one `guestfwd` (the registry the guest pulls from: every guest connection to it
runs `guestfwd_relay.py`, which carries it to one loopback address of the build host), a
`hostfwd` per published port on 127.0.0.1. The serial console and the qemu-guest-agent port are
unix sockets in the run folder; the console is also logged to a file.

KVM is used only when a probe proves it: a guest kernel booted under KVM must reach its panic
(no root given) within `KVM_PROBE_SECONDS`, in a QEMU process that is killed otherwise. On this
host `/dev/kvm` exists and a KVM guest hangs: TCG runs then, and the report says which ran.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from monoimage.errors import MissingToolError, UserError
from monoimage.tools.run import Running, ToolTimeout, is_running, require, run, spawn, stop_group

QEMU = "qemu-system-x86_64"
QEMU_PACKAGE = "qemu-system-x86"
KVM_PROBE_SECONDS = 10.0
RELAY = Path(__file__).with_name("guestfwd_relay.py")
GUEST_NET = "10.0.2.0/24"          # QEMU user networking's guest network (its default)
GUEST_ADDRESS = "10.0.2.15"
AGENT_PORT = "org.qemu.guest_agent.0"
STOP_GRACE = (5.0, 5.0)            # seconds after SIGINT, then SIGTERM: a VM holds no state

Accelerator = Literal["kvm", "tcg"]


@dataclass(frozen=True)
class Forward:
    """One `hostfwd`: 127.0.0.1:host_port on the build host to guest_port in the VM."""

    protocol: str        # tcp | udp
    host_port: int
    guest_port: int


@dataclass(frozen=True)
class Machine:
    """What a VM boots and how it is wired."""

    kernel: Path
    initrd: Path
    disk: Path
    cmdline: str
    run_dir: Path                     # sockets and the console log live here
    guest_service: tuple[str, int]    # (address, port) the guest connects to: the registry
    host_target: tuple[str, int]      # where on the build host that connection goes
    forwards: tuple[Forward, ...] = ()
    memory_mib: int = 2048
    cpus: int = 2

    @property
    def agent_socket(self) -> Path:
        return self.run_dir / "agent.sock"

    @property
    def console_socket(self) -> Path:
        return self.run_dir / "console.sock"

    @property
    def console_log(self) -> Path:
        return self.run_dir / "console.log"


@dataclass(frozen=True)
class Vm:
    """A running VM: its QEMU process, machine and accelerator."""

    process: Running
    machine: Machine
    accelerator: Accelerator

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def running(self) -> bool:
        return is_running(self.process)

    def console(self) -> str:
        try:
            return self.machine.console_log.read_text(errors="replace")
        except OSError:
            return ""


def require_qemu() -> str:
    """The path of QEMU, or a MissingToolError naming its Debian package."""
    return require_tool(QEMU, QEMU_PACKAGE)


def require_tool(program: str, package: str) -> str:
    try:
        return require(program)
    except MissingToolError:
        raise MissingToolError(program, package) from None


def probe_kvm(kernel: Path, seconds: float = KVM_PROBE_SECONDS) -> tuple[bool, str]:
    """Whether a KVM guest runs here: (works, why). The guest kernel, given no root, must
    panic (and QEMU exit, `-no-reboot`) in time; a hung QEMU is killed."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "no usable /dev/kvm"
    argv = [QEMU, "-accel", "kvm", "-cpu", "host", "-m", "256", "-nodefaults", "-display",
            "none", "-no-reboot", "-serial", "stdio", "-kernel", str(kernel), "-append",
            "console=ttyS0 panic=-1 root=/dev/nonexistent"]
    try:
        done = run(argv, timeout=seconds, check=False, package=QEMU_PACKAGE, what="KVM probe")
    except ToolTimeout:
        return False, f"a KVM guest did not reach its first milestone within {seconds:g} s"
    if "Kernel panic" in done.stdout or "VFS:" in done.stdout:
        return True, "a KVM guest booted its kernel"
    return False, f"KVM probe exit {done.exit_code}: {done.last_line()}"


def qemu_argv(machine: Machine, accelerator: Accelerator) -> list[str]:
    """The QEMU command line for `machine` (see the module's docstring)."""
    address, port = machine.guest_service
    target_host, target_port = machine.host_target
    relay = " ".join(shlex.quote(a) for a in (sys.executable, "-I", "-S", str(RELAY),
                                              target_host, str(target_port)))
    netdev = [f"user,id=net0,restrict=on,net={GUEST_NET}",
              f"guestfwd=tcp:{address}:{port}-cmd:{relay}"]
    netdev += [f"hostfwd={f.protocol}:127.0.0.1:{f.host_port}-:{f.guest_port}"
               for f in machine.forwards]
    cpu = ["-accel", "kvm", "-cpu", "host"] if accelerator == "kvm" else \
        ["-accel", "tcg,thread=multi", "-cpu", "max"]
    return [QEMU, "-name", f"monoimage-vm,process=monoimage-vm-{machine.run_dir.name}",
            "-machine", "q35", *cpu, "-smp", str(machine.cpus), "-m", str(machine.memory_mib),
            "-nodefaults", "-display", "none", "-no-reboot",
            "-kernel", str(machine.kernel), "-initrd", str(machine.initrd),
            "-append", machine.cmdline,
            "-drive", f"file={machine.disk},format=raw,if=virtio,cache=unsafe,discard=unmap",
            "-netdev", ",".join(netdev), "-device", "virtio-net-pci,netdev=net0",
            "-device", "virtio-rng-pci",
            "-chardev", f"socket,id=agent,path={machine.agent_socket},server=on,wait=off",
            "-device", "virtio-serial-pci",
            "-device", f"virtserialport,chardev=agent,name={AGENT_PORT}",
            "-chardev", (f"socket,id=console,path={machine.console_socket},server=on,"
                         f"wait=off,logfile={machine.console_log}"),
            "-serial", "chardev:console"]


def start_vm(machine: Machine, accelerator: Accelerator) -> Vm:
    """Start QEMU in the background; a UserError when it exits at once (bad arguments, a
    port taken), with its own last word."""
    log = machine.run_dir / "qemu.log"
    process = spawn(qemu_argv(machine, accelerator), stdout=log, package=QEMU_PACKAGE)
    vm = Vm(process, machine, accelerator)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not machine.agent_socket.exists():
        if not vm.running():
            said = log.read_text(errors="replace").strip().splitlines()
            raise UserError(f"{QEMU} exited at once: {said[-1] if said else 'no output'}")
        time.sleep(0.05)
    return vm


def stop_vm(vm: Vm) -> None:
    """Stop QEMU (the guest is thrown away: no shutdown is waited for) and wait for it."""
    stop_group(vm.process, STOP_GRACE)
