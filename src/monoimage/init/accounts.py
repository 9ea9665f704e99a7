"""Users and groups a service, a command or a file belongs to, resolved from the image's own
passwd/group databases (initgroups semantics: the user's supplementary groups come along)."""

import grp
import os
import pwd

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple
else:
    from .tuples import NamedTuple


class AccountError(Exception):
    """A user or group named in the table does not exist in the image."""


class Account(NamedTuple):
    user: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def resolve_account(user: str, group: str | None = None) -> Account:
    """The uid, gid (the user's primary group when `group` is None) and supplementary groups."""
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except KeyError:
        if not user.isdigit():
            raise AccountError(f"user {user!r} does not exist") from None
        uid, gid, name, home = int(user), int(user), user, "/"
    else:
        uid, gid, name, home = entry.pw_uid, entry.pw_gid, entry.pw_name, entry.pw_dir
    if group is not None:
        gid = resolve_group(group)
    try:
        groups = tuple(sorted(set(os.getgrouplist(name, gid))))
    except OSError:
        groups = (gid,)
    return Account(name, uid, gid, groups, home)


def resolve_group(group: str) -> int:
    """The gid of `group` (a name or a number)."""
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise AccountError(f"group {group!r} does not exist") from None

