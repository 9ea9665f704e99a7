"""Entry point of monoimage-init, however it is launched:

    monoimage-init ...                          (console script of the monoimage package)
    python3 -m monoimage_init ...               (package copied anywhere on sys.path)
    python3 -I /usr/lib/monoimage/monoimage_init ...   (package directory run as a script:
                                                what an image's ENTRYPOINT uses; -I keeps
                                                PYTHON* variables away from PID 1)

See commands.py for the commands and exitcodes.py for the exit codes.
"""

# First, before any import that takes time: as PID 1 of a PID namespace, init ignores every
# signal it has no handler for, so a SIGTERM sent while Python imports it would be lost;
# blocked, it stays pending until signals.SignalInbox has its handlers in place and unblocks.
# `_signal` is built in (the `signal` module costs 8 ms: it imports enum).
import _signal

STARTUP_BLOCKED = (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP, _signal.SIGCHLD)
_signal.pthread_sigmask(_signal.SIG_BLOCK, STARTUP_BLOCKED)

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the command named in `argv` (default: sys.argv[1:]) and return its exit code."""
    from .commands import dispatch
    return dispatch(sys.argv[1:] if argv is None else argv)


def _main_from_directory() -> int:
    # Run as `python3 <package dir>`: there is no parent package, so relative imports would
    # fail. Put the directory's parent on sys.path and import the package by its own name.
    import importlib
    import os
    package_dir = os.path.dirname(os.path.abspath(__file__))
    # Python put the package directory itself first on sys.path; its modules must not shadow
    # anything, so its parent takes that place.
    if sys.path and os.path.abspath(sys.path[0] or ".") == package_dir:
        sys.path[0] = os.path.dirname(package_dir)
    else:
        sys.path.insert(0, os.path.dirname(package_dir))
    module = importlib.import_module(os.path.basename(package_dir) + ".__main__")
    exit_code: int = module.main()
    return exit_code


if __name__ == "__main__":
    sys.exit(main() if __package__ else _main_from_directory())
