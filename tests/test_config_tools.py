"""Config-time tools out of the golden image unless a config command runs one (pure)."""

from __future__ import annotations

from pathlib import Path

from monoimage.footprint.estimate import APT_CALIBRATION, estimate_report
from monoimage.plan.comparator_plan import plan_layered
from monoimage.plan.config_tools import config_tools, runtime_resolution
from monoimage.plan.resolution import Resolution, ResolvedPackage
from monoimage.recipe.load import load_recipe
from monoimage.recipe.model import Recipe
from monoimage.recipe.versions import Family
from recipe_files import IMAGE as BARE_IMAGE
from recipe_files import write_recipe

IMAGE = BARE_IMAGE.format(services="  - alpha").replace(
    "services:", "base:\n  packages: [curl]\n  config_tools: [crudini, puppet]\nservices:")

ALPHA = """\
name: alpha
packages:
  - alpha-pkg
config:
  commands:
{commands}
run:
  argv: [/usr/bin/alpha]
"""


def pkg(name: str, *depends: str, by: tuple[str, ...] = (), size: int = 1000
        ) -> ResolvedPackage:
    return ResolvedPackage(name=name, version="1.0", arch="amd64", download_size=size,
                           installed_size=4 * size, requested_by=by, depends=tuple(depends))


# puppet pulls in ruby; libyaml is shared between ruby and the service, so it stays either way
RESOLUTION = Resolution(Family.APT, "bookworm", "amd64", tuple(sorted([
    pkg("alpha-pkg", "libyaml", by=("alpha",)),
    pkg("curl", by=("base",)),
    pkg("crudini", "python3-iniparse", by=("config-tools",)),
    pkg("python3-iniparse", size=50),
    pkg("puppet", "ruby", by=("config-tools",), size=2000),
    pkg("ruby", "libyaml", size=5000),
    pkg("libyaml"),
], key=lambda p: p.name)))


def recipe(tmp_path: Path, *commands: str) -> Recipe:
    lines = "\n".join(f"    - argv: {c}" for c in commands) or "    []"
    text = ALPHA.format(commands=lines) if commands else ALPHA.replace(
        "config:\n  commands:\n{commands}\n", "")
    return load_recipe(write_recipe(tmp_path, {"alpha": text}, IMAGE))


def names(resolution: Resolution) -> list[str]:
    return [p.name for p in resolution.packages]


def test_config_tools_no_command_runs_are_left_out_of_the_golden_closure(
        tmp_path: Path) -> None:
    tools = config_tools(recipe(tmp_path), RESOLUTION)
    assert tools.names == ("crudini", "puppet", "python3-iniparse", "ruby")
    assert not tools.kept
    assert tools.download_bytes == 1000 + 2000 + 50 + 5000
    assert names(runtime_resolution(RESOLUTION, tools)) == ["alpha-pkg", "curl", "libyaml"]
    assert "left out: no config command runs them" in tools.note()
    assert tools.as_json()["kept"] is False


def test_a_config_command_running_a_config_tool_keeps_them_and_says_which(
        tmp_path: Path) -> None:
    tools = config_tools(recipe(tmp_path, "[/usr/bin/crudini, --set, /etc/a.conf, s, k, v]"),
                         RESOLUTION)
    assert tools.kept
    assert [(u.service, u.command, u.package) for u in tools.uses] == [
        ("alpha", "/usr/bin/crudini", "crudini")]
    assert runtime_resolution(RESOLUTION, tools) is RESOLUTION
    assert "alpha: /usr/bin/crudini (crudini)" in tools.note()


def test_a_config_command_running_something_else_does_not_keep_them(tmp_path: Path) -> None:
    tools = config_tools(recipe(tmp_path, "[ssh-keygen, -A]"), RESOLUTION)
    assert not tools.kept and tools.uses == ()


def test_kolla_style_keeps_the_config_tools_in_its_base_and_the_estimate_does_not(
        tmp_path: Path) -> None:
    loaded = recipe(tmp_path)
    base = {p.name for p in plan_layered(RESOLUTION, ["alpha"], "kolla-style").base}
    assert {"crudini", "puppet", "ruby", "python3-iniparse"} <= base
    report = estimate_report(loaded, RESOLUTION, None, APT_CALIBRATION)
    golden = next(s for s in report.strategies if s.name == "monoimage")
    with_tools = estimate_report(recipe(tmp_path, "[puppet, apply]"), RESOLUTION, None,
                                 APT_CALIBRATION)
    kept = next(s for s in with_tools.strategies if s.name == "monoimage")
    assert golden.first_deploy.bytes < kept.first_deploy.bytes
