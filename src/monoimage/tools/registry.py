"""A real registry on loopback, and site pulls whose served bytes are counted on the wire.

`serve_registry()` runs Debian's `docker-registry` (distribution 2.8) with a config written to
a temporary directory (filesystem storage in that directory, 127.0.0.1 on a free port, no auth,
access log on) and always stops it and removes the directory. `push()` copies an image from
containers-storage to it with skopeo, which gzips layers exactly as `oci.load_image` does.

Bytes served are counted by `counting_proxy()`: a small HTTP proxy on loopback between the site's
client and the registry that counts, request by request, the response body bytes it writes to
the client socket. Why a proxy rather than the registry's access log: it counts what crossed
the connection, whatever the registry is (the same proxy measures a mirror or another registry),
and it attributes bytes to each request. The access log records the size a handler meant to
send: distribution logs a HEAD of a manifest with the manifest's length though no body is sent.
The tests check that for GETs the two agree byte for byte.

A site is an empty containers-storage root (overlay driver, as on an edge host) in a temporary
directory. `Site.pull()` copies images into it with skopeo, which skips blobs the storage already
holds; `Site.update()` does what `podman auto-update` does: a HEAD per image to learn its digest,
and a pull only of images whose digest changed.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from monoimage.errors import UserError
from monoimage.footprint.pull_check import Deployment, MeasuredPull, Served, repo_tags
from monoimage.image import MEDIA_DOCKER_MANIFEST, MEDIA_OCI_MANIFEST
from monoimage.tools.counting_proxy import counting_proxy
from monoimage.tools.netns import in_namespace
from monoimage.tools.run import Running, is_running, run, spawn, stop_group
from monoimage.tools.skopeo import skopeo

REGISTRY_BINARY = "docker-registry"
REGISTRY_GRACE = (10.0, 5.0)  # seconds after SIGINT, then SIGTERM
_ACCESS_LINE = re.compile(r'^(?P<client>[0-9a-f.:\[\]]+) .*?"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3}) '
                          r'(?P<size>\d+)')


@dataclass(frozen=True)
class Registry:
    """A running docker-registry: where it listens and where it logs."""

    host: str
    root: Path
    log: Path

    def access_log(self) -> tuple[Served, ...]:
        """Requests as the registry's own access log records them (size = bytes it meant)."""
        return tuple(
            Served(m["method"], m["path"], int(m["status"]), int(m["size"]), m["client"])
            for m in map(_ACCESS_LINE.search, self.log.read_text().splitlines()) if m)


def registry_config(root: Path, port: int, addr: str = "127.0.0.1",
                    remote: str | None = None) -> dict[str, object]:
    """A docker-registry config: filesystem storage under root, loopback, no auth; with
    `remote` (http://host:port), a pull-through cache of that registry."""
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
        "http": {"addr": f"{addr}:{port}"},
    }
    if remote is not None:
        config["proxy"] = {"remoteurl": remote}
    return config


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(host: str) -> bool:
    try:
        conn = http.client.HTTPConnection(host, timeout=1)
        conn.request("GET", "/v2/")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def _started(process: Running, registry: Registry, timeout: float) -> bool:
    # Our process must say it listens on that port: something else might answer there.
    listening = f"listening on {registry.host}"
    deadline = time.monotonic() + timeout
    while is_running(process) and time.monotonic() < deadline:
        if listening in registry.log.read_text(errors="replace") and _answers(registry.host):
            return True
        time.sleep(0.05)
    return False


@contextmanager
def serve_registry(start_timeout: float = 15.0) -> Iterator[Registry]:
    """Run docker-registry on 127.0.0.1 until the block ends; process and files are removed."""
    root = Path(tempfile.mkdtemp(prefix="monoimage-registry-"))
    config, log = root / "config.yml", root / "registry.log"
    process: Running | None = None
    try:
        for _ in range(3):  # the free port can be taken between our probe and its bind
            port = _free_port()
            config.write_text(yaml.safe_dump(registry_config(root, port)))
            # The registry reads REGISTRY_* variables as config overrides: only our file counts.
            process = spawn([REGISTRY_BINARY, "serve", str(config)], stdout=log,
                            without=("REGISTRY_",), package="docker-registry")
            registry = Registry(f"127.0.0.1:{port}", root, log)
            if _started(process, registry, start_timeout):
                break
            stop_group(process, REGISTRY_GRACE)
            process = None
        else:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            raise UserError(f"docker-registry did not start: {' | '.join(tail)}")
        yield registry
    finally:
        if process is not None:
            stop_group(process, REGISTRY_GRACE)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def serve_in_namespace(namespace: str, port: int, remote: str | None = None,
                       start_timeout: float = 15.0) -> Iterator[Registry]:
    """docker-registry inside a network namespace, on every address of it; with `remote`
    (http://host:port), a pull-through cache of that registry. `host` is as seen from inside
    the namespace (its loopback). Process and files are removed when the block ends."""
    root = Path(tempfile.mkdtemp(prefix="monoimage-registry-"))
    config, log = root / "config.yml", root / "registry.log"
    config.write_text(yaml.safe_dump(registry_config(root, port, "0.0.0.0", remote)))
    process = spawn(in_namespace(namespace, [REGISTRY_BINARY, "serve", str(config)]),
                    stdout=log, without=("REGISTRY_",), package="docker-registry")
    try:
        registry = Registry(f"127.0.0.1:{port}", root, log)
        deadline = time.monotonic() + start_timeout
        # A fresh namespace: whatever listens on the port there is this registry.
        while "listening on" not in log.read_text(errors="replace"):
            if not is_running(process) or time.monotonic() > deadline:
                tail = log.read_text(errors="replace").strip().splitlines()[-3:]
                raise UserError(f"docker-registry did not start in {namespace}: "
                                f"{' | '.join(tail) or 'no output'}")
            time.sleep(0.05)
        yield registry
    finally:
        stop_group(process, REGISTRY_GRACE)
        shutil.rmtree(root, ignore_errors=True)


def push(registry: Registry, ref: str, repo_tag: str, namespace: str | None = None) -> str:
    """Copy REF from containers-storage to the registry as repo:tag (from inside `namespace`
    when the registry listens in one); its registry reference."""
    target = f"{registry.host}/{repo_tag}"
    argv = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
            f"containers-storage:{ref}", f"docker://{target}"]
    if namespace is None:
        skopeo(*argv[1:])
    else:
        done = run(in_namespace(namespace, argv), check=False)
        if not done.ok:
            raise UserError(f"skopeo copy {ref} to {namespace}: {done.last_line()}")
    return target


# ---------------------------------------------------------------- sites


@dataclass(frozen=True)
class Site:
    """An edge site's container storage: overlay, in its own root and runroot."""

    root: Path

    @property
    def storage(self) -> str:
        return f"[overlay@{self.root / 'root'}+{self.root / 'runroot'}]"

    def local_digest(self, repo_tag: str) -> str | None:
        """The manifest digest of the site's copy of repo:tag, None if it has none."""
        try:
            raw = skopeo("inspect", "--raw",
                         f"containers-storage:{self.storage}localhost/{repo_tag}")
        except UserError:
            return None
        return "sha256:" + hashlib.sha256(raw).hexdigest()

    def pull(self, registry_host: str, repo_tags: Sequence[str]) -> None:
        """Pull every image, in order, from the registry into the site's storage."""
        for repo_tag in repo_tags:
            skopeo("copy", "--quiet", "--src-tls-verify=false",
                   f"docker://{registry_host}/{repo_tag}",
                   f"containers-storage:{self.storage}localhost/{repo_tag}")

    def update(self, registry_host: str, repo_tags: Sequence[str]) -> tuple[str, ...]:
        """Check each image's digest with a HEAD and pull the changed ones; those pulled."""
        changed = tuple(t for t in repo_tags
                        if remote_digest(registry_host, t) != self.local_digest(t))
        self.pull(registry_host, changed)
        return changed


def remote_digest(registry_host: str, repo_tag: str) -> str:
    """The registry's manifest digest for repo:tag, asked with a HEAD as podman does."""
    repo, _, tag = repo_tag.rpartition(":")
    conn = http.client.HTTPConnection(registry_host, timeout=30)
    try:
        conn.request("HEAD", f"/v2/{repo}/manifests/{tag}",
                     headers={"Accept": f"{MEDIA_OCI_MANIFEST}, {MEDIA_DOCKER_MANIFEST}"})
        response = conn.getresponse()
        response.read()
        digest = response.getheader("Docker-Content-Digest")
    finally:
        conn.close()
    if response.status != 200 or not digest:
        raise UserError(f"{registry_host}/{repo_tag}: registry answered {response.status} "
                        f"to a manifest HEAD")
    return digest


@contextmanager
def empty_site() -> Iterator[Site]:
    """A fresh, empty site storage root; removed when the block ends."""
    root = Path(tempfile.mkdtemp(prefix="monoimage-site-"))
    try:
        yield Site(root)
    finally:
        unmount_under(root)
        shutil.rmtree(root, ignore_errors=True)


def unmount_under(root: Path) -> None:
    """Unmount (lazily) whatever is mounted under `root`, deepest first."""
    # Pulling mounts nothing, but the overlay driver may leave its home bind-mounted private.
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(str(root))), reverse=True):
        run(["umount", "-l", point], check=False)


def measure_deployments(deployments: Sequence[Deployment]) -> tuple[MeasuredPull, ...]:
    """Push each deployment to a fresh loopback registry, pull it into an empty site, count.

    With `updated` images, push them under the same tags and let the site update: the day-2
    measure is what the registry served for that update alone.
    """
    measured = []
    with serve_registry() as registry, counting_proxy(registry.host) as proxy:
        for deployment in deployments:
            tags = repo_tags(deployment)
            for ref, tag in zip(deployment.images, tags, strict=True):
                push(registry, ref, tag)
            with empty_site() as site:
                proxy.take()
                site.pull(proxy.host, tags)
                first = proxy.take()
                day2 = None
                if deployment.updated:
                    for ref, tag in zip(deployment.updated, tags, strict=True):
                        push(registry, ref, tag)
                    proxy.take()
                    site.update(proxy.host, tags)
                    day2 = proxy.take()
            measured.append(MeasuredPull(deployment.name, first, day2))
    return tuple(measured)


