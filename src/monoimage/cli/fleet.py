"""`monoimage fleet RECIPE`: the footprint's images rolled out to simulated sites, for real.

Builds nothing: it takes the images `monoimage footprint --tag TAG` tagged (and their day-2
rebuilds, from `--simulate-update` or `--update`), rolls each strategy out to S sites in
network namespaces behind tc-shaped, delayed links, directly from an origin docker-registry
and through R pull-through mirrors, and prints each measured figure beside the fleet model's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from monoimage.cli.arguments import tag_argument, usable_folder
from monoimage.cli.footprint import duration, parse_bandwidth, parse_latency
from monoimage.cli.progress import interruptible, stage_reporter
from monoimage.errors import UserError
from monoimage.footprint.rollout import Check
from monoimage.footprint.rollout_report import rollout_chart, simulation_json
from monoimage.pipeline.build import write_outputs
from monoimage.pipeline.fleet_sim import FleetOptions, FleetSimulation, fleet_images, simulate_fleet
from monoimage.recipe.load import load_recipe

DISAGREES = 1  # a figure outside its tolerance: the model is wrong there


@click.command("fleet")
@click.argument("recipe", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--tag", default="footprint", show_default=True,
              help="The tag `monoimage footprint --tag` gave the images (day 2: TAG-day2).")
@click.option("--sites", type=click.IntRange(min=1, max=16384), default=50, show_default=True,
              help="Simulated edge sites, each in its own network namespace.")
@click.option("--mirrors", type=click.IntRange(min=1, max=64), default=2, show_default=True,
              help="Regional pull-through mirrors (docker-registry in proxy mode).")
@click.option("--bandwidth", default="10Mbit", show_default=True,
              help="Each site's link, shaped with tc tbf: 10Mbit, 2Mbit/s, 1MB/s, …")
@click.option("--latency", default="100ms", show_default=True,
              help="Each site's round-trip time, added by a relay in its namespace.")
@click.option("--waves", type=click.IntRange(min=1), default=1, show_default=True,
              help="Roll out in this many waves, each when the one before has ended.")
@click.option("--poll-every", default="5s", show_default=True,
              help="While polling, each site checks every image this often.")
@click.option("--poll-for", default="15s", show_default=True,
              help="How long the sites poll after each strategy's rollouts (0s: no polling).")
@click.option("--strategy", "strategies", multiple=True, metavar="NAME",
              help="Only this strategy (repeatable; default: every one footprint built).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON on stdout.")
@click.option("--out-dir", type=click.Path(path_type=Path),
              help="Where fleet.json and fleet.svg go (default ./out/NAME).")
def fleet_command(recipe: Path, tag: str, sites: int, mirrors: int, bandwidth: str,
                  latency: str, waves: int, poll_every: str, poll_for: str,
                  strategies: tuple[str, ...], as_json: bool, out_dir: Path | None) -> None:
    """Roll RECIPE's footprint images out to simulated sites and check the fleet model."""
    console = Console(stderr=True)
    tag_argument(tag, "--tag")
    loaded = load_recipe(recipe)
    if mirrors > sites:
        raise UserError(f"--mirrors {mirrors}: more mirrors than --sites {sites}")
    options = FleetOptions(
        sites=sites, mirrors=mirrors, bandwidth_bps=parse_bandwidth(bandwidth),
        rtt_s=parse_latency(latency), waves=waves,
        poll_interval_s=_seconds(poll_every, "--poll-every", positive=True),
        poll_seconds=_seconds(poll_for, "--poll-for"), strategies=strategies)
    out = usable_folder(out_dir or Path("out") / loaded.name, "--out-dir")
    images = fleet_images(loaded, tag, strategies)
    with interruptible("fleet interrupted: namespaces, links, registries and site storage "
                       "were removed"), console.status("fleet") as status:
        result = simulate_fleet(loaded.name, images, options,
                                stage_reporter(console, status, width=30))
    doc = simulation_json(result.name, options.fleet().__dict__, result.protocol, result.host,
                          result.rollouts, result.checks, result.polls, result.poll_checks,
                          result.extrapolations, result.pulls())
    chart = rollout_chart(result.rollouts, f"{loaded.name}: sites updated over time, "
                                           f"{sites} sites, {bandwidth}, {latency}")
    write_outputs(((out / "fleet.json", json.dumps(doc, indent=2) + "\n"),
                   (out / "fleet.svg", chart)), done="the rollouts ran")
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        print_simulation(Console(), result, bandwidth, latency)
    console.print(f"figures {out / 'fleet.json'}  chart {out / 'fleet.svg'}")
    if not result.agrees:
        console.print("[red]a measured figure is outside its tolerance of the model[/]")
        sys.exit(DISAGREES)


def _seconds(text: str, option: str, positive: bool = False) -> float:
    value = parse_latency(text, option, examples="5s or 500ms")
    if positive and value <= 0:
        raise UserError(f"{option} {text!r}: must be more than 0")
    return value


def _value(check: Check) -> tuple[str, str]:
    if check.figure.endswith("requests/s"):
        return f"{check.measured:,.1f}", f"{check.model:,.1f}"
    if "time" in check.figure:
        return f"{check.measured:,.1f} s", f"{check.model:,.1f} s"
    return f"{check.measured / 1e6:,.3f} MB", f"{check.model / 1e6:,.3f} MB"


def print_simulation(console: Console, result: FleetSimulation, bandwidth: str,
                     latency: str) -> None:
    """A table per strategy (measured vs model), the polls, the extrapolations."""
    opts = result.options
    console.print(f"client, calibrated on one idle site: {result.protocol.image_seconds:.2f} s "
                  f"per image pulled, {result.protocol.check_seconds:.2f} s per image checked, "
                  f"{result.protocol.wire_overhead:.3f} link bytes per byte served; "
                  f"{result.host.cpu_per_image:.2f} CPU s per image on "
                  f"{result.host.cores:g} cores")
    for strategy in dict.fromkeys(r.strategy for r in result.rollouts):
        table = Table(title=f"{strategy}: {opts.sites} sites, {opts.mirrors} mirrors, "
                            f"{bandwidth}, {latency}, {opts.waves} wave(s) — measured vs model")
        for column in ("rollout", "figure", "measured", "model", "error", ""):
            table.add_column(column, justify="left" if column in ("rollout", "figure")
                             else "right", no_wrap=column == "rollout")
        for r in (r for r in result.rollouts if r.strategy == strategy):
            label = f"{r.day}, {'mirrored' if r.mirrored else 'direct'}"
            for check in result.checks[(r.strategy, r.day, r.mirrored)]:
                measured, model = _value(check)
                table.add_row(label, check.figure, measured, model,
                              f"{check.relative_error:.1%}",
                              "[green]✓[/]" if check.agrees else "[red]✗[/]")
                label = ""
            table.add_row("", "p50 / p95 / max", f"{r.percentile(50):.1f} / "
                          f"{r.percentile(95):.1f} / {r.percentile(100):.1f} s", "", "", "")
        for p in (p for p in result.polls if p.strategy == strategy):
            check = result.poll_checks[(p.strategy, p.mirrored)]
            measured, model = _value(check)
            table.add_row(f"polling every {p.interval:g} s, "
                          f"{'mirrored' if p.mirrored else 'direct'}", check.figure, measured,
                          model, f"{check.relative_error:.1%}",
                          "[green]✓[/]" if check.agrees else "[red]✗[/]")
        console.print(table)
    table = Table(title=f"the calibrated model, extrapolated ({bandwidth}, {latency}, a mirror "
                        f"per 100 sites; GB = 10^9 bytes over the WAN)")
    for column in ("sites", "strategy", "rollout", "direct", "mirrored"):
        table.add_column(column, justify="right" if column == "sites" else "left")
    for e in result.extrapolations:
        table.add_row(f"{e.sites:,}", e.strategy, e.day,
                      f"{e.direct.wan_bytes / 1e9:,.1f} GB, {duration(e.direct.rollout_seconds)}",
                      f"{e.mirrored.wan_bytes / 1e9:,.1f} GB, "
                      f"{duration(e.mirrored.rollout_seconds)}")
    console.print(table)
