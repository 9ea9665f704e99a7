"""What the build strips from an image root (pure): rules as data, chosen by the recipe.

`pipeline/strip.py` applies them; the records of what each removed go into the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from monoimage.errors import UserError
from monoimage.recipe.model import Recipe


@dataclass(frozen=True)
class StripRule:
    """Remove what `globs` match under the root, except what `keep` matches (root-relative)."""

    what: str
    globs: tuple[str, ...]
    keep: tuple[str, ...] = ()
    files_only: bool = False  # keep the directories (packages own them), remove their files
    # Files whose length differs from run to run (logs with durations): counted, not weighed,
    # so that the manifest, and with it the image, stays reproducible.
    volatile: bool = False


ALWAYS = (
    StripRule("package caches", ("var/cache/apt/*.bin", "var/cache/apt/archives/*.deb",
                                 "var/cache/dnf/*", "var/cache/debconf/*-old",
                                 "var/lib/dpkg/*-old"), files_only=True),
    StripRule("package lists", ("var/lib/apt/lists/*",), files_only=True),
    # apt's download folders: their owner depends on whether the package cache was warm
    # (_apt when apt made them, root when synced in), which would change the image digest.
    StripRule("apt working folders", ("var/cache/apt/archives/partial",
                                      "var/cache/apt/archives/lock")),
    StripRule("build logs", ("var/log/apt/*", "var/log/dpkg.log", "var/log/alternatives.log",
                             "var/log/bootstrap.log", "var/log/dnf*", "var/log/hawkey.log"),
              files_only=True, volatile=True),
    # dnf's transaction history: an sqlite database holding the install's wall-clock times.
    StripRule("package history", ("var/lib/dnf/history.sqlite*",), files_only=True,
              volatile=True),
    StripRule("temporary files", ("tmp/*", "var/tmp/*")),
    StripRule("device nodes", ("dev/*",)),  # the runtime mounts its own /dev
)
DOCS = StripRule("docs", ("usr/share/doc/*/*", "usr/share/doc-base/*"),
                 keep=("usr/share/doc/*/copyright",))  # licences stay: they ship with binaries
MAN = StripRule("man and info pages", ("usr/share/man/*", "usr/share/info/*"))
LOCALES = StripRule("locales", ("usr/share/locale/*",), keep=("usr/share/locale/locale.alias",))


def strip_rules(recipe: Recipe) -> tuple[StripRule, ...]:
    """Every rule the recipe asks for, the always-on ones first."""
    rules = list(ALWAYS)
    if recipe.strip.docs:
        rules.append(DOCS)
    if recipe.strip.man:
        rules.append(MAN)
    if recipe.strip.locales:
        rules.append(LOCALES)
    for path in recipe.strip.paths:
        relative = path.lstrip("/")
        if not relative or ".." in Path(relative).parts:
            raise UserError(f"strip.paths: '{path}' must be a path inside the image")
        rules.append(StripRule(f"path {path}", (relative,)))
    return tuple(rules)
