"""Real builds on the apt path: reproducible digests, atomic failures, edge-lite's content.

These build with mmdebstrap and buildah against Debian's mirror (about 20 s for the tiny image
from a warm package cache); one image per fixture is shared by the tests that read it, and
edge-lite is the session's own build (tests/conftest.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildsupport import (
    init_usage,
    leftovers,
    opened,
    remove_images,
    unique_tag,
    write_tiny_recipe,
)
from footprint_support import EdgeLite
from monoimage.errors import UserError
from monoimage.image import (
    CONFIG_ROOT,
    ENTRYPOINT,
    HEALTH_CMD,
    LABEL_SERVICE_PORTS,
    MANIFEST_PATH,
    SBOM_PATH,
    TABLE_PATH,
)
from monoimage.init.table import load_table
from monoimage.pipeline.build import BuildOptions, BuildResult, build, image_config
from monoimage.pipeline.workspace import CONTAINER_PREFIX
from monoimage.plan.image_facts import runtime_from_labels, service_ports
from monoimage.recipe.load import load_recipe
from monoimage.recipe.model import Strip
from monoimage.tools import buildah
from monoimage.tools.cache_dir import default_cache_dir
from monoimage.tools.packagers.cache import APT_ARCHIVES
from timing import scaled

pytestmark = [pytest.mark.build, pytest.mark.tools]
MONOIMAGE = (sys.executable, "-c", "from monoimage.cli import main; main()")


def _options(tag: str, out: Path, **kw: object) -> BuildOptions:
    return BuildOptions(tag=tag, cache_dir=default_cache_dir(), out_dir=out,
                        source_date_epoch=1700000000, **kw)  # type: ignore[arg-type]


def _dpkg_query(container: str) -> dict[str, tuple[str, str, int]]:
    out = buildah.run(container, ["dpkg-query", "-W", "-f",
                                  "${Package}\t${Version}\t${Architecture}\t${Installed-Size}\n"])
    rows = (line.split("\t") for line in out.splitlines())
    return {name: (version, arch, int(size) * 1024) for name, version, arch, size in rows}


# ------------------------------------------------------------------ the tiny image


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, BuildResult]]:
    folder = tmp_path_factory.mktemp("tiny")
    recipe_path = write_tiny_recipe(folder)
    tag = unique_tag("tiny")
    result = build(load_recipe(recipe_path), _options(tag, folder / "out"))
    yield recipe_path, result
    remove_images(tag)


def test_a_cold_package_cache_gives_the_same_image_digest_as_a_warm_one(tiny, tmp_path):
    """The fixture built with the shared, warm cache; this build starts from an empty one and
    downloads every package (the CLI tests below build from the warm one again)."""
    recipe_path, warm = tiny
    tag = unique_tag("tiny-cold")
    cold_cache = tmp_path / "cold-cache"
    try:
        cold = build(load_recipe(recipe_path), dataclasses.replace(
            _options(tag, tmp_path / "out"), cache_dir=cold_cache))
        assert list((cold_cache / APT_ARCHIVES).glob("*.deb"))  # it did download
        assert cold.image_id == warm.image_id
        assert cold.digest == warm.digest and warm.digest.startswith("sha256:")
        assert cold.manifest_digest == warm.manifest_digest
    finally:
        remove_images(tag)


def _cli_build(*args: str, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MONOIMAGE, "build", *args], capture_output=True, text=True,
                          check=False, env={**os.environ, "COLUMNS": "200", **(env or {})},
                          timeout=scaled(600))


def test_cli_build_prints_a_json_summary_and_tags_the_same_image(tiny, tmp_path):
    """The command itself, from the warm cache: exit 0, a JSON summary on stdout, the same
    image as the library's build (so --source-date-epoch is what it used)."""
    recipe_path, first = tiny
    tag = unique_tag("tiny-cli")
    try:
        done = _cli_build(str(recipe_path), "-t", tag, "--json", "--out-dir",
                          str(tmp_path / "out"), "--source-date-epoch", "1700000000",
                          env={"SOURCE_DATE_EPOCH": "86400"})  # the option wins
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert (summary["image"], summary["image_id"], summary["digest"]) == \
            (tag, first.image_id, first.digest)
        assert summary["manifest"] == str(tmp_path / "out" / "manifest.json")
        assert (tmp_path / "out" / "manifest.json").read_text() == \
            first.manifest_path.read_text()
        assert list(summary["stages"]) == ["resolve", "rootfs", "strip", "init", "manifest",
                                           "layers", "config", "commit"]
        assert buildah.image_id(tag) == first.image_id
        assert f"{tag} {first.image_id[:12]}  {first.packages} packages" in done.stderr
    finally:
        remove_images(tag)


def test_cli_build_docker_format_with_source_date_epoch_from_the_environment(tiny, tmp_path):
    recipe_path, oci = tiny
    tag = unique_tag("tiny-docker")
    try:
        done = _cli_build(str(recipe_path), "-t", tag, "-q", "--format", "docker",
                          "--out-dir", str(tmp_path / "out"),
                          env={"SOURCE_DATE_EPOCH": "86400"})
        assert done.returncode == 0, done.stderr
        assert done.stdout == ""
        info = buildah.inspect_image(tag)
        manifest = json.loads(info["Manifest"])
        assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
        assert "Healthcheck" in info["Docker"]["config"]
        created = info["OCIv1"]["config"]["Labels"]["org.opencontainers.image.created"]
        assert created == "1970-01-02T00:00:00Z"          # SOURCE_DATE_EPOCH=86400
        assert buildah.image_id(tag) != oci.image_id
    finally:
        remove_images(tag)


def test_the_docker_healthcheck_runs_monoimage_init_health(tmp_path: Path) -> None:
    """Without an image: the HEALTHCHECK buildah records for the build's docker config."""
    config = image_config(load_recipe(write_tiny_recipe(tmp_path)),
                          BuildOptions(image_format="docker"), "sha256:m")
    container = buildah.from_scratch(f"monoimage-test-health-{secrets.token_hex(4)}")
    try:
        buildah.configure(container, config)
        info = buildah.buildah("inspect", container)
        health = json.loads(info)["Docker"]["config"]["Healthcheck"]
    finally:
        buildah.remove_container(container)
    assert health["Test"] == ["CMD", *HEALTH_CMD]


def test_init_is_byte_compiled_for_a_read_only_root_and_runs_isolated(tiny):
    _, result = tiny
    with opened(result.reference) as (container, root):
        package = root / "usr/lib/monoimage/monoimage_init"
        magic = buildah.run(container, ["python3", "-c",
                                        "import importlib.util as u; print(u.MAGIC_NUMBER.hex())"])
        cached = sorted((package / "__pycache__").glob("*.pyc"))
        assert {p.name.split(".")[0] for p in cached} == {p.stem for p in package.glob("*.py")}
        for pyc in cached:
            head = pyc.read_bytes()[:8]
            assert head[:4].hex() == magic.strip()  # written by the image's own python
            assert int.from_bytes(head[4:8], "little") == 0b01  # hash-based, unchecked
        before = {p.name: p.stat().st_mtime_ns for p in cached}
        # -I: a PYTHON* variable would redirect the bytecode cache (and so write there).
        usage = buildah.run(container, ["/usr/bin/monoimage-init", "--help"],
                            env={"PYTHONPYCACHEPREFIX": "/tmp/pycache-monoimage-test"})
        assert usage == init_usage()
        assert not (root / "tmp/pycache-monoimage-test").exists()
        assert {p.name: p.stat().st_mtime_ns
                for p in (package / "__pycache__").glob("*.pyc")} == before


def _assert_failed_cleanly(previous: BuildResult, build_id: str) -> None:
    assert buildah.image_id(previous.reference) == previous.image_id  # previous image untouched
    containers, images = leftovers(build_id)
    assert not containers, f"working containers left: {containers}"
    assert not images, f"temporary images left: {images}"


def test_unknown_package_fails_before_building_and_keeps_the_tag(tiny, tmp_path):
    _, previous = tiny
    recipe = load_recipe(write_tiny_recipe(tmp_path, package="no-such-package-monoimage"))
    options = _options(previous.reference, tmp_path / "out")
    with pytest.raises(UserError, match="unknown package 'no-such-package-monoimage'"):
        build(recipe, options)
    _assert_failed_cleanly(previous, options.build_id)


def test_broken_repository_fails_clearly_and_keeps_the_tag(tiny, tmp_path):
    _, previous = tiny
    broken = ("  repositories:\n    - uri: file:///nonexistent/monoimage-repo\n"
              "      suites: [bookworm]\n")
    recipe = load_recipe(write_tiny_recipe(tmp_path, repositories=broken))
    options = _options(previous.reference, tmp_path / "out")
    with pytest.raises(UserError, match="cannot read the package lists"):
        build(recipe, options)
    _assert_failed_cleanly(previous, options.build_id)


def test_failure_after_install_removes_the_working_container(tiny, tmp_path):
    recipe_path, previous = tiny
    # The parser refuses such a path; built by hand, it fails in the strip stage, after the
    # root filesystem was installed into a working container.
    recipe = dataclasses.replace(load_recipe(recipe_path), strip=Strip(paths=("/../escape",)))
    options = _options(previous.reference, tmp_path / "out")
    with pytest.raises(UserError, match="strip.paths"):
        build(recipe, options)
    _assert_failed_cleanly(previous, options.build_id)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupt_during_install_cleans_up_and_keeps_the_tag(tiny, tmp_path, signum):
    recipe_path, previous = tiny
    build_id = secrets.token_hex(6)
    proc = subprocess.Popen(
        [*MONOIMAGE, "build", str(recipe_path), "-t", previous.reference, "-q",
         "--out-dir", str(tmp_path), "--build-id", build_id],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # resolve and the root's first packages come first: minutes on a loaded host
        deadline = time.monotonic() + scaled(240)
        while not leftovers(build_id)[0]:
            assert time.monotonic() < deadline, "the build never created its working container"
            time.sleep(0.2)
        root = _mount_point(f"{CONTAINER_PREFIX}{build_id}")
        # The event: mmdebstrap has begun unpacking into the root (dpkg's database is there).
        while not Path(root, "var/lib/dpkg/status").exists():
            assert time.monotonic() < deadline and proc.poll() is None, \
                "mmdebstrap never started installing"
            time.sleep(0.1)
        proc.send_signal(signum)
        _out, err = proc.communicate(timeout=scaled(120))
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == (
        "monoimage: build interrupted: nothing was tagged; the working container and "
        "temporary image were removed")
    assert "Traceback" not in err
    _assert_failed_cleanly(previous, build_id)
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    assert not [m for m in mounts if m.startswith(root)], "mmdebstrap left mounts behind"


def _mount_point(container: str) -> str:
    for line in buildah.buildah("mount").splitlines():
        name, _, path = line.partition(" ")
        if name == container:
            return path.strip()
    raise AssertionError(f"{container} is not mounted")


# ------------------------------------------------------------------ edge-lite


@pytest.fixture(scope="module")
def edge_lite_root(edge_lite: EdgeLite) -> Iterator[tuple[str, Path]]:
    with opened(edge_lite.reference) as opened_image:
        yield opened_image


def test_edge_lite_packages_match_plan_resolve_exactly(edge_lite, edge_lite_root):
    out = subprocess.run([*MONOIMAGE, "plan", "--resolve", "--json", str(edge_lite.path)],
                         check=True, capture_output=True, text=True).stdout
    planned = json.loads(out)["resolution"]
    in_image = _dpkg_query(edge_lite_root[0])
    assert {p["name"]: p["version"] for p in planned["packages"]} == \
        {name: row[0] for name, row in in_image.items()}
    assert edge_lite.result.packages == len(in_image) == planned["totals"]["packages"]


def test_manifest_and_sbom_match_dpkg_query_inside_the_image(edge_lite, edge_lite_root):
    container, root = edge_lite_root
    in_image = _dpkg_query(container)
    text = (root / MANIFEST_PATH.lstrip("/")).read_text()
    assert text == edge_lite.result.manifest_path.read_text()  # the same file beside the image
    manifest = json.loads(text)
    assert {p["name"]: (p["version"], p["arch"], p["installed_size"])
            for p in manifest["packages"]} == in_image
    why = {p["name"]: p for p in manifest["packages"]}
    assert why["mosquitto"]["requested_by"] == ["mosquitto"]
    assert why["python3-minimal"]["requested_by"] == ["monoimage-init"]
    assert why["libmosquitto1"]["why"] == "dependency of mosquitto"
    labels = buildah.inspect_image(edge_lite.reference)["OCIv1"]["config"]["Labels"]
    assert labels["io.monoimage.manifest-digest"] == \
        "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    sbom = json.loads((root / SBOM_PATH.lstrip("/")).read_text())
    assert sbom["spdxVersion"] == "SPDX-2.3"
    assert {(p["name"], p["versionInfo"]) for p in sbom["packages"][1:]} == \
        {(name, row[0]) for name, row in in_image.items()}


def test_edge_lite_image_config(edge_lite):
    info = buildah.inspect_image(edge_lite.reference)
    config = info["OCIv1"]["config"]
    recipe = edge_lite.recipe
    assert config["Entrypoint"] == list(ENTRYPOINT)
    assert set(config["ExposedPorts"]) == {str(p) for p in recipe.ports}
    assert set(config["Volumes"]) == set(recipe.volumes)
    assert config["Labels"]["io.monoimage.recipe-digest"] == recipe.digest
    assert config["Labels"]["io.monoimage.health-cmd"] == "/usr/bin/monoimage-init health"
    assert config["Labels"]["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z"
    assert info["ImageAnnotations"]["io.monoimage.manifest-digest"] == \
        config["Labels"]["io.monoimage.manifest-digest"]
    # What boot reads back instead of guessing: each service's ports, and the limits.
    owners = service_ports(config["Labels"][LABEL_SERVICE_PORTS], (), [])
    assert owners == {s.name: s.ports for s in recipe.services if s.ports}
    assert runtime_from_labels(config["Labels"]) == recipe.runtime
    assert info["ImageAnnotations"][LABEL_SERVICE_PORTS] == config["Labels"][LABEL_SERVICE_PORTS]
    # layering: packages, the default: one layer per planned group, within the budget
    assert len(info["OCIv1"]["rootfs"]["diff_ids"]) == len(edge_lite.result.layers) <= 100
    assert info["OCIv1"].get("history", []) == []


def test_edge_lite_strip_removed_caches_and_docs_but_kept_licences(edge_lite, edge_lite_root):
    _, root = edge_lite_root
    assert not [p for p in (root / "var/lib/apt/lists").iterdir() if p.is_file()]
    assert not list((root / "var/cache/apt/archives").glob("*.deb"))
    assert not list((root / "usr/share/man").glob("*"))
    assert (root / "usr/share/doc/mosquitto/copyright").is_file()
    assert not (root / "usr/share/doc/mosquitto/changelog.Debian.gz").exists()
    manifest = json.loads(edge_lite.result.manifest_path.read_text())
    stripped = {s["what"]: s for s in manifest["stripped"]}
    assert stripped["docs"]["bytes"] > 1_000_000 and stripped["package lists"]["files"] > 0
    assert edge_lite.result.stripped_bytes == sum(s["bytes"] for s in manifest["stripped"])


def test_edge_lite_has_the_init_table_and_template_links(edge_lite, edge_lite_root):
    container, root = edge_lite_root
    table = load_table(str(root / TABLE_PATH.lstrip("/")))
    recipe = edge_lite.recipe
    assert [s.name for s in table.services] == [s.name for s in recipe.services]
    for service in recipe.services:
        for template in service.templates:
            link = root / template.dest.lstrip("/")
            assert os.readlink(link) == CONFIG_ROOT + template.dest
    usage = buildah.run(container, ["/usr/bin/monoimage-init", "--help"])
    assert usage == init_usage() and usage.startswith("usage: monoimage-init ")
