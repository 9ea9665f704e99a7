"""How init starts any child (service, one-shot command, probe command): as whom, with which
environment, in its own session so that a signal to its process group reaches all of it.

Not `subprocess`, which (with `threading`, `selectors`, `signal`, `locale` it imports) would
cost PID 1 about 2.7 MiB of RSS for its whole life. A child gets what
`subprocess.Popen(argv, start_new_session=True, stdin=DEVNULL, cwd=..., env=..., user=...,
group=..., extra_groups=..., restore_signals=True, close_fds=True)` gives it: the default
disposition of every signal init catches or Python ignores (SIGPIPE, SIGXFSZ), stdin from
/dev/null, its stdout/stderr, a new session, the working directory, supplementary groups then
gid then uid, no other fd, an empty signal mask, argv[0] searched in the *child's* PATH; a
failure before exec is an OSError in the parent naming argv[0] (or the working directory), as
Popen's, and such a child is reaped at once.

Two ways, the same result:
- `os.posix_spawn` (vfork + exec in the C library: the fast one) when the child runs as init
  and in init's working directory: file actions for the fds, `setsid`, `setsigdef`,
  `setsigmask`; init's own fds are all close-on-exec (`close_inherited_fds` makes sure of
  the ones it was started with).
- `os.fork` then, in the child, the same steps in Python plus chdir, setgroups, setgid and
  setuid, then `os.execve`; a failure comes back through a close-on-exec pipe. Init's signals
  are blocked from before the fork until the child has reset their handlers, so no handler
  of init's ever runs in the child.
"""

import _signal
import os

from .accounts import Account
from .render import SITE_ENV_PREFIX
from .signals import CAUGHT

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

RESET_SIGNALS = (*CAUGHT, _signal.SIGPIPE, _signal.SIGXFSZ)
ERROR_LIMIT = 4096


def child_environment(environ: "Mapping[str, str]", account: Account,
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


def identity(account: Account) -> tuple[int, int, tuple[int, ...]] | None:
    """(uid, gid, groups) to switch to in the child, None when init already is `account`.

    So init also runs unprivileged (then only services of its own user are possible; the
    kernel refuses the rest, and spawn reports it)."""
    same_ids = (os.geteuid(), os.getegid()) == (account.uid, account.gid)
    if same_ids and (os.geteuid() != 0 or set(os.getgroups()) <= set(account.groups)):
        return None
    return account.uid, account.gid, account.groups


def spawn(argv: tuple[str, ...] | list[str], env: dict[str, str], cwd: str,
          account: Account | None, stdout: int | None, stderr: int | None,
          wait: bool = True) -> int:
    """Start `argv` in its own session as `account` (None: as init); its stdin is /dev/null,
    its stdout and stderr the given fds (None: /dev/null). Returns its pid; OSError (with the
    child's errno) when it could not be started.

    `wait=False` (services): a forked child is not waited for until its exec, so that starting
    several services never queues behind the scheduler; what only the child can find wrong
    (chdir or exec as its user) it then says on its stderr, and exits 127. A program that is
    not there, or a working directory that is not, is still an OSError here."""
    ids = None if account is None else identity(account)
    path = find_program(argv[0], env)
    if ids is None and cwd == _init_directory():
        return _posix_spawn(path, list(argv), env, stdout, stderr)
    if not wait and not os.path.isdir(cwd):
        raise OSError(2, os.strerror(2), cwd)
    return _fork_exec(path, list(argv), env, cwd, ids, (stdout, stderr), wait)


_INHERITED_CLOSED: list[bool] = []
_DIRECTORY: list[str] = []


def _init_directory() -> str:
    if not _DIRECTORY:
        try:
            _DIRECTORY.append(os.getcwd())
        except OSError:
            _DIRECTORY.append("")   # gone: every child then gets its own chdir
    return _DIRECTORY[0]


def close_inherited_fds() -> None:
    """Make every fd above 2 that init was started with close-on-exec, once (Python makes its
    own so), so that a posix_spawn child gets exactly its three."""
    if _INHERITED_CLOSED:
        return
    _INHERITED_CLOSED.append(True)
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 256))
    for fd in fds:
        if fd > 2:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass


def _posix_spawn(path: str, argv: list[str], env: dict[str, str], stdout: int | None,
                 stderr: int | None) -> int:
    close_inherited_fds()
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in
                   enumerate((null, null if stdout is None else stdout,
                              null if stderr is None else stderr))]
        return os.posix_spawn(path, argv, env, file_actions=actions, setsid=True,
                              setsigdef=RESET_SIGNALS, setsigmask=())
    except OSError as error:
        raise OSError(error.errno, error.strerror, argv[0]) from None
    finally:
        os.close(null)


def find_program(name: str, env: "Mapping[str, str]") -> str:
    """The path execvpe would run for `name`, searched in `env`'s PATH; OSError as it would
    fail (ENOENT, or EACCES when only a file without execute permission was found)."""
    if name.startswith("/"):
        if not os.path.exists(name):
            raise OSError(2, os.strerror(2), name)
        if not (os.path.isfile(name) and os.access(name, os.X_OK)):
            raise OSError(13, os.strerror(13), name)
        return name
    if "/" in name:
        return name   # relative to the child's working directory: its exec will tell
    denied = None
    for directory in os.get_exec_path(dict(env)):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            if os.access(path, os.X_OK):
                return path
            denied = denied or path
    if denied is not None:
        raise OSError(13, os.strerror(13), name)
    raise OSError(2, os.strerror(2), name)


def _fork_exec(path: str, argv: list[str], env: dict[str, str], cwd: str,
               ids: tuple[int, int, tuple[int, ...]] | None,
               outputs: tuple[int | None, int | None], wait: bool) -> int:
    error_read, error_write = os.pipe() if wait else (-1, -1)   # both close-on-exec
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    fds = (null, *(null if fd is None else fd for fd in outputs))
    mask = _signal.pthread_sigmask(_signal.SIG_BLOCK, CAUGHT)
    pid = -1
    try:
        pid = os.fork()
        if pid == 0:   # the child: never returns
            _exec_child(path, argv, env, cwd, ids, fds, error_write)
    finally:
        if pid != 0:   # the parent (also when fork itself failed)
            _signal.pthread_sigmask(_signal.SIG_SETMASK, mask)
            os.close(null)
            if wait:
                os.close(error_write)
    if not wait:
        return pid
    try:
        report = read_all(error_read)
    finally:
        os.close(error_read)
    if not report:
        return pid   # exec succeeded: the pipe closed with nothing in it
    os.waitpid(pid, 0)
    number, _, filename = report.decode("utf-8", "replace").partition(":")
    code = int(number) if number.isdigit() else 0
    raise OSError(code, os.strerror(code) if code else "cannot start", filename or None)


def _exec_child(path: str, argv: list[str], env: dict[str, str], cwd: str,
                ids: tuple[int, int, tuple[int, ...]] | None, fds: tuple[int, ...],
                error_write: int) -> None:
    filename = argv[0]
    try:
        for signum in RESET_SIGNALS:
            _signal.signal(signum, _signal.SIG_DFL)
        _signal.set_wakeup_fd(-1)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.setsid()
        filename = cwd
        os.chdir(cwd)
        filename = ""
        if ids is not None:
            uid, gid, groups = ids
            os.setgroups(list(groups))
            os.setgid(gid)
            os.setuid(uid)
        keep = max(error_write, 2)
        os.closerange(3, keep)
        os.closerange(keep + 1, max(os.sysconf("SC_OPEN_MAX"), keep + 2))
        _signal.pthread_sigmask(_signal.SIG_SETMASK, ())
        filename = argv[0]
        os.execve(path, argv, env)
        error: BaseException = OSError(0, "exec returned")
    except BaseException as raised:   # noqa: BLE001 - whatever it is, the child must not return
        error = raised
    try:
        number = (error.errno or 0) if isinstance(error, OSError) else 0
        if error_write >= 0:
            os.write(error_write, f"{number}:{filename}".encode("utf-8", "replace")[:ERROR_LIMIT])
        else:
            detail = f"[Errno {number}] {os.strerror(number)}" if number else repr(error)
            where = f": {filename!r}" if filename else ""
            os.write(2, f"monoimage-init: cannot start {argv[0]}: {detail}{where}\n"
                        .encode("utf-8", "replace"))
    finally:
        os._exit(127)


def read_all(fd: int) -> bytes:
    """Everything `fd` gives until its end."""
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except InterruptedError:
            continue
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
