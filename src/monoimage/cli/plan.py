"""`monoimage plan RECIPE`: the merged, deduplicated package set and why each package is in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from monoimage.cli.arguments import usable_folder
from monoimage.cli.resolve import print_resolution, resolution_json
from monoimage.pipeline.build import resolve
from monoimage.plan.merge import Plan, plan
from monoimage.recipe.load import load_recipe
from monoimage.recipe.version_ranges import VersionRange
from monoimage.tools.cache_dir import default_cache_dir


@click.command("plan")
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--resolve", "with_resolution", is_flag=True,
              help="Also pin exact versions and the full dependency closure from the "
                   "repositories' metadata (nothing is built).")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
              help="Where resolution keeps its private package-manager state.")
def plan_command(recipe: Path, as_json: bool, with_resolution: bool,
                 cache_dir: Path | None) -> None:
    """Print the merged package set of RECIPE: package, constraint, requested by."""
    loaded = load_recipe(recipe)
    result = plan(loaded)
    resolution = (resolve(loaded, cache_dir=usable_folder(cache_dir or default_cache_dir(),
                                                          "--cache-dir"))
                  if with_resolution else None)
    if as_json:
        doc = plan_json(result)
        if resolution is not None:
            doc["resolution"] = resolution_json(resolution)
        click.echo(json.dumps(doc, indent=2))
        return
    console = Console()
    print_plan(result, console)
    if resolution is not None:
        print_resolution(resolution, console)


def plan_json(result: Plan) -> dict[str, Any]:
    recipe = result.recipe
    return {
        "image": recipe.reference,
        "recipe_digest": recipe.digest,
        "packager": recipe.distro.packager.value,
        "services": [s.name for s in recipe.services],
        "packages": [
            {"name": e.name, "constraint": _constraint_text(e.range) or None,
             "requested_by": list(e.requested_by)}
            for e in result.packages.entries
        ],
        "summary": plan_summary(result),
    }


def plan_summary(result: Plan) -> dict[str, int]:
    return {
        "services": len(result.recipe.services),
        "packages_requested": result.requested,
        "packages_after_dedup": len(result.packages.entries),
        "packages_shared": len(result.shared),
    }


def print_plan(result: Plan, console: Console) -> None:
    recipe = result.recipe
    table = Table(title=f"{recipe.reference} — {recipe.distro.name} {recipe.distro.release} "
                        f"({recipe.distro.packager.value})")
    table.add_column("package")
    table.add_column("constraint")
    table.add_column("requested by")
    for entry in result.packages.entries:
        table.add_row(entry.name, _constraint_text(entry.range),
                      ", ".join(entry.requested_by))
    console.print(table)
    s = plan_summary(result)
    console.print(f"{s['services']} services, {s['packages_requested']} packages requested, "
                  f"{s['packages_after_dedup']} after dedup, {s['packages_shared']} shared "
                  f"by two or more requesters")


def _constraint_text(version_range: VersionRange) -> str:
    text = str(version_range)
    return "" if text == "any" else text
