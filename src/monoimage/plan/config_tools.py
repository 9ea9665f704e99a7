"""Config-time tools out of the golden image unless a config command needs them (pure).

Kolla and TripleO keep the recipe's `base.config_tools` (puppet, crudini, …) in every service's
base image: configured once at deploy, patched on every CVE of ruby or puppet for the life of
the site. monoimage-init's configure phase renders the templates itself, so the golden image
installs the packages only config tools need (`config_only`) just when a service's config
command runs one of them. Which package a command runs is decided from the resolved package
set, before anything is installed: argv[0]'s file name against the names of the config-only
packages (crudini → crudini, puppet → puppet). A command whose file is named otherwise than its
package (augtool, of augeas-tools) is not recognised: list that package under the service's
own packages, where it is always installed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from monoimage.plan.merge import CONFIG_TOOLS
from monoimage.plan.resolution import Resolution, ResolvedPackage
from monoimage.recipe.model import Recipe

GOLDEN = "monoimage"  # the golden image's strategies: monoimage, monoimage-single


@dataclass(frozen=True)
class ToolUse:
    """A config command that runs a config-only package."""

    service: str
    command: str  # argv[0] as the recipe gives it
    package: str


@dataclass(frozen=True)
class ConfigTools:
    """What the recipe's config tools bring, and whether the golden image keeps them."""

    packages: tuple[ResolvedPackage, ...]  # needed only by config tools (sorted by name)
    uses: tuple[ToolUse, ...]  # config commands that run one of them

    @property
    def kept(self) -> bool:
        return bool(self.uses)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.packages)

    @property
    def download_bytes(self) -> int:
        return sum(p.download_size for p in self.packages)

    @property
    def installed_bytes(self) -> int:
        return sum(p.installed_size for p in self.packages)

    def note(self) -> str:
        """One line for the build output: kept, and for which command, or left out."""
        if not self.packages:
            return ""
        what = (f"{len(self.packages)} config-tool packages "
                f"({self.download_bytes / 2**20:,.1f} MiB download)")
        if self.kept:
            why = ", ".join(f"{u.service}: {u.command} ({u.package})" for u in self.uses)
            return f"{what} kept: a config command runs them ({why})"
        return f"{what} left out: no config command runs them"

    def as_json(self) -> dict[str, object]:
        return {"packages": list(self.names), "download_bytes": self.download_bytes,
                "installed_bytes": self.installed_bytes, "kept": self.kept,
                "used_by": [{"service": u.service, "command": u.command, "package": u.package}
                            for u in self.uses]}


def config_only(resolution: Resolution) -> tuple[ResolvedPackage, ...]:
    """Packages of the closure that only the config tools reach (not the distro's own set)."""
    needed_by = resolution.needed_by()
    return tuple(p for p in resolution.packages
                 if not p.base and needed_by[p.name] == (CONFIG_TOOLS,))


def config_tools(recipe: Recipe, resolution: Resolution) -> ConfigTools:
    """The config-only packages of `resolution`, and the config commands that run one."""
    packages = config_only(resolution)
    names = {p.name for p in packages}
    uses = tuple(ToolUse(service.name, command.argv[0], command.argv[0].rsplit("/", 1)[-1])
                 for service in recipe.services for command in service.commands
                 if command.argv[0].rsplit("/", 1)[-1] in names)
    return ConfigTools(packages, uses)


def runtime_resolution(resolution: Resolution, tools: ConfigTools) -> Resolution:
    """The closure the golden image installs: without the config-only packages unless kept.

    Still a closure: a package another requester reaches has its dependencies reached too.
    """
    if tools.kept or not tools.packages:
        return resolution
    dropped = set(tools.names)
    return replace(resolution, packages=tuple(p for p in resolution.packages
                                              if p.name not in dropped))


def carried_by(tools: ConfigTools, strategy: str) -> bool:
    """Whether a strategy's images hold the config tools: the layered comparators keep them in
    their base image, as Kolla does; the golden image (and its single variant) when kept."""
    return tools.kept if strategy.startswith(GOLDEN) else True


def cost_json(tools: ConfigTools, strategies: Iterable[str]) -> dict[str, object]:
    """What the config tools cost each strategy: packages (each one to patch), bytes."""
    def cost(carried: bool) -> dict[str, int]:
        return {"packages": len(tools.packages) if carried else 0,
                "download_bytes": tools.download_bytes if carried else 0,
                "installed_bytes": tools.installed_bytes if carried else 0}
    return {**tools.as_json(),
            "per_strategy": {name: cost(carried_by(tools, name)) for name in strategies}}
