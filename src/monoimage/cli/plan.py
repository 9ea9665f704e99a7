"""`monoimage plan RECIPE`: the merged, deduplicated package set and why each package is in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..merge import Plan, plan
from ..versions import VersionRange
from ..recipe_parse import load_recipe


@click.command("plan")
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan_command(recipe: Path, as_json: bool) -> None:
    """Print the merged package set of RECIPE: package, constraint, requested by."""
    result = plan(load_recipe(recipe))
    if as_json:
        click.echo(json.dumps(plan_json(result), indent=2))
    else:
        print_plan(result, Console())


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
