"""`monoimage plan`: the merged set as a table or JSON, and the resolved closure with --resolve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from monoimage.cli import main

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def test_plan_prints_every_package_and_the_summary() -> None:
    result = CliRunner().invoke(main, ["plan", str(RECIPES / "edge-compute.yaml")])
    assert result.exit_code == 0, result.output
    assert "openvswitch-switch" in result.output
    assert "11 services, 25 packages requested, 24 after dedup, 1 shared" in \
        " ".join(result.output.split())


def test_plan_json_is_valid_and_complete() -> None:
    result = CliRunner().invoke(main, ["plan", "--json", str(RECIPES / "edge-lite.yaml")])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["image"] == "localhost/edge-lite:latest"
    assert doc["summary"]["services"] == 7
    by_name = {p["name"]: p for p in doc["packages"]}
    assert by_name["nginx-light"]["requested_by"] == ["nginx"]
    assert doc["summary"]["packages_after_dedup"] == len(doc["packages"])


@pytest.mark.tools
def test_plan_resolve_pins_the_whole_closure(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["plan", "--resolve", "--json", "--cache-dir",
                                       str(tmp_path), str(RECIPES / "edge-lite.yaml")])
    assert result.exit_code == 0, result.output
    resolution = json.loads(result.output)["resolution"]
    names = {p["name"]: p for p in resolution["packages"]}
    assert {"mosquitto", "nginx-light", "python3-minimal", "libc6"} <= set(names)
    assert all(p["version"] for p in resolution["packages"])
    # libssl3 is nobody's request but several services' dependency: the shared bytes
    assert names["libssl3"]["requested_by"] == []
    assert len(names["libssl3"]["needed_by"]) >= 3
    assert resolution["totals"]["packages"] > 100
