"""How init starts a child without subprocess (spawn.py), both ways: posix_spawn (as init, in
its directory) and fork + exec (another user or directory), each checked on real children:
default signal dispositions and an empty mask, a session of its own, exactly fds 0-2, the
identity, and the errors Popen would raise."""

import _signal
import os
import signal
from pathlib import Path

import pytest
from init_harness import PY

from monoimage.init import spawn as spawn_module
from monoimage.init.accounts import resolve_account
from monoimage.init.spawn import spawn

# children report on themselves: grep its signal mask and ignored signals as exec left them (a
# shell changes its own mask, Python ignores SIGPIPE itself), python its fds (probed with
# fstat: listing /proc/self/fd would open one), session, ids and directory
REPORT = """
import os
def is_open(fd):
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True
open_fds = [str(fd) for fd in range(1024) if is_open(fd)]
print(os.getsid(0), os.getuid(), os.getcwd(), ",".join(open_fds))
"""
SIGNALS = ["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]


def run_child(tmp_path: Path, cwd: str, user: str | None, wait: bool = True) -> dict[str, str]:
    out = tmp_path / "out"
    account = None if user is None else resolve_account(user)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o666)
    try:
        for argv in (SIGNALS, [PY, "-I", "-S", "-c", REPORT]):
            pid = spawn(argv, dict(os.environ), cwd, account, fd, fd, wait=wait)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0, out.read_text()
    finally:
        os.close(fd)
    _, blocked, _, ignored, sid, uid, where, fds = out.read_text().split()
    return {"pid": str(pid), "sid": sid, "SigBlk": blocked, "SigIgn": ignored, "uid": uid,
            "cwd": where, "fds": fds}


@pytest.mark.parametrize("way", ["posix_spawn", "fork"])
def test_child_gets_default_signals_its_own_session_and_only_three_fds(tmp_path, way):
    leak = os.open(os.devnull, os.O_RDONLY)
    os.set_inheritable(leak, True)        # as if init had been started with it
    spawn_module._INHERITED_CLOSED.clear()
    blocked = _signal.pthread_sigmask(_signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGHUP})
    ignored = signal.signal(signal.SIGPIPE, signal.SIG_IGN)   # as Python sets it in init
    try:
        cwd = os.getcwd() if way == "posix_spawn" else str(tmp_path)
        report = run_child(tmp_path, cwd, None)
    finally:
        _signal.pthread_sigmask(_signal.SIG_SETMASK, blocked)
        signal.signal(signal.SIGPIPE, ignored)
        os.close(leak)
    assert report["sid"] == report["pid"]                  # a session (and group) of its own
    assert int(report["SigBlk"], 16) == 0                 # init's startup mask is not inherited
    for signum in (signal.SIGPIPE, signal.SIGXFSZ):        # Python's ignored ones: default again
        assert not int(report["SigIgn"], 16) & (1 << (signum - 1))
    assert report["fds"] == "0,1,2"
    assert report["cwd"] == cwd


def test_child_as_another_user_gets_its_ids_groups_and_directory(tmp_path):
    nobody = resolve_account("nobody")
    for wait in (True, False):
        report = run_child(tmp_path, "/tmp", "nobody", wait=wait)
        assert (report["uid"], report["cwd"]) == (str(nobody.uid), "/tmp")
        assert report["fds"] == "0,1,2"


def test_errors_are_popens(tmp_path):
    env = dict(os.environ)
    with pytest.raises(FileNotFoundError, match=r"\[Errno 2\] No such file or directory: "
                                                r"'no-such-program'"):
        spawn(["no-such-program"], env, "/", None, None, None)
    with pytest.raises(FileNotFoundError, match="'/nonexistent/prog'"):
        spawn(["/nonexistent/prog"], env, "/", None, None, None)
    with pytest.raises(FileNotFoundError, match=f"'{tmp_path}/gone'"):
        spawn(["true"], env, str(tmp_path / "gone"), resolve_account("nobody"), None, None,
              wait=False)
    data = tmp_path / "data"
    data.write_text("not a program")
    data.chmod(0o644)
    with pytest.raises(PermissionError):
        spawn([str(data)], env, "/", None, None, None)


def test_exec_failure_only_the_child_sees_is_an_error_or_exit_127(tmp_path):
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x00\x01 not an executable format")
    garbage.chmod(0o755)
    env = dict(os.environ)
    with pytest.raises(OSError, match="Exec format error") as raised:   # forked: another cwd
        spawn([str(garbage)], env, str(tmp_path), None, None, None)
    assert raised.value.filename == str(garbage)
    err = tmp_path / "err"
    fd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        pid = spawn([str(garbage)], env, str(tmp_path), None, None, fd, wait=False)
    finally:
        os.close(fd)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 127
    assert err.read_text() == (f"monoimage-init: cannot start {garbage}: [Errno 8] Exec format "
                               f"error: '{garbage}'\n")
