"""Writing rendered configs and runtime directories with their owner and mode.

Files are replaced atomically (temp file in the same directory, then rename) so that a service
reloading on SIGHUP never reads half a config, and the temp file starts at mode 0600 so that a
rendered secret is never readable by others, not even for an instant.
"""

import os


def write_atomic(path: str, content: bytes, mode: int, uid: int, gid: int) -> None:
    """Replace `path` with `content`, owned by uid:gid with `mode`; parents are created."""
    directory = os.path.dirname(path) or "/"
    os.makedirs(directory, mode=0o755, exist_ok=True)
    temp = os.path.join(directory, f".{os.path.basename(path)}.monoimage-{os.getpid()}")
    try:  # left over by an earlier boot that died mid-write (PID 1 has the same pid every time)
        os.unlink(temp)
    except FileNotFoundError:
        pass
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view):]
            if (uid, gid) != (os.geteuid(), os.getegid()):
                os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


def ensure_directory(path: str, mode: int, uid: int, gid: int) -> None:
    """Create `path` (and missing parents, 0755 root) and give it owner and mode."""
    os.makedirs(path, mode=0o755, exist_ok=True)
    if not os.path.isdir(path):
        raise NotADirectoryError(f"{path} exists and is not a directory")
    stat = os.stat(path)
    if (stat.st_uid, stat.st_gid) != (uid, gid):
        os.chown(path, uid, gid)
    if stat.st_mode & 0o7777 != mode:
        os.chmod(path, mode)
