"""monoimage-init's own cost on this host, as PID 1 of a PID namespace (needs root, unshare):

- RSS of init (VmRSS, VmHWM) supervising N idle services, on Debian's python3 -I with the
  package copied alone (as in the image);
- time from launch until `health` says healthy, and from SIGTERM until init has exited;
- the startup window: how long after python's exec a SIGTERM is held (blocked until init's
  handlers exist) and handled (handlers installed); before the first, PID 1 loses it;
- log throughput: lines per second a chatty service pushes through init's prefixing.

Prints figures; asserts nothing about wall time.  Usage: python bench/init_pid1.py [N]
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from monoimage.pipeline.install_init import launcher_text

SRC = Path(__file__).resolve().parents[1] / "src" / "monoimage" / "init"
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def child_of(pid: int) -> int:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                    return int(entry)
        time.sleep(0.01)
    raise RuntimeError("no child")


def memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def healthy(sock: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(sock))
            client.sendall(b"status\n")
            answer = b"".join(iter(lambda: client.recv(65536), b""))
    except OSError:
        return False
    return b"end\thealthy=yes" in answer


def run_init(work: Path,
             services: list[dict[str, object]]) -> tuple[subprocess.Popen[bytes], Path]:
    (work / "services.py").write_text(repr({"version": 1, "image": "bench", "site": {},
                                            "services": services}))
    sock = work / "run" / "init.sock"
    argv = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", str(work / "launcher"),
            "run", "--table", str(work / "services.py"),
            "--socket", str(sock), "--secrets-dir", str(work / "secrets")]
    with open(work / "init.log", "ab") as log:
        return subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL), sock


def idle_services(work: Path, count: int) -> None:
    began = time.monotonic()
    process, sock = run_init(work, [{"name": f"idle{i}", "argv": ["sleep", "3600"]}
                                    for i in range(count)])
    while not healthy(sock):
        time.sleep(0.005)
    ready_s = time.monotonic() - began
    init = child_of(process.pid)
    time.sleep(0.5)
    memory = memory_kib(init)
    began = time.monotonic()
    os.kill(init, signal.SIGTERM)
    code = process.wait(30)
    stop_s = time.monotonic() - began
    print(f"{count:3d} idle services: healthy {ready_s * 1000:6.0f} ms after launch; "
          f"init VmRSS {memory['VmRSS'] / 1024:5.1f} MiB (peak {memory['VmHWM'] / 1024:.1f}); "
          f"SIGTERM to exit {stop_s * 1000:5.0f} ms (exit {code})")


def sigterm_mask(pid: int) -> tuple[str, bool, bool]:
    """(process name, SIGTERM blocked, SIGTERM caught) from /proc/PID/status."""
    fields = dict(line.partition(":\t")[::2]
                  for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    bit = 1 << (signal.SIGTERM - 1)
    return (fields["Name"], bool(int(fields["SigBlk"], 16) & bit),
            bool(int(fields["SigCgt"], 16) & bit))


def startup_window(work: Path, runs: int) -> None:
    held, caught = [], []
    for _ in range(runs):
        process, _ = run_init(work, [{"name": "idle", "argv": ["sleep", "3600"]}])
        init = child_of(process.pid)
        execed = blocked_at = None
        while True:
            try:
                name, blocked, handled = sigterm_mask(init)
            except (OSError, KeyError):
                continue
            now = time.monotonic()
            if name == "unshare":   # unshare(1) blocks SIGTERM itself until its exec
                continue
            execed = execed or now
            if blocked and blocked_at is None:
                blocked_at = now
            if handled:
                break
        held.append(((blocked_at or now) - execed) * 1000)
        caught.append((now - execed) * 1000)
        os.kill(init, signal.SIGTERM)
        process.wait(30)
    held.sort()
    caught.sort()
    print(f"startup window ({runs} launches): SIGTERM held {held[len(held) // 2]:.1f} ms after "
          f"python's exec (median; lost before), handled after {caught[len(caught) // 2]:.1f} ms")


def throughput(work: Path, lines: int) -> None:
    chatty = f"import sys\nfor i in range({lines}): sys.stdout.write(f'line {{i}} of output\\n')"
    began = time.monotonic()
    process, _ = run_init(work, [{"name": "chatty", "argv": [PYTHON, "-c", chatty],
                                  "restart": {"policy": "never"}}])
    process.wait(120)
    elapsed = time.monotonic() - began
    with open(work / "init.log", "rb") as log:
        seen = sum(1 for line in log if line.startswith(b"chatty | line"))
    print(f"log throughput: {seen} of {lines} lines prefixed in {elapsed:.2f} s "
          f"({seen / elapsed / 1000:.0f} k lines/s, into a file)")


def main() -> None:
    counts = [int(arg) for arg in sys.argv[1:]] or [1, 10, 50]
    print(f"python: {PYTHON} ({subprocess.check_output([PYTHON, '-V'], text=True).strip()})")
    for precompiled in (False, True):
        print("package copied with .pyc files (as the build should)" if precompiled else
              "package copied without .pyc files (compiled at every boot on a read-only root)")
        for count in counts:
            with tempfile.TemporaryDirectory() as temp:
                install(Path(temp), precompiled)
                idle_services(Path(temp), count)
    with tempfile.TemporaryDirectory() as temp:
        install(Path(temp), True)
        startup_window(Path(temp), 20)
    with tempfile.TemporaryDirectory() as temp:
        install(Path(temp), True)
        throughput(Path(temp), 200_000)


def install(work: Path, precompiled: bool) -> None:
    """Copy the package alone and write a launcher like the image's entrypoint (see
    pipeline/install_init.py); optionally byte-compile the package, as the build does."""
    package = work / "lib" / "monoimage_init"
    shutil.copytree(SRC, package, ignore=shutil.ignore_patterns("__pycache__"))
    launcher = work / "launcher"
    launcher.write_text(launcher_text(PYTHON, str(work / "lib")))
    launcher.chmod(0o755)
    if precompiled:
        subprocess.run([PYTHON, "-m", "compileall", "-q", str(package)], check=True)


if __name__ == "__main__":
    main()
