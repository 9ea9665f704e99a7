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
import math
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from monoimage.errors import MissingToolError, UserError
from monoimage.footprint.figures import FootprintReport
from monoimage.image import MEDIA_DOCKER_MANIFEST, MEDIA_OCI_MANIFEST
from monoimage.tools.skopeo import run_container_tool

REGISTRY_BINARY = "docker-registry"
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                         "te", "trailer", "transfer-encoding", "upgrade"})
_ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3}) '
                          r'(?P<size>\d+)')
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Served:
    """One request answered: method, path, status, and response body bytes written."""

    method: str
    path: str
    status: int
    body_bytes: int


@dataclass(frozen=True)
class PullMeasure:
    """What the registry served during one site pull, request by request."""

    requests: tuple[Served, ...]

    @property
    def bytes_served(self) -> int:
        """Response body bytes of every request (pings and errors included)."""
        return sum(r.body_bytes for r in self.requests)

    @property
    def blob_bytes(self) -> int:
        """Bytes of successful manifest and blob responses: what the footprint counts."""
        return sum(r.body_bytes for r in self.requests
                   if r.status == 200 and ("/blobs/" in r.path or "/manifests/" in r.path))

    def count(self, method: str, kind: str) -> int:
        """How many `method` requests went to `kind` ('manifests' or 'blobs')."""
        return sum(1 for r in self.requests if r.method == method and f"/{kind}/" in r.path)


@dataclass(frozen=True)
class Registry:
    """A running docker-registry: where it listens and where it logs."""

    host: str
    root: Path
    log: Path

    def access_log(self) -> tuple[Served, ...]:
        """Requests as the registry's own access log records them (size = bytes it meant)."""
        return tuple(
            Served(m["method"], m["path"], int(m["status"]), int(m["size"]))
            for m in map(_ACCESS_LINE.search, self.log.read_text().splitlines()) if m)


def registry_config(root: Path, port: int) -> dict[str, object]:
    """A docker-registry config: filesystem storage under root, loopback, no auth."""
    return {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }


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


def _started(process: subprocess.Popen[bytes], registry: Registry, timeout: float) -> bool:
    # Our process must say it listens on that port: something else might answer there.
    listening = f"listening on {registry.host}"
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if listening in registry.log.read_text(errors="replace") and _answers(registry.host):
            return True
        time.sleep(0.05)
    return False


@contextmanager
def serve_registry(start_timeout: float = 15.0) -> Iterator[Registry]:
    """Run docker-registry on 127.0.0.1 until the block ends; process and files are removed."""
    if shutil.which(REGISTRY_BINARY) is None:
        raise MissingToolError(REGISTRY_BINARY, "docker-registry")
    root = Path(tempfile.mkdtemp(prefix="monoimage-registry-"))
    config, log = root / "config.yml", root / "registry.log"
    # The registry reads REGISTRY_* variables as config overrides: only our file counts.
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    process: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(3):  # the free port can be taken between our probe and its bind
            port = _free_port()
            config.write_text(yaml.safe_dump(registry_config(root, port)))
            with log.open("wb") as out:
                process = subprocess.Popen([REGISTRY_BINARY, "serve", str(config)], env=env,
                                           stdout=out, stderr=subprocess.STDOUT)
            registry = Registry(f"127.0.0.1:{port}", root, log)
            if _started(process, registry, start_timeout):
                break
            _stop(process)
            process = None
        else:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            raise UserError(f"docker-registry did not start: {' | '.join(tail)}")
        yield registry
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(root, ignore_errors=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def push(registry: Registry, ref: str, repo_tag: str) -> str:
    """Copy REF from containers-storage to the registry as repo:tag; its registry reference."""
    target = f"{registry.host}/{repo_tag}"
    run_container_tool(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                        f"containers-storage:{ref}", f"docker://{target}"])
    return target


# ---------------------------------------------------------------- counting proxy


@dataclass
class Proxy:
    """A running counting proxy: where it listens, and what it has served so far."""

    host: str
    _served: list[Served] = field(default_factory=list)
    _in_flight: int = 0
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def begin(self) -> None:
        with self._changed:
            self._in_flight += 1

    def record(self, served: Served) -> None:
        with self._changed:
            self._served.append(served)
            self._in_flight -= 1
            self._changed.notify_all()

    def take(self, timeout: float = 30.0) -> PullMeasure:
        """Everything served since the last take, and start counting afresh.

        A client can read the last byte before the proxy's thread has recorded the request:
        wait until every request begun has been recorded.
        """
        with self._changed:
            if not self._changed.wait_for(lambda: self._in_flight == 0, timeout):
                raise RuntimeError(f"{self._in_flight} proxied requests still open")
            taken, self._served[:] = tuple(self._served), []
        return PullMeasure(taken)


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, proxy: Proxy) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream = upstream
        self.proxy = proxy


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer
    written: int = 0

    def do_GET(self) -> None:
        self._forward()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass  # the proxy records requests itself; stderr stays quiet

    def _forward(self) -> None:
        self.server.proxy.begin()
        upstream = http.client.HTTPConnection(self.server.upstream, timeout=120)
        status, self.written = 502, 0
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            # Header by header: a client sends Accept several times (one per manifest type).
            upstream.putrequest(self.command, self.path, skip_host=True,
                                skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    upstream.putheader(name, value)
            upstream.endheaders(body)
            response = upstream.getresponse()
            status = response.status
            self._relay(response)
        finally:
            upstream.close()
            self.server.proxy.record(Served(self.command, self.path, status, self.written))

    def _relay(self, response: http.client.HTTPResponse) -> None:
        """Send the upstream response on, counting body bytes in `written` as they go."""
        size = response.getheader("Content-Length")
        buffered = None
        if size is None and self.command != "HEAD":
            buffered = response.read()  # a chunked upstream body: sent on with its length
            size = str(len(buffered))
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        if size is not None:
            self.send_header("Content-Length", size)
        self.end_headers()
        if self.command == "HEAD":
            return
        if buffered is not None:
            self.wfile.write(buffered)
            self.written += len(buffered)
            return
        while chunk := response.read(_CHUNK):
            self.wfile.write(chunk)
            self.written += len(chunk)


@contextmanager
def counting_proxy(upstream: str) -> Iterator[Proxy]:
    """An HTTP proxy on 127.0.0.1 to `upstream` (host:port) that counts bytes it serves."""
    proxy = Proxy("")
    server = _ProxyServer(upstream, proxy)
    proxy.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="counting-proxy", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


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
            raw = run_container_tool(["skopeo", "inspect", "--raw",
                                      f"containers-storage:{self.storage}localhost/{repo_tag}"])
        except UserError:
            return None
        return "sha256:" + hashlib.sha256(raw).hexdigest()

    def pull(self, registry_host: str, repo_tags: Sequence[str]) -> None:
        """Pull every image, in order, from the registry into the site's storage."""
        for repo_tag in repo_tags:
            run_container_tool([
                "skopeo", "copy", "--quiet", "--src-tls-verify=false",
                f"docker://{registry_host}/{repo_tag}",
                f"containers-storage:{self.storage}localhost/{repo_tag}"])

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
        _unmount_under(root)
        shutil.rmtree(root, ignore_errors=True)


def _unmount_under(root: Path) -> None:
    # Pulling mounts nothing, but the overlay driver may leave its home bind-mounted private.
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(str(root))), reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


# ---------------------------------------------------------------- one measured deployment


@dataclass(frozen=True)
class Deployment:
    """The local images one strategy's site runs; `updated`: the same images after an update."""

    name: str
    images: tuple[str, ...]
    updated: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.updated and len(self.updated) != len(self.images):
            raise ValueError(f"{self.name}: {len(self.images)} images but "
                             f"{len(self.updated)} updated images")


@dataclass(frozen=True)
class MeasuredPull:
    """Bytes a real registry served to an empty site, and then for the day-2 update."""

    name: str
    first_deploy: PullMeasure
    day2: PullMeasure | None


def repo_tags(deployment: Deployment) -> tuple[str, ...]:
    """Registry repo:tag names for a deployment's images: `<strategy>/<image>:site`."""
    def clean(text: str) -> str:
        return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "image"

    names = []
    for index, ref in enumerate(deployment.images):
        base = clean(ref.split("@")[0].rsplit("/", 1)[-1].split(":")[0])
        names.append(f"{clean(deployment.name)}/{index:02d}-{base}:site")
    return tuple(names)


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


@dataclass(frozen=True)
class PullCheck:
    """One computed figure next to the bytes a real registry served for it."""

    name: str
    figure: str  # "first-deploy" or "day-2"
    computed: int
    served: int

    @property
    def relative_error(self) -> float:
        if self.computed == 0:
            return 0.0 if self.served == 0 else math.inf
        return abs(self.served - self.computed) / self.computed

    def agrees(self, tolerance: float = 0.01) -> bool:
        """Within `tolerance` (relative; the design asks for 1%)."""
        return self.relative_error <= tolerance


def check_pulls(report: FootprintReport, measured: Sequence[MeasuredPull]
                ) -> tuple[PullCheck, ...]:
    """Each strategy's computed first-deploy and day-2 bytes against what was served."""
    served = {m.name: m for m in measured}
    checks = []
    for figures in report.strategies:
        pull = served.get(figures.name)
        if pull is None:
            continue
        checks.append(PullCheck(figures.name, "first-deploy", figures.first_deploy.bytes,
                                pull.first_deploy.blob_bytes))
        if figures.day2 is not None and pull.day2 is not None:
            checks.append(PullCheck(figures.name, "day-2", figures.day2.bytes,
                                    pull.day2.blob_bytes))
    return tuple(checks)
