"""Secret site values (issue 11, class 5): declared `{secret: true}`, they have no default in
any layer, the build refuses one, and `boot` refuses to start without the value (exit 2, one
line) and passes it when `--site NAME=VALUE` or `MONOIMAGE_SITE_<NAME>` gives it."""

from __future__ import annotations

import io
import json
import secrets
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from buildsupport import remove_images, unique_tag
from monoimage.cli import main
from monoimage.errors import RecipeError, UserError
from monoimage.hosts.ignition import render_site_env
from monoimage.hosts.spec import host_spec
from monoimage.pipeline.boot import site_values
from monoimage.pipeline.build import BuildOptions, BuildResult, build
from monoimage.plan.service_table import service_table
from monoimage.recipe.load import load_recipe
from monoimage.tools import podman
from monoimage.tools.cache_dir import default_cache_dir
from recipe_files import write_recipe

# A value no layer may hold: it is in the build's environment, as a careless operator's would be.
TOKEN = "monoimage-test-secret-" + secrets.token_hex(8)

IMAGE = """\
image:
  name: monoimage-test-secret
  tag: t
distro:
  name: debian
  release: bookworm
  packager: apt
services:
  - hello
site:
  hostname: edge
  hello_token: {secret: true}
"""
HELLO = """\
name: hello
packages:
  - busybox
ports:
  - 8081/tcp
config:
  templates:
    - dest: /etc/hello/index.html
      content: "hello from {{ hostname }} {{ hello_token }}\\n"
run:
  argv: [busybox, httpd, -f, -p, "8081", -h, /etc/hello]
ready:
  tcp: 8081
"""


def write(root: Path, image: str = IMAGE) -> Path:
    return write_recipe(root, {"hello": HELLO}, image=image)


def test_a_secret_has_no_default_in_the_service_table(tmp_path):
    recipe = load_recipe(write(tmp_path))
    assert (recipe.site_required, recipe.site_secrets) == (("hello_token",), ("hello_token",))
    assert service_table(recipe)["site"] == {"hostname": "edge"}


def test_a_default_for_a_secret_is_refused(tmp_path):
    path = write(tmp_path, IMAGE.replace("{secret: true}", "{secret: true, default: x}"))
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    assert (caught.value.file, caught.value.line) == (str(path), 12)
    assert caught.value.key_path == "site.hello_token.default"
    assert "has no default in the image" in caught.value.message


def test_a_site_entry_that_says_nothing_is_refused(tmp_path):
    with pytest.raises(RecipeError) as caught:
        load_recipe(write(tmp_path, IMAGE.replace("{secret: true}", "{}")))
    assert caught.value.key_path == "site.hello_token"
    assert "give a default, `secret: true` or `required: true`" in caught.value.message


def test_edge_lite_ships_its_redis_password_as_a_secret():
    recipe = load_recipe(Path(__file__).resolve().parents[1] / "recipes" / "edge-lite.yaml")
    assert "redis_password" in recipe.site_secrets
    assert "redis_password" not in dict(recipe.site)


def test_the_hosts_site_file_names_the_secret_but_holds_no_value(tmp_path):
    recipe = load_recipe(write(tmp_path))
    text = render_site_env(host_spec(recipe), recipe)
    assert "# MONOIMAGE_SITE_HELLO_TOKEN=  (no default: set it here or give " in text
    mounted = render_site_env(host_spec(recipe, secrets=("hello_token",)), recipe)
    assert "HELLO_TOKEN" not in mounted


def test_boot_values_come_from_site_flags_then_the_environment(tmp_path):
    recipe = load_recipe(write(tmp_path))
    env = {"MONOIMAGE_SITE_HELLO_TOKEN": "from-env", "MONOIMAGE_SITE_HOSTNAME": "h"}
    assert site_values(recipe, {}, env) == {"hello_token": "from-env", "hostname": "h"}
    assert site_values(recipe, {"hello_token": "flag"}, env)["hello_token"] == "flag"
    with pytest.raises(UserError) as caught:
        site_values(recipe, {}, {})
    assert str(caught.value) == (
        "monoimage-test-secret needs the site value 'hello_token', which has no default in "
        "the image: give --site hello_token=VALUE or MONOIMAGE_SITE_HELLO_TOKEN in the "
        "environment")
    with pytest.raises(UserError, match="--site hostnme: not a site value"):
        site_values(recipe, {"hostnme": "x", "hello_token": "t"}, {})
    with pytest.raises(UserError, match="one line"):
        site_values(recipe, {"hello_token": "a\nb"}, {})


# ------------------------------------------------------------------ a real image


@pytest.fixture(scope="module")
def secret_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuildResult]:
    folder = tmp_path_factory.mktemp("secret")
    tag = unique_tag("secret")
    patch = pytest.MonkeyPatch()
    patch.setenv("MONOIMAGE_SITE_HELLO_TOKEN", TOKEN)  # must not reach a layer
    try:
        yield build(load_recipe(write(folder)),
                    BuildOptions(tag=tag, cache_dir=default_cache_dir(), out_dir=folder / "out",
                                 source_date_epoch=1700000000))
    finally:
        patch.undo()
        remove_images(tag)


def archive_members(path: Path) -> Iterator[bytes]:
    """Every file of a docker-archive: its layers (uncompressed tars) and every file in them."""
    with tarfile.open(path) as outer:
        for member in outer.getmembers():
            handle = outer.extractfile(member)
            if handle is None:
                continue
            data = handle.read()
            yield data
            if not tarfile.is_tarfile(io.BytesIO(data)):
                continue  # the manifest, the config: not a layer
            with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                for inner in layer.getmembers():
                    content = layer.extractfile(inner) if inner.isfile() else None
                    if content is not None:
                        yield content.read()


@pytest.mark.build
def test_no_layer_holds_the_secret(secret_image, tmp_path):
    archive = tmp_path / "image.tar"
    podman.podman("image", "save", "--format", "docker-archive", "-o", str(archive),
                  secret_image.reference)
    files = list(archive_members(archive))
    assert len(files) > 100  # the layers were opened, not only the manifest
    assert any(b"{{ hello_token }}" in f for f in files)  # the table is there, with no value
    assert [f for f in files if TOKEN.encode() in f] == []


@pytest.mark.build
def test_boot_refuses_to_start_without_the_secret(secret_image, monkeypatch):
    monkeypatch.delenv("MONOIMAGE_SITE_HELLO_TOKEN", raising=False)
    result = CliRunner().invoke(main, ["boot", secret_image.reference])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [(
        "monoimage: monoimage-test-secret needs the site value 'hello_token', which has no "
        "default in the image: give --site hello_token=VALUE or MONOIMAGE_SITE_HELLO_TOKEN in "
        "the environment")]


@pytest.mark.build
def test_boot_passes_the_secret_given_with_site(secret_image, monkeypatch):
    monkeypatch.delenv("MONOIMAGE_SITE_HELLO_TOKEN", raising=False)
    result = CliRunner().invoke(main, ["boot", "--json", "--keep", secret_image.reference,
                                       "--site", f"hello_token={TOKEN}"])
    report = json.loads(result.stdout)
    try:
        assert result.exit_code == 0, report["problems"]
        page = podman.podman("exec", report["container"], "cat", "/etc/hello/index.html")
        assert page == f"hello from edge {TOKEN}\n"
    finally:
        podman.remove(report["container"])
