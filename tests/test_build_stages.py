"""Build stages that need no image: strip rules, image config, init files (layering: test_layers)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from monoimage.errors import UserError
from monoimage.image import (
    ENTRYPOINT,
    HEALTH_CMD,
    LABEL_MEMORY,
    LABEL_PIDS_LIMIT,
    LABEL_READ_ONLY,
    LABEL_SERVICE_PORTS,
    TABLE_PATH,
)
from monoimage.pipeline.build import BuildOptions, image_config
from monoimage.pipeline.install_init import LAUNCHER_TEXT, add_init, compile_init
from monoimage.pipeline.strip import apply_strip, remove_build_cache
from monoimage.plan.image_facts import runtime_from_labels, service_ports
from monoimage.plan.strip_rules import strip_rules
from monoimage.recipe.model import (
    Distro,
    Port,
    Recipe,
    Runtime,
    Service,
    Strip,
    Template,
)
from monoimage.recipe.versions import Family


def _recipe(**kw: object) -> Recipe:
    svc = Service("web", "web.yaml", argv=("web",), ports=(Port(80), Port(53, "udp")),
                  volumes=("/var/lib/web",), capabilities=("NET_BIND_SERVICE",),
                  templates=(Template("/etc/web/web.conf", "x"),))
    return Recipe(name="img", tag="1", source="img.yaml", digest="sha256:r",
                  distro=Distro("debian", "bookworm", Family.APT), services=(svc,),
                  **kw)  # type: ignore[arg-type]


def _tree(root: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def test_strip_removes_what_the_recipe_asks_and_counts_it(tmp_path):
    _tree(tmp_path, {
        "usr/share/doc/pkg/changelog.gz": "c" * 100, "usr/share/doc/pkg/copyright": "GPL",
        "usr/share/man/man1/x.1.gz": "m" * 10, "usr/share/locale/de/LC_MESSAGES/x.mo": "l" * 7,
        "usr/share/locale/locale.alias": "a", "var/lib/apt/lists/deb_Packages": "p" * 50,
        "var/cache/apt/archives/x.deb": "d" * 30, "opt/junk/big": "j" * 40,
        "usr/bin/keep": "k"})
    (tmp_path / "var/cache/apt/archives/partial").mkdir()
    recipe = _recipe(strip=Strip(docs=True, man=True, locales=True, paths=("/opt/junk",)))
    records = {r.what: r for r in apply_strip(tmp_path, strip_rules(recipe))}
    assert (records["docs"].files, records["docs"].bytes) == (1, 100)
    assert records["man and info pages"].bytes == 10 and records["locales"].bytes == 7
    assert records["package lists"].bytes == 50 and records["package caches"].bytes == 30
    assert records["path /opt/junk"].bytes == 40
    assert (tmp_path / "usr/share/doc/pkg/copyright").is_file()
    assert (tmp_path / "usr/share/locale/locale.alias").is_file()
    assert (tmp_path / "var/lib/apt/lists").is_dir()  # packages own the folder
    assert not (tmp_path / "var/cache/apt/archives/partial").exists()
    assert not (tmp_path / "opt/junk").exists() and (tmp_path / "usr/bin/keep").is_file()


def test_strip_keeps_docs_when_not_asked(tmp_path):
    _tree(tmp_path, {"usr/share/doc/pkg/README": "r"})
    apply_strip(tmp_path, strip_rules(_recipe(strip=Strip(docs=False))))
    assert (tmp_path / "usr/share/doc/pkg/README").is_file()


def test_strip_never_follows_a_symlink_out_of_the_root(tmp_path):
    outside = tmp_path / "host-docs"
    _tree(outside, {"pkg/changelog.gz": "precious"})
    root = tmp_path / "root"
    (root / "usr/share/doc").mkdir(parents=True)
    os.symlink(outside / "pkg", root / "usr/share/doc/pkg")  # absolute: the host's path
    apply_strip(root, strip_rules(_recipe()))
    assert (outside / "pkg/changelog.gz").read_text() == "precious"


def test_strip_path_outside_the_image_is_a_user_error():
    with pytest.raises(UserError, match="strip.paths"):
        strip_rules(_recipe(strip=Strip(paths=("/../etc",))))


def test_oci_config_carries_health_as_a_label_docker_as_healthcheck():
    recipe = _recipe()
    oci = image_config(recipe, BuildOptions(source_date_epoch=0), "sha256:m")
    labels = dict(oci.labels)
    assert oci.entrypoint == ENTRYPOINT and oci.healthcheck is None
    assert labels["io.monoimage.health-cmd"] == " ".join(HEALTH_CMD)
    assert labels["io.monoimage.manifest-digest"] == "sha256:m"
    assert labels["io.monoimage.recipe-digest"] == "sha256:r"
    assert labels["org.opencontainers.image.created"] == "1970-01-01T00:00:00Z"
    assert labels["io.monoimage.capabilities"] == "NET_BIND_SERVICE"
    assert oci.ports == ("53/udp", "80/tcp") and oci.volumes == ("/var/lib/web",)
    assert oci.annotations == oci.labels
    docker = image_config(recipe, BuildOptions(image_format="docker"), "sha256:m")
    assert docker.healthcheck == HEALTH_CMD


def test_runtime_labels_read_back_by_boot_as_the_recipe_says():
    quiet = Service("quiet", "quiet.yaml", argv=("q",))  # no ports: not in the label
    dns = Service("dns", "dns.yaml", argv=("d",), ports=(Port(53, "udp"), Port(53)))
    recipe = dataclasses.replace(_recipe(runtime=Runtime("256m", 64, False)),
                                 services=(dns, quiet, _recipe().services[0]))
    labels = dict(image_config(recipe, BuildOptions(), "sha256:m").labels)
    assert labels[LABEL_SERVICE_PORTS] == "dns=53/udp,53/tcp;web=80/tcp,53/udp"
    assert (labels[LABEL_MEMORY], labels[LABEL_PIDS_LIMIT], labels[LABEL_READ_ONLY]) == \
        ("256m", "64", "false")
    assert runtime_from_labels(labels) == recipe.runtime
    owners = service_ports(labels[LABEL_SERVICE_PORTS], (), [])
    assert owners == {"dns": dns.ports, "web": recipe.services[2].ports}
    assert dict(image_config(_recipe(), BuildOptions(), "sha256:m").labels)[
        LABEL_READ_ONLY] == "true"


def test_add_init_writes_launcher_table_package_and_template_links(tmp_path):
    (tmp_path / "etc/web").mkdir(parents=True)
    (tmp_path / "etc/web/web.conf").write_text("stock config")
    add_init(tmp_path, _recipe())
    launcher = tmp_path / "usr/bin/monoimage-init"
    assert launcher.read_text() == LAUNCHER_TEXT and os.access(launcher, os.X_OK)
    assert (tmp_path / "usr/lib/monoimage/monoimage_init/__main__.py").is_file()
    assert not list((tmp_path / "usr/lib/monoimage").rglob("__pycache__"))
    assert LAUNCHER_TEXT.startswith("#!/usr/bin/python3 -BIS\n")   # one shebang argument
    assert not compile_init(tmp_path)  # no python in this root: nothing to compile with
    assert (tmp_path / TABLE_PATH.lstrip("/")).is_file()
    assert os.readlink(tmp_path / "etc/web/web.conf") == "/run/monoimage/config/etc/web/web.conf"


def test_the_installers_trace_of_the_build_cache_path_is_removed_but_not_root(tmp_path):
    cache = tmp_path / "host" / "cache" / "monoimage"
    root = tmp_path / "root"
    _tree(root, {str(cache).lstrip("/") + "/builds/abc/dnf/expired_repos.json": "{}",
                 "host-keep": "x"})
    record = remove_build_cache(root, cache)
    assert record is not None and (record.files, record.bytes) == (1, 2)
    top = root / str(tmp_path).lstrip("/").split("/")[0]
    assert top.is_dir() and not any(top.iterdir())  # emptied, but a top-level folder stays
    assert remove_build_cache(root, cache) is None


def test_logs_are_counted_not_weighed_so_the_manifest_is_reproducible(tmp_path):
    _tree(tmp_path, {"var/log/dnf.log": "took 0.123 s", "var/lib/dnf/history.sqlite": "db"})
    records = {r.what: r for r in apply_strip(tmp_path, strip_rules(_recipe()))}
    assert (records["build logs"].files, records["build logs"].bytes) == (1, 0)
    assert (records["package history"].files, records["package history"].bytes) == (1, 0)
