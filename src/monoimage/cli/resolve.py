"""Printing a resolution: pinned versions and closure totals (for `plan --resolve`)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from monoimage.plan.resolution import Resolution


def resolution_json(resolution: Resolution) -> dict[str, Any]:
    """The resolution as plain data: every package of the closure, pinned, and the totals."""
    needed_by = resolution.needed_by()
    return {
        "packager": resolution.family.value,
        "release": resolution.release,
        "architecture": resolution.arch,
        "packages": [
            {"name": p.name, "version": p.version, "arch": p.arch,
             "download_size": p.download_size, "installed_size": p.installed_size,
             "requested_by": list(p.requested_by), "needed_by": list(needed_by[p.name]),
             "base": p.base}
            for p in resolution.packages
        ],
        "totals": resolution_totals(resolution),
    }


def resolution_totals(resolution: Resolution) -> dict[str, int]:
    return {
        "packages": len(resolution.packages),
        "requested": len(resolution.requested),
        "base": sum(1 for p in resolution.packages if p.base),
        "download_bytes": resolution.download_size,
        "installed_bytes": resolution.installed_size,
    }


def print_resolution(resolution: Resolution, console: Console, *, all_packages: bool = True
                     ) -> None:
    """A table of pinned versions (the closure, or only the requested ones) and the totals."""
    needed_by = resolution.needed_by()
    shown = resolution.packages if all_packages else resolution.requested
    table = Table(title=f"resolved closure ({resolution.family.value}, "
                        f"{resolution.release}, {resolution.arch})")
    table.add_column("package")
    table.add_column("version")
    table.add_column("arch")
    table.add_column("download", justify="right")
    table.add_column("installed", justify="right")
    table.add_column("why")
    for pkg in shown:
        if pkg.requested_by:
            why = "requested by " + ", ".join(pkg.requested_by)
        elif needed_by[pkg.name]:
            why = "dependency of " + ", ".join(needed_by[pkg.name])
        else:
            why = "distro minimal set" if pkg.base else "dependency"
        table.add_row(pkg.name, pkg.version, pkg.arch, _size(pkg.download_size),
                      _size(pkg.installed_size), why)
    console.print(table)
    t = resolution_totals(resolution)
    console.print(f"{t['packages']} packages in the closure ({t['requested']} requested, "
                  f"{t['base']} from the distro's minimal set): "
                  f"{_size(t['download_bytes'])} to download, "
                  f"{_size(t['installed_bytes'])} installed")


def _size(size: int) -> str:
    if size >= 2**20:
        return f"{size / 2**20:.1f} MiB"
    return f"{size / 2**10:.1f} KiB"
