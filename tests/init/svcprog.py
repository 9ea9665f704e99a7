"""A small configurable service for monoimage-init's tests (a test fixture, run by the tests'
python3 under init; never part of the init itself).

Every event goes to the --events file as one line `NAME EVENT [DETAIL]` (appended with
O_APPEND, so several services can share one file and the order of lines is the real order).
"""

import argparse
import os
import signal
import socket
import sys
import time
from collections.abc import Callable


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--events")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before getting ready")
    parser.add_argument("--tcp", type=int, help="listen on this port once ready")
    parser.add_argument("--unix", help="listen on this unix socket once ready")
    parser.add_argument("--touch", help="create this file once ready")
    parser.add_argument("--ready-line", help="write this stderr line once ready")
    parser.add_argument("--ignore-term", action="store_true")
    parser.add_argument("--stop-delay", type=float, default=0.0)
    parser.add_argument("--exit", type=int, help="exit with this code after --after seconds")
    parser.add_argument("--after", type=float, default=0.0)
    parser.add_argument("--say", action="append", default=[], help="a stdout line")
    parser.add_argument("--err", action="append", default=[], help="a stderr line")
    parser.add_argument("--partial", help="write this to stdout without a newline")
    parser.add_argument("--hup-read", help="on SIGHUP, log this file's content")
    parser.add_argument("--orphan", metavar="RELEASE",
                        help="double-fork a grandchild that outlives its parent and exits once "
                             "the file RELEASE exists")
    parser.add_argument("--flood", action="store_true",
                        help="once ready, write stdout lines as fast as the pipe takes them")
    parser.add_argument("--leftover", action="store_true",
                        help="start a child in the same process group that ignores SIGTERM")
    parser.add_argument("--probe-pid-file",
                        help="on SIGTERM, wait until the pid in this file is gone, then log it")
    args = parser.parse_args()

    def event(what: str) -> None:
        if args.events:
            fd = os.open(args.events, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            os.write(fd, f"{args.name} {what}\n".encode())
            os.close(fd)

    def on_term(signum: int, frame: object) -> None:
        if args.probe_pid_file:
            with open(args.probe_pid_file) as handle:
                pid = int(handle.read())
            wait_gone(pid)
            event(f"sees {pid} gone")
        event("stop")
        time.sleep(args.stop_delay)
        sys.exit(0)

    def on_hup(signum: int, frame: object) -> None:
        if args.hup_read:
            with open(args.hup_read) as handle:
                event("hup " + handle.read().strip())
        else:
            event("hup")

    signal.signal(signal.SIGTERM, signal.SIG_IGN if args.ignore_term else on_term)
    signal.signal(signal.SIGHUP, on_hup)
    event(f"start {os.getpid()} {time.monotonic():.3f}")
    for line in args.say:
        print(line, flush=True)
    for line in args.err:
        print(line, file=sys.stderr, flush=True)
    if args.partial:
        sys.stdout.write(args.partial)
        sys.stdout.flush()
    if args.orphan:
        double_fork(event, args.orphan)
    if args.leftover:
        leftover = os.fork()
        if leftover == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            time.sleep(600)
            os._exit(0)
        event(f"leftover {leftover}")
    time.sleep(args.delay)
    keep = []
    if args.tcp:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", args.tcp))
        server.listen()
        keep.append(server)
    if args.unix:
        server = socket.socket(socket.AF_UNIX)
        server.bind(args.unix)
        server.listen()
        keep.append(server)
    if args.touch:
        open(args.touch, "w").close()
    if args.ready_line:
        print(args.ready_line, file=sys.stderr, flush=True)
    event("ready")
    if args.flood:
        line = b"flood " + b"x" * 200 + b"\n"
        while True:
            os.write(1, line)
    if args.exit is not None:
        time.sleep(args.after)
        event(f"exit {args.exit} {time.monotonic():.3f}")
        sys.exit(args.exit)
    while True:
        time.sleep(3600)


def double_fork(event: Callable[[str], None], release: str) -> None:
    """The classic daemon dance: the child forks the grandchild and exits at once, so the
    grandchild is re-parented to PID 1 (our init), reports so, and exits once the test creates
    the file `release` (the test bounds every wait)."""
    child = os.fork()
    if child == 0:
        parent = os.getpid()
        if os.fork() == 0:
            while os.getppid() == parent:
                time.sleep(0.01)
            event(f"orphan {os.getpid()} parent {os.getppid()}")
            while not os.path.exists(release):
                time.sleep(0.01)
            os._exit(0)
        os._exit(0)
    os.waitpid(child, 0)


def wait_gone(pid: int) -> None:
    """Return once `pid` is gone or a zombie, however long it takes (the test bounds the
    wait: the service's stop_timeout), so a slow machine cannot make a dying process look
    alive."""
    while True:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state == "Z":
            return
        time.sleep(0.02)


if __name__ == "__main__":
    main()
