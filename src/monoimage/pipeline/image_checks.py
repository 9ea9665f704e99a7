"""What only a build can tell about a recipe: checks of the installed root, before any commit.

`plan` cannot know which users a package creates; the installed root can. Every user and group
the recipe names (run users and groups, config command users, template and runtime-dir owners)
must be in the image's /etc/passwd or /etc/group, or the init would refuse the service at every
boot. Numbers need no entry: the init takes a numeric id as it is. A root without an account
database at all (hand-made test packages with no base system) has no names to compare with
and is not checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from monoimage.errors import UserError
from monoimage.recipe.model import Recipe
from monoimage.tools.in_root import resolve_in_root


@dataclass(frozen=True)
class NamedAccount:
    """A user or group the recipe names, and where: `FILE: key.path`."""

    kind: str  # "user" | "group"
    name: str
    where: str


def named_accounts(recipe: Recipe) -> Iterator[NamedAccount]:
    """Every user and group name in the recipe's services (numbers left out)."""
    for service in recipe.services:
        src = service.source
        found = [("user", service.user, "run.user"), ("group", service.group, "run.group")]
        for i, command in enumerate(service.commands):
            found.append(("user", command.user, f"config.commands[{i}].user"))
        for i, template in enumerate(service.templates):
            found += [("user", template.owner, f"config.templates[{i}].owner"),
                      ("group", template.group, f"config.templates[{i}].group")]
        for i, folder in enumerate(service.runtime_dirs):
            found += [("user", folder.owner, f"runtime_dirs[{i}].owner"),
                      ("group", folder.group, f"runtime_dirs[{i}].group")]
        for kind, name, key in found:
            if name is not None and not name.isdigit():
                yield NamedAccount(kind, name, f"{src}: {key}")


def account_names(text: str) -> frozenset[str]:
    """The names of a passwd or group file (`name:…` lines)."""
    return frozenset(line.split(":", 1)[0] for line in text.splitlines()
                     if line and not line.startswith("#"))


def missing_accounts(recipe: Recipe, users: frozenset[str] | None,
                     groups: frozenset[str] | None) -> list[NamedAccount]:
    """The recipe's users and groups that are not in `users` / `groups` (None: not checked)."""
    missing = []
    for account in named_accounts(recipe):
        known = users if account.kind == "user" else groups
        if known is not None and account.name not in known:
            missing.append(account)
    return missing


def check_accounts(root: Path, recipe: Recipe) -> None:
    """Every user and group the recipe names exists in the installed `root`; else the first
    missing one as a UserError naming its recipe key."""
    users, groups = (_names(root, f"/etc/{kind}") for kind in ("passwd", "group"))
    missing = missing_accounts(recipe, users, groups)
    if missing:
        first = missing[0]
        database = "/etc/passwd" if first.kind == "user" else "/etc/group"
        more = f" ({len(missing) - 1} more missing)" if len(missing) > 1 else ""
        raise UserError(f"{first.where}: {first.kind} '{first.name}' does not exist in the "
                        f"image (not in its {database}; is the package that creates it in "
                        f"the service's packages?){more}")


def _names(root: Path, path: str) -> frozenset[str] | None:
    """The names of the account database at image path `path`; None if it has none."""
    try:
        text = (root / resolve_in_root(root, path).lstrip("/")).read_text(errors="replace")
    except FileNotFoundError:
        return None
    return account_names(text)
