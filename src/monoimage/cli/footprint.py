"""`monoimage footprint RECIPE`: monoimage against the layered (Kolla-style) build, measured.

Builds the golden image and both layered comparators from the same pinned closure, counts
first-deploy, disk, duplicated and day-2 bytes from their OCI blobs, rolls them out to a fleet,
and checks the figures against a real pull from a loopback registry. `--estimate` predicts the
same figures from repository metadata alone, without building anything.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from monoimage.cli.arguments import tag_argument, usable_folder
from monoimage.cli.progress import interruptible, stage_reporter
from monoimage.errors import UserError
from monoimage.footprint.chart import footprint_chart
from monoimage.footprint.estimate import Estimate
from monoimage.footprint.figures import MONOIMAGE, MONOIMAGE_SINGLE, FootprintReport
from monoimage.footprint.fleet import FleetFigures, FleetParams, StrategyRollout
from monoimage.footprint.report import TOLERANCE, footprint_json
from monoimage.pipeline.build import resolve, write_outputs
from monoimage.pipeline.build import source_date_epoch_from_env as _env_epoch
from monoimage.pipeline.footprint import (
    FootprintOptions,
    FootprintRun,
    estimate_footprint,
    run_footprint,
)
from monoimage.plan.config_tools import ConfigTools, carried_by
from monoimage.plan.day2 import PackageUpdate, Repository, parse_update
from monoimage.plan.delta import ChainCost
from monoimage.recipe.load import load_recipe
from monoimage.recipe.model import DnfRepository, Recipe
from monoimage.recipe.versions import Family
from monoimage.tools.cache_dir import default_cache_dir
from monoimage.tools.packagers.apt_sources import host_repositories, parse_source_line
from monoimage.tools.packagers.update_repository import make_update_repository

VERIFY_FAILED = 1


@click.command("footprint")
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option("--update", "update_spec", metavar="NAME=VERSION",
              help="Day 2: NAME updated to VERSION (day 1 runs the newest older NAME); all "
                   "three strategies are rebuilt and the blobs a site re-pulls counted.")
@click.option("--simulate-update", metavar="NAME",
              help="apt: a stand-in security update of NAME: the pinned .deb re-versioned to "
                   "VERSION+monoimage1 with dpkg-deb, in a local signed repository.")
@click.option("--repo-extra", "extra", multiple=True, metavar="REPO",
              help="A repository the day-2 version comes from (repeatable), configured on "
                   "both days as a distribution's security repository is. apt: "
                   "'[signed-by=KEY] URI SUITE [COMPONENT...]'; dnf: 'ID=BASEURL'.")
@click.option("--estimate", is_flag=True,
              help="Predict the figures from repository metadata alone; build nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON on stdout.")
@click.option("--chart", type=click.Path(path_type=Path),
              help="Where the SVG chart goes (default OUT-DIR/footprint.svg).")
@click.option("--out-dir", type=click.Path(path_type=Path),
              help="Where footprint.json, footprint.svg and the golden image's manifest go "
                   "(default ./out/NAME).")
@click.option("--sites", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Edge sites in the fleet.")
@click.option("--bandwidth", default="10Mbit", show_default=True,
              help="Each site's link: 10Mbit, 2.5Mbit/s, 1MB/s, …")
@click.option("--latency", default="100ms", show_default=True,
              help="Round-trip time from a site to the registry: 100ms, 0.25s, …")
@click.option("--sites-per-mirror", type=click.IntRange(min=1), default=100,
              show_default=True, help="Sites behind one regional mirror (pull-through cache).")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Check the computed bytes against a real pull from a loopback registry.")
@click.option("--tag", default="footprint", show_default=True,
              help="Tag of every image built (day 2 adds -day2); not the recipe's own, so the "
                   "image `monoimage build` tagged stays as it is.")
@click.option("--cache-dir", type=click.Path(path_type=Path),
              help="Package cache kept between builds (default ~/.cache/monoimage).")
@click.option("--source-date-epoch", type=int,
              help="Timestamp of every file and image (default $SOURCE_DATE_EPOCH, else 0).")
@click.option("--no-init-python", is_flag=True,
              help="Build without the init's Python (repositories that have none).")
def footprint_command(recipe: Path, update_spec: str | None, simulate_update: str | None,
                      extra: tuple[str, ...], estimate: bool, as_json: bool,
                      chart: Path | None, out_dir: Path | None, sites: int, bandwidth: str,
                      latency: str, sites_per_mirror: int, verify: bool, tag: str,
                      cache_dir: Path | None, source_date_epoch: int | None,
                      no_init_python: bool) -> None:
    """Compare RECIPE's golden image with the Kolla-style and shared-base layered builds."""
    console = Console(stderr=True)
    tag_argument(tag, "--tag")
    loaded = load_recipe(recipe)
    fleet = FleetParams(sites=sites, site_bandwidth_bps=parse_bandwidth(bandwidth),
                        rtt_s=parse_latency(latency), sites_per_mirror=sites_per_mirror)
    cache = usable_folder(cache_dir or default_cache_dir(), "--cache-dir")
    out = usable_folder(out_dir or Path("out") / loaded.name, "--out-dir")
    if chart is not None:
        usable_folder(chart.parent, "--chart")
    if update_spec and simulate_update:
        raise UserError("--update and --simulate-update: give one of them")
    if extra and not update_spec:
        raise UserError("--repo-extra: the repositories a day-2 update comes from; give "
                        "--update NAME=VERSION too")
    extra_repos = tuple(parse_repository(loaded, text, i) for i, text in enumerate(extra, 1))
    with interruptible("footprint interrupted: working containers and temporary images were "
                       "removed"), \
            console.status("footprint") as status, \
            tempfile.TemporaryDirectory(prefix="monoimage-update-repo-") as scratch:
        update = parse_update(update_spec) if update_spec else None
        if simulate_update:
            update, repo = _simulated_update(loaded, simulate_update, Path(scratch), cache,
                                             not no_init_python)
            extra_repos += (repo,)
        hosts = (host_repositories() if loaded.distro.packager is Family.APT
                 and not loaded.distro.repositories and extra_repos else ())
        options = FootprintOptions(
            tag=tag, cache_dir=cache, out_dir=out,
            source_date_epoch=(source_date_epoch if source_date_epoch is not None
                               else _env_epoch()),
            with_init_python=not no_init_python, update=update,
            extra_repositories=extra_repos, host_repositories=hosts, verify=verify,
            fleet=fleet)
        progress = stage_reporter(console, status, width=28)
        result: FootprintRun | Estimate = (
            estimate_footprint(loaded, options, progress) if estimate
            else run_footprint(loaded, options, progress))
    doc = footprint_json(result.facts(), fleet)
    chart_path = chart or out / "footprint.svg"
    title = f"{loaded.name}: bytes a site pulls, per strategy" + (
        " (estimated)" if isinstance(result, Estimate) else "")
    write_outputs(((out / "footprint.json", json.dumps(doc, indent=2) + "\n"),
                   (chart_path, footprint_chart(result.report, title))),
                  done="nothing was built" if estimate else "the images were built and tagged")
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        print_footprint(Console(), result, fleet)
    console.print(f"figures {out / 'footprint.json'}  chart {chart_path}")
    if isinstance(result, FootprintRun) and not all(c.agrees(TOLERANCE) for c in result.checks):
        console.print("[red]the bytes a real registry served differ from the computed figures "
                      "by more than 1%[/]")
        sys.exit(VERIFY_FAILED)


def _simulated_update(recipe: Recipe, name: str, scratch: Path, cache: Path,
                      with_init_python: bool) -> tuple[PackageUpdate, Repository]:
    if recipe.distro.packager is not Family.APT:
        raise UserError("--simulate-update works on apt recipes; for dnf, give a repository "
                        "with the new release (--repo-extra) and --update NAME=VERSION")
    resolution = resolve(recipe, cache_dir=cache, with_init_python=with_init_python)
    try:
        package = resolution.package(name)
    except KeyError:
        raise UserError(f"--simulate-update {name}: not in the image's package closure"
                        ) from None
    scratch.chmod(0o755)  # apt's sandbox user (_apt) reads the repository and its key
    made = make_update_repository(recipe, package, scratch / "repo", cache_dir=cache)
    return PackageUpdate(name, made.version), made.repository


# ---------------------------------------------------------------- argument parsing

_BANDWIDTH = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(bit|bps|b|byte)?(?:/s)?\s*$",
                        re.IGNORECASE)
_LATENCY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|us)\s*$", re.IGNORECASE)
_PREFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}


def parse_bandwidth(text: str) -> float:
    """'10Mbit', '10Mbit/s', '10mbps' → bits per second; 'B'/'byte' means bytes (×8)."""
    match = _BANDWIDTH.match(text)
    if not match or float(match.group(1)) <= 0:
        raise UserError(f"--bandwidth {text!r}: expected a rate such as 10Mbit, 2.5Mbit/s "
                        f"or 1MB/s")
    number, prefix, unit = match.group(1), match.group(2), match.group(3) or "bit"
    is_bytes = unit in ("B", "byte") or unit.lower() == "byte"
    return float(number) * _PREFIX[prefix.lower()] * (8 if is_bytes else 1)


def parse_latency(text: str, option: str = "--latency",
                  examples: str = "100ms or 0.1s") -> float:
    """'100ms', '0.1s', '250us' → seconds; a mistake names `option`."""
    match = _LATENCY.match(text)
    if not match:
        raise UserError(f"{option} {text!r}: expected a time such as {examples}")
    scale = {"ms": 1e-3, "s": 1.0, "us": 1e-6}[match.group(2).lower()]
    return float(match.group(1)) * scale


def parse_repository(recipe: Recipe, text: str, index: int) -> Repository:
    """One --repo-extra: an apt sources line (without `deb`) or a dnf `ID=BASEURL`."""
    if recipe.distro.packager is Family.APT:
        return parse_source_line(text)
    repo_id, sep, baseurl = text.partition("=")
    if not sep or "://" in repo_id:
        repo_id, baseurl = f"extra{index}", text
    if not re.fullmatch(r"[A-Za-z0-9_.:-]+", repo_id) or "://" not in baseurl:
        raise UserError(f"--repo-extra {text!r}: expected ID=BASEURL, e.g. "
                        f"updates=file:///srv/updates")
    return DnfRepository(id=repo_id, baseurl=baseurl)


# ---------------------------------------------------------------- output


def _mb(size: int | None) -> str:
    return "—" if size is None else f"{size / 1e6:,.1f}"


def _gb(size: int) -> str:
    return f"{size / 1e9:,.1f}"


def duration(seconds: float) -> str:
    """Seconds for people: '42 s', '13 min 20 s', '2 h 05 min'."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def print_footprint(console: Console, result: FootprintRun | Estimate,
                    fleet: FleetParams) -> None:
    """The per-site table, the fleet table, the verdict, duplicates, day 2 and the check."""
    report = result.report
    estimated = isinstance(result, Estimate)
    recipe = result.recipe
    how = "estimated from repository metadata" if estimated else "measured from OCI blobs"
    site = Table(title=f"{recipe.name}: {len(result.resolution.packages)} packages, "
                       f"{len(recipe.services)} services — per site, {how} (MB = 10^6 bytes)")
    for column in ("strategy", "images", "blobs", "first deploy MB", "disk MB",
                   "duplicated MB", "day-2 MB"):
        site.add_column(column, justify="left" if column == "strategy" else "right",
                        no_wrap=column == "strategy")  # monoimage-single, whole
    for figures in report.strategies:
        site.add_row(figures.name, str(figures.images), str(figures.first_deploy.blobs),
                     _mb(figures.first_deploy.bytes), _mb(figures.disk_bytes),
                     _mb(figures.duplicated_bytes),
                     _mb(figures.day2.bytes if figures.day2 else None))
    console.print(site)
    console.print(_fleet_table(result.rollouts, fleet))
    console.print(f"[bold]{'(estimate) ' if estimated else ''}{report.verdict}[/]")
    for figures in report.strategies:
        top = [p for p in figures.top_packages if p.bytes_wasted][:5]
        if top:
            names = ", ".join(f"{p.package or '(files of no package: package database)'} "
                              f"{_mb(p.bytes_wasted)} MB" for p in top)
            console.print(f"duplicated in {figures.name}: {names}")
    tools = result.facts().config_tools
    if tools and tools.packages:
        console.print(_config_tools_line(tools, [f.name for f in report.strategies]))
    if result.update is not None:
        _print_day2(console, result)
    chain = result.facts().delta_chain
    if chain is not None:
        console.print(_chain_line(chain, report))
    if isinstance(result, FootprintRun) and result.checks:
        worst = max(c.relative_error for c in result.checks)
        mark = "[green]✓[/]" if worst <= TOLERANCE else "[red]✗[/]"
        console.print(f"{mark} real pull from a loopback registry: served bytes match the "
                      f"computed first-deploy and day-2 figures of every strategy "
                      f"(largest difference {worst:.3%})")


def _config_tools_line(tools: ConfigTools, strategies: Sequence[str]) -> str:
    carried = [name for name in strategies if carried_by(tools, name)]
    spared = [name for name in strategies if not carried_by(tools, name)]
    return (f"config tools ({len(tools.packages)} packages, "
            f"{_mb(tools.download_bytes)} MB download, {_mb(tools.installed_bytes)} MB "
            f"installed, each one to patch): in {', '.join(carried) or 'no strategy'}"
            + (f"; left out of {', '.join(spared)}" if spared else "")
            + (f" ({tools.note()})" if tools.kept else ""))


def _chain_line(chain: ChainCost, report: FootprintReport) -> str:
    """The delta chain's disk cost beside what it saves on the wire."""
    day2 = {f.name: f.day2.bytes for f in report.strategies if f.day2}
    wire = f"day 2 pulls {_mb(day2.get(MONOIMAGE))} MB"
    if MONOIMAGE_SINGLE in day2:
        wire += f" ({MONOIMAGE_SINGLE} re-pulls {_mb(day2[MONOIMAGE_SINGLE])} MB)"
    return f"delta chain of {MONOIMAGE}: {wire}; {chain.line()}"


def _fleet_table(rollouts: Sequence[StrategyRollout], fleet: FleetParams) -> Table:
    table = Table(title=f"fleet: {fleet.sites:,} sites at {fleet.site_bandwidth_bps / 1e6:g} "
                        f"Mbit/s, {fleet.rtt_s * 1000:g} ms; a regional mirror per "
                        f"{fleet.sites_per_mirror} sites — bytes over the WAN, rollout time "
                        f"(GB = 10^9 bytes)")
    table.add_column("strategy", no_wrap=True)
    for column in ("first deploy", "with mirror", "day 2", "day 2, mirror"):
        table.add_column(column, justify="right")
    for roll in rollouts:
        cells = [roll.name, _fleet_cell(roll.first_deploy.direct),
                 _fleet_cell(roll.first_deploy.mirrored)]
        if roll.day2 is not None:
            cells += [_fleet_cell(roll.day2.direct), _fleet_cell(roll.day2.mirrored)]
        else:
            cells += ["—", "—"]
        table.add_row(*cells)
    return table


def _fleet_cell(figures: FleetFigures) -> str:
    return f"{_gb(figures.wan_bytes)} GB, {duration(figures.rollout_seconds)}"


def _print_day2(console: Console, result: FootprintRun | Estimate) -> None:
    changes = ", ".join(f"{c.name} {c.before or '(none)'} → {c.after or '(removed)'}"
                        for c in result.version_changes)
    console.print(f"day 2 ({result.update}): {changes}")
    for impact in result.impacts:
        console.print(f"  {impact.name}: in {impact.touches}")
    if not isinstance(result, FootprintRun):
        return
    for strategy in result.changes:
        changed = [c for c in strategy.images if c.manifest_changed]
        parts = ", ".join(f"{_part(c.image)} {_mb(c.new_bytes)} MB" for c in changed)
        console.print(f"  {strategy.name}: {len(changed)} of {len(strategy.images)} images "
                      f"changed, {sum(len(c.new_layers) for c in strategy.images)} new "
                      f"layers{': ' + parts if parts else ''}")


def _part(reference: str) -> str:
    """`localhost/edge-lite-kolla-style-chrony:t-day2` → `chrony` (or the image name)."""
    name = reference.rsplit("/", 1)[-1].split(":")[0]
    for strategy in ("kolla-style-", "shared-base-"):
        if strategy in name:
            return name.split(strategy, 1)[1]
    return name


# ---------------------------------------------------------------- JSON

