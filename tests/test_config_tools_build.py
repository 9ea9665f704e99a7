"""Real apt builds: the golden image leaves config tools out unless a config command runs one."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildsupport import HELLO, SINGLE_LAYER, TINY_IMAGE, opened, remove_images, unique_tag
from monoimage.pipeline.build import BuildOptions, BuildResult, build
from monoimage.recipe.load import load_recipe
from monoimage.tools import buildah
from monoimage.tools.cache_dir import default_cache_dir
from recipe_files import write_recipe

pytestmark = pytest.mark.build
IMAGE = TINY_IMAGE.format(repositories=f"base:\n  config_tools: [crudini]\n{SINGLE_LAYER}")


def _build(root: Path, hello: str) -> tuple[BuildResult, set[str]]:
    recipe = load_recipe(write_recipe(root, {"hello": hello}, image=IMAGE))
    tag = unique_tag("config-tools")
    try:
        result = build(recipe, BuildOptions(tag=tag, cache_dir=default_cache_dir(),
                                            out_dir=root / "out", source_date_epoch=0))
        with opened(tag) as (container, _root):
            installed = set(buildah.run(container, ["dpkg-query", "-W", "-f",
                                                    "${Package}\n"]).split())
        return result, installed
    finally:
        remove_images(tag)


def test_config_tools_no_command_runs_are_not_installed(tmp_path: Path) -> None:
    result, installed = _build(tmp_path, HELLO.format(package="busybox"))
    assert result.config_tools is not None and "crudini" in result.config_tools.names
    assert not result.config_tools.kept
    assert "crudini" not in installed and "python3-iniparse" not in installed
    assert "busybox" in installed
    doc = result.as_json()["config_tools"]
    assert isinstance(doc, dict) and doc["kept"] is False and "crudini" in doc["packages"]


def test_a_config_command_running_crudini_keeps_it(tmp_path: Path) -> None:
    hello = HELLO.format(package="busybox").replace(
        "config:\n", "config:\n  commands:\n    - argv: [crudini, --help]\n", 1)
    result, installed = _build(tmp_path, hello)
    assert result.config_tools is not None and result.config_tools.kept
    assert [u.command for u in result.config_tools.uses] == ["crudini"]
    assert "crudini" in installed
