"""How `monoimage boot IMAGE --vm` prints its report."""

from __future__ import annotations

import dataclasses

from rich.console import Console

from monoimage.cli.boot_table import services_table
from monoimage.pipeline.vm_boot import VmReport


def vm_report_json(report: VmReport) -> dict[str, object]:
    data = dataclasses.asdict(report)
    data["ok"] = report.ok
    return data


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def print_vm_report(report: VmReport, console: Console) -> None:
    built = ("built in " + _seconds(report.vm_image_built_seconds)
             if report.vm_image_built_seconds is not None else "from the cache")
    console.print(f"VM image {report.vm_image} ({built}); accelerator: "
                  f"{report.accelerator.upper()} — {report.accelerator_note}")
    console.print(f"Ignition applied by the engine, files written: "
                  f"{', '.join('/' + f for f in report.ignition_files) or 'none'}")
    if report.generated_unit:
        console.print("the Quadlet generator's unit (systemctl cat):", style="bold")
        console.print(report.generated_unit.rstrip(), markup=False, highlight=False)
    if report.unit_state:
        console.print("systemctl: " + ", ".join(f"{k}={v}" for k, v in
                                                 report.unit_state.items()))
    console.print(f"health check: {'passed' if report.healthy else 'not passed'}")
    if report.services:
        console.print(services_table(f"{report.image} in the VM, as {report.reference}",
                                     report.services, report.probes))
    if report.forwards:
        console.print("published through hostfwd: " + "; ".join(report.forwards))
    for line in summary_lines(report):
        console.print(line)
    for note in report.notes:
        console.print(f"note: {note}", style="dim")
    for line in report.keep_instructions:
        console.print(f"kept: {line}")
    if report.problems:
        console.print("[bold red]not healthy:[/]")
        for problem in report.problems:
            console.print(f"  ✗ {problem}", markup=False)
        if report.log_tail:
            console.print("last lines of the unit's journal (or the VM's console):",
                          style="dim")
            console.print(report.log_tail.rstrip(), markup=False, highlight=False)
    else:
        console.print("[bold green]healthy[/]: every service ready in the VM and answering "
                      "from the build host; systemctl stop ended cleanly")


def summary_lines(report: VmReport) -> list[str]:
    lines = [f"booted to the guest agent {_seconds(report.boot_seconds)} after QEMU started"]
    if report.systemd_time:
        lines.append(f"in the VM: {report.systemd_time.splitlines()[0]}")
    if report.pulled_bytes is not None:
        lines.append(f"the VM pulled {report.pulled_bytes:,} bytes from the registry "
                     f"({report.pull_requests} requests)")
    if report.ready_seconds is not None:
        lines.append(f"all services ready {_seconds(report.ready_seconds)} after QEMU started")
    if report.stop_seconds is not None:
        lines.append(f"systemctl stop: {_seconds(report.stop_seconds)}, result "
                     f"{report.stop_result}, exit code {report.exit_code}")
    return lines
