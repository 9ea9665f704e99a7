"""registry: a real docker-registry on loopback, the counting proxy, site pulls and updates."""

from __future__ import annotations

import http.client
import tempfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest

from monoimage.errors import UserError
from monoimage.footprint.pull_check import Deployment, PullCheck, PullMeasure, Served, repo_tags
from monoimage.tools import registry as registry_module
from monoimage.tools.counting_proxy import counting_proxy
from monoimage.tools.registry import empty_site, push, serve_registry
from monoimage.tools.skopeo import load_image
from test_footprint_images import image_builder, package_files
from timing import scaled


def get(host: str, path: str, method: str = "GET") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, timeout=scaled(5))
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def registry_pids() -> set[int]:
    pids = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "exe").resolve().name == "docker-registry":
                    pids.add(int(proc.name))
            except OSError:
                continue
    return pids


@pytest.mark.tools
def test_registry_starts_answers_and_leaves_nothing_behind() -> None:
    before = registry_pids()
    with serve_registry() as registry:
        assert get(registry.host, "/v2/") == (200, b"{}")
        assert registry.host.startswith("127.0.0.1:")
        ours = registry_pids() - before
        assert len(ours) == 1
        root = registry.root
    assert not root.exists()
    assert registry_pids() - before == set()
    with pytest.raises(OSError):
        get(registry.host, "/v2/")
    (pid,) = ours
    assert not Path(f"/proc/{pid}").exists()


@pytest.mark.tools
def test_registry_is_stopped_when_the_block_fails() -> None:
    before = registry_pids()
    with pytest.raises(RuntimeError, match="boom"), serve_registry() as registry:
        raise RuntimeError("boom")
    assert not registry.root.exists()
    assert registry_pids() - before == set()


class _Upstream(BaseHTTPRequestHandler):
    """A stand-in upstream for the proxy alone: one chunked and one sized answer."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b"x" * 70_000
        self.send_response(200)
        if self.path == "/chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(body), 30_000):
                piece = body[start:start + 30_000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_proxy_counts_body_bytes_sized_or_chunked_and_none_for_head(upstream: str) -> None:
    # A plain Python server stands in for the registry: it can send a chunked body on demand.
    with counting_proxy(upstream) as proxy:
        assert get(proxy.host, "/sized") == (200, b"x" * 70_000)
        assert get(proxy.host, "/chunked") == (200, b"x" * 70_000)
        assert get(proxy.host, "/sized", "HEAD") == (200, b"")
        measure = proxy.take()
        assert measure.requests == (Served("GET", "/sized", 200, 70_000, "127.0.0.1"),
                                    Served("GET", "/chunked", 200, 70_000, "127.0.0.1"),
                                    Served("HEAD", "/sized", 200, 0, "127.0.0.1"))
        assert proxy.take() == PullMeasure(())


def test_repo_tags_are_valid_registry_names() -> None:
    deployment = Deployment("Kolla Style", ("localhost/Edge_Nova:v1", "quay/x/edge-nova@sha256:ab"))
    assert repo_tags(deployment) == ("kolla-style/00-edge-nova:site", "kolla-style/01-edge-nova:site")


def test_updated_images_must_match_the_images() -> None:
    with pytest.raises(ValueError, match="2 images but 1 updated"):
        Deployment("x", ("a", "b"), ("a2",))


@pytest.mark.build
@pytest.mark.tools
def test_pull_counts_what_the_registry_log_says_and_update_pulls_only_changes(
        tmp_path: Path) -> None:
    with image_builder("registry") as builder, serve_registry() as registry, \
            counting_proxy(registry.host) as proxy:
        base = builder.build("base", [package_files(["libc"], {})])
        child = builder.build("child", [package_files(["svc-a"], {})], base=base)
        image = load_image(child, tmp_path)
        pushed = push(registry, child, "edge/child:site")
        assert pushed == f"{registry.host}/edge/child:site"
        with empty_site() as site:
            assert not any(site.root.rglob("*/overlay/*/diff"))
            proxy.take()
            site.pull(proxy.host, ["edge/child:site"])
            first = proxy.take()
            assert site.local_digest("edge/child:site") == image.manifest_digest
            assert first.count("GET", "manifests") == 1
            assert first.count("GET", "blobs") == 1 + len(image.layers)
            assert first.blob_bytes == sum(blob.size for blob in image.blobs())

            # The registry's own log agrees with the proxy, byte for byte, on every GET. The
            # client fetches layer blobs in parallel, so the two may record them in either order.
            logged = [r for r in registry.access_log() if r.method == "GET"]
            served = [r for r in first.requests if r.method == "GET"]
            assert sorted(served, key=_request_key) == sorted(logged[-len(served):],
                                                               key=_request_key)

            assert site.update(proxy.host, ["edge/child:site"]) == ()
            unchanged = proxy.take()
            assert unchanged.bytes_served == 0
            assert [r.method for r in unchanged.requests] == ["HEAD"]
            # ...though the registry logs the manifest's size for that HEAD: why we count bytes
            # on the wire rather than trusting the access log.
            assert registry.access_log()[-1].method == "HEAD"
            assert registry.access_log()[-1].body_bytes == image.manifest.size

            newer = builder.build("child2", [package_files(["svc-a"], {"svc-a": 2})], base=base)
            push(registry, newer, "edge/child:site")
            assert site.update(proxy.host, ["edge/child:site"]) == ("edge/child:site",)
            after = load_image(newer, tmp_path)
            assert proxy.take().blob_bytes == sum(
                b.size for b in after.blobs() if b not in image.blobs())
            root = site.root
    assert not root.exists()
    assert not [line for line in Path("/proc/self/mountinfo").read_text().splitlines()
                if str(root) in line]


def _request_key(served: Served) -> tuple[str, str, int, int]:
    return (served.method, served.path, served.status, served.body_bytes)


def test_pull_check_tolerates_one_percent_and_no_more() -> None:
    assert PullCheck("m", "first-deploy", 1_000_000, 1_010_000).agrees()
    assert not PullCheck("m", "first-deploy", 1_000_000, 1_010_001).agrees()
    assert PullCheck("m", "day-2", 0, 0).agrees()
    assert not PullCheck("m", "day-2", 0, 1).agrees()


def test_a_registry_that_cannot_start_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # `false` stands in for a registry binary that exits at once (a bad config, a used port).
    monkeypatch.setattr(registry_module, "REGISTRY_BINARY", "false")
    leftovers = set(Path(tempfile.gettempdir()).glob("monoimage-registry-*"))
    with pytest.raises(UserError, match="docker-registry did not start"), serve_registry():
        pass
    assert set(Path(tempfile.gettempdir()).glob("monoimage-registry-*")) == leftovers
