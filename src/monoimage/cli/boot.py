"""`monoimage boot IMAGE`: boot the image like a small container-OS host would; probe it."""

from __future__ import annotations

import dataclasses
import json
import sys
from functools import partial
from pathlib import Path

import click
from rich.console import Console

from monoimage.cli.arguments import image_argument
from monoimage.cli.boot_table import services_table
from monoimage.cli.boot_vm import print_vm_report, vm_report_json
from monoimage.cli.progress import interruptible
from monoimage.pipeline.boot import BootReport, boot
from monoimage.pipeline.control_plane import boot_with_standin
from monoimage.pipeline.vm_boot import boot_vm
from monoimage.plan.run_profile import PROFILES
from monoimage.recipe.load import load_recipe


@click.command("boot")
@click.argument("image")
@click.option("--recipe", type=click.Path(path_type=Path),
              help="Recipe of the image (default: read ports, probes and limits from the "
                   "image itself).")
@click.option("--profile", type=click.Choice(PROFILES), default="small-host", show_default=True,
              help="small-host: read-only root, tmpfs /run and /tmp, memory and pids caps, "
                   "only the declared capabilities; default: a writable root, podman's capabilities, "
                   "no memory or pids caps (tmpfs, ulimits, health check, stop timeout stay).")
@click.option("--timeout", type=click.FloatRange(min=1),
              help="Seconds to wait for monoimage-init health (default 120, or the image's "
                   "health-check start period when longer; with --vm 600, from the VM's boot on).")
@click.option("--vm", is_flag=True,
              help="Boot on a real small container-OS host instead: a Debian trixie VM "
                   "(QEMU; built once and cached) provisioned with the Ignition config "
                   "`monoimage host` writes, running the image through Quadlet, systemd and "
                   "podman 5.4, pulling it from a loopback registry. See docs/hosts.md.")
@click.option("--boot-timeout", type=click.FloatRange(min=1), default=900.0, show_default=True,
              help="With --vm: seconds for the VM to boot (to its guest agent).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--keep", is_flag=True, help="Leave the container running after the report.")
@click.option("--site", "site", multiple=True, metavar="NAME=VALUE",
              help="A site value for the boot (repeatable); MONOIMAGE_SITE_<NAME> in the "
                   "environment also gives one. Required for values without a default.")
@click.option("--control-plane", type=click.Choice(["standin"]),
              help="Boot against a stand-in control plane in its own container: RabbitMQ, "
                   "built from control-plane-standin.yaml beside --recipe (cached), its "
                   "transport URL given as the site value transport_url; removed afterwards "
                   "(kept with --keep). Not with --vm.")
def boot_command(image: str, recipe: Path | None, profile: str, timeout: float | None,
                 vm: bool, boot_timeout: float, as_json: bool, keep: bool,
                 site: tuple[str, ...], control_plane: str | None) -> None:
    """Boot IMAGE, wait until every service is healthy, probe each from the host, stop it.

    Exits 0 only if every service was ready, answered from the host, and the container
    stopped cleanly within its stop timeout with exit code 0.
    """
    console = Console(stderr=True, quiet=as_json)
    image_argument(image, "IMAGE")
    given = {item.partition("=")[0]: item.partition("=")[2] for item in site}
    bad = [item for item in site if "=" not in item or not item.partition("=")[0]]
    if bad:
        raise click.BadParameter(f"{bad[0]!r}: give NAME=VALUE", param_hint="--site")
    if vm and control_plane is not None:
        raise click.UsageError("--control-plane works with the container boot, not with --vm yet")
    loaded = load_recipe(recipe) if recipe is not None else None
    recipe_from = f"recipe {recipe}" if recipe else "image"
    if vm:
        with interruptible("boot interrupted: the VM and its registry were removed"), \
                console.status(f"booting {image} in a VM") as status:
            vm_report = boot_vm(image, loaded, timeout=timeout or 600.0,
                                boot_timeout=boot_timeout, keep=keep, site=given,
                                recipe_from=recipe_from,
                                progress=lambda text: status.update(text))
        if as_json:
            click.echo(json.dumps(vm_report_json(vm_report), indent=2))
        else:
            print_vm_report(vm_report, Console())
        sys.exit(0 if vm_report.ok else 1)
    with interruptible("boot interrupted: the container was removed"), \
            console.status(f"booting {image}") as status:
        runner = boot if control_plane is None else partial(boot_with_standin, recipe_path=recipe)
        report = runner(image, loaded, profile=profile, timeout=timeout,  # type: ignore[arg-type]
                        keep=keep, recipe_from=recipe_from,
                        site=given,
                        progress=lambda text: status.update(text))
    if as_json:
        click.echo(json.dumps(report_json(report), indent=2))
    else:
        print_report(report, Console())
    sys.exit(0 if report.ok else 1)


def report_json(report: BootReport) -> dict[str, object]:
    data = dataclasses.asdict(report)
    data["ok"] = report.ok
    return data


def print_report(report: BootReport, console: Console) -> None:
    if report.services:
        console.print(services_table(f"{report.image} — profile {report.profile}, facts from "
                                     f"{report.recipe_from}", report.services, report.probes))
    console.print(summary(report))
    for note in report.notes:
        console.print(f"note: {note}", style="dim")
    if report.problems:
        console.print("[bold red]not healthy:[/]")
        for problem in report.problems:
            console.print(f"  ✗ {problem}")
        if report.log_tail:
            console.print("last lines of the container log:", style="dim")
            console.print(report.log_tail.rstrip(), markup=False, highlight=False)
    else:
        console.print("[bold green]healthy[/]: every service ready and answering from the host; "
                      "stopped cleanly")


def summary(report: BootReport) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f} ms"

    lines = [f"container {report.container} ({report.image}, profile {report.profile})"]
    if report.healthy:
        lines.append(f"all services ready {ms(report.time_to_ready_ms)} after start "
                     f"(health check passed at {ms(report.time_to_healthy_ms)})")
    if report.init_rss_kib is not None:
        lines.append(f"monoimage-init RSS {report.init_rss_kib / 1024:.1f} MiB")
    if report.kept:
        lines.append(f"kept running: podman stop -t {report.stop_timeout} {report.container} "
                     f"&& podman rm {report.container}")
    elif report.stop_seconds is not None:
        lines.append(f"podman stop: {report.stop_seconds:.2f} s (stop timeout "
                     f"{report.stop_timeout} s), exit code {report.exit_code}, "
                     f"{len(report.zombies)} zombie(s)")
    return "\n".join(lines)
