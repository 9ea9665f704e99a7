"""How init starts any child (service, one-shot command, probe command): as whom, with which
environment, in its own session so that a signal to its process group reaches all of it."""

import os
import subprocess
from collections.abc import Mapping
from typing import Any

from .accounts import Account
from .render import SITE_ENV_PREFIX


def child_environment(environ: Mapping[str, str], account: Account,
                      extra: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """Init's environment, the account's HOME/USER/LOGNAME, then the service's own variables.

    `MONOIMAGE_SITE_*` variables are dropped: they reach services through rendered templates,
    and a secret passed that way must not show in every service's /proc/PID/environ.
    `NOTIFY_SOCKET` is init's alone: a service that speaks sd_notify itself (libvirtd does)
    would otherwise tell the host READY=1 before the other services are ready."""
    env = {key: value for key, value in environ.items()
           if not key.startswith(SITE_ENV_PREFIX) and key != "NOTIFY_SOCKET"}
    if account.uid != os.geteuid():
        env.update(HOME=account.home, USER=account.user, LOGNAME=account.user)
    env.update(extra)
    return env


def identity_arguments(account: Account) -> dict[str, Any]:
    """subprocess.Popen keyword arguments that run a child as `account` (setgroups to the
    user's groups, then setgid, then setuid; Popen does it between fork and exec).

    Empty when init already is that identity, so init also runs unprivileged (then only services
    of its own user are possible; the kernel refuses the rest, and Popen reports it)."""
    same_ids = (os.geteuid(), os.getegid()) == (account.uid, account.gid)
    if same_ids and (os.geteuid() != 0 or set(os.getgroups()) <= set(account.groups)):
        return {}
    return {"user": account.uid, "group": account.gid, "extra_groups": list(account.groups)}


def session_arguments(cwd: str, env: dict[str, str]) -> dict[str, Any]:
    """Popen keyword arguments shared by every child: own session, no stdin, cwd, env."""
    return {"cwd": cwd, "env": env, "start_new_session": True, "stdin": subprocess.DEVNULL}
