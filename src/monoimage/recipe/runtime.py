"""The `runtime:` part of an image recipe: the small-host limits and the host integration the
services need (host namespaces, devices, host mounts, sysctls, privileged).

Every value here ends up in a `podman run` option, a Quadlet key and a unit line, so each is
one token checked whole: a device is a normal path under /dev, a host mount neither hides the
image's own system trees nor hands the container the host's root, its /etc or a container
engine's socket, and a sysctl is one the kernel keeps per namespace (any other would change
the host itself)."""

from __future__ import annotations

import re

from monoimage.recipe.fields import Fields
from monoimage.recipe.limits import shown
from monoimage.recipe.located_yaml import KeyPath
from monoimage.recipe.model import HostMount, Runtime
from monoimage.recipe.scalars import check_image_path

# Mounted over, these would hide the image itself (or what the init and podman provide).
SYSTEM_TARGETS = frozenset(("/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32",
                            "/lib64", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys",
                            "/tmp", "/usr", "/var", "/usr/bin", "/usr/lib", "/usr/sbin",
                            "/usr/local", "/usr/share", "/var/lib", "/run/secrets"))
# Handed to a container, these give it the host (its root, its accounts, its kernel's
# controls, or the container engine that runs as root).
SENSITIVE_SOURCES = frozenset(("/", "/boot", "/dev", "/etc", "/home", "/proc", "/root", "/run",
                               "/sys", "/usr", "/var", "/var/run", "/etc/shadow", "/etc/sudoers",
                               "/run/podman", "/var/run/podman", "/run/docker.sock",
                               "/var/run/docker.sock", "/run/containerd", "/var/lib/containers"))
SENSITIVE_UNDER = ("/proc/", "/sys/kernel/", "/sys/firmware/", "/run/podman/",
                   "/var/lib/containers/", "/run/containerd/")
SYSCTL_RE = re.compile(r"[a-z][a-z0-9_]*(?:\.[A-Za-z0-9_-]+)+")
NET_SYSCTL = "net."
IPC_SYSCTLS = ("kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue.")


def parse_runtime(fields: Fields) -> Runtime:
    memory = fields.text("memory", limit=32)
    if not re.fullmatch(r"[1-9]\d{0,12}[kmg]?", memory.lower()):
        raise fields.error("memory", f"{shown(memory)} is not a size such as 512m or 1g")
    network = fields.one_of("network")
    ipc = fields.one_of("ipc")
    runtime = Runtime(memory=memory.lower(), pids_limit=fields.whole("pids_limit"),
                      read_only=fields.flag("read_only"),
                      network=network, pid=fields.one_of("pid"), ipc=ipc,  # type: ignore[arg-type]
                      privileged=fields.flag("privileged"),
                      devices=_devices(fields),
                      host_mounts=tuple(_host_mount(Fields(fields.doc, fields.at("host_mounts")
                                                           + (i,), item))
                                        for i, item in enumerate(fields.items("host_mounts"))),
                      sysctls=_sysctls(fields.mapping("sysctls"), network, ipc))
    targets: dict[str, int] = {}
    for i, mount in enumerate(runtime.host_mounts):
        if mount.target in targets:
            raise fields.doc.error(fields.at("host_mounts") + (i, "target"),
                                   f"{mount.target} is mounted twice (first as "
                                   f"host_mounts[{targets[mount.target]}])")
        targets[mount.target] = i
    fields.done()
    return runtime


def _devices(fields: Fields) -> tuple[str, ...]:
    devices = fields.texts("devices")
    for i, device in enumerate(devices):
        where = fields.at("devices") + (i,)
        _check_host_path(fields, where, device)
        if not device.startswith("/dev/"):
            raise fields.doc.error(where, f"{shown(device)} is not a device: give a path "
                                          "under /dev, such as /dev/kvm")
        if device in devices[:i]:
            raise fields.doc.error(where, f"{device} is listed twice")
    return devices


def _host_mount(fields: Fields) -> HostMount:
    source: str = fields.text("source", required=True)
    _check_host_path(fields, fields.at("source"), source)
    if source in SENSITIVE_SOURCES or source.startswith(SENSITIVE_UNDER):
        raise fields.error("source", f"{source} gives the container the host itself: mount "
                                     "the one directory a service needs (devices go under "
                                     "`devices`)")
    target: str = fields.text("target") or source
    _check_host_path(fields, fields.at("target"), target)
    if target in SYSTEM_TARGETS or target.startswith("/proc/"):
        raise fields.error("target" if fields.has("target") else "source",
                           f"{target} would hide the image's own {target}: mount a directory "
                           "below it")
    mount = HostMount(source=source, target=target, read_only=fields.flag("read_only"))
    fields.done()
    return mount


def _check_host_path(fields: Fields, where: KeyPath, value: str) -> None:
    """An absolute, normal path that is one token of podman's `SRC:DST:OPTIONS` syntax."""
    check_image_path(fields.doc, where, value)
    bad = next((c for c in value if c in ":,=" or c.isspace()), None)
    if bad is not None:
        raise fields.doc.error(where, f"{shown(value)} contains {bad!r}, which podman's "
                                      "mount and device options cannot hold")


def _sysctls(fields: Fields, network: str, ipc: str) -> tuple[tuple[str, str], ...]:
    result = []
    for name in list(fields.value):
        if not SYSCTL_RE.fullmatch(name) or len(name) > 255:
            raise fields.error(name, f"{shown(name)} is not a sysctl name such as "
                                     "net.ipv4.ip_forward")
        fields.raw(name)
        if name.startswith(NET_SYSCTL):
            if network == "host":
                raise fields.error(name, f"{name} would change the host's own network: "
                                         "with `network: host` set it on the host")
        elif name.startswith(IPC_SYSCTLS):
            if ipc == "host":
                raise fields.error(name, f"{name} would change the host's own IPC: "
                                         "with `ipc: host` set it on the host")
        else:
            raise fields.error(name, f"{name} is not kept per container: it would change the "
                                     "host (allowed: net.*, kernel.shm*, kernel.msg*, "
                                     "kernel.sem, fs.mqueue.*)")
        value = fields.value[name]
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise fields.error(name, "give the sysctl's value as a string or a whole number")
        result.append((name, fields.check_text(fields.at(name), str(value), limit=256)))
    return tuple(sorted(result))
