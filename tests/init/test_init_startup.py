"""What PID 1 imports: the package copied alone (as the build does) and run with the image's
flags (`install_init.INIT_PYTHON_FLAGS`) and `-X importtime`, as PID 1 of a PID namespace,
through every part of a run (tcp probe, template, config command, a service as another user,
a status request, the stop). None of the modules that cost PID 1 its RSS may be imported at
startup, and none may be left in PID 1 when it exits."""

import shutil
from pathlib import Path

from init_harness import PY, SRC, free_port, init_lines, service, svc, table

from monoimage.init.control import request_status
from monoimage.pipeline.install_init import INIT_PYTHON_FLAGS

PACKAGE = "monoimage_init"
# Each of these costs PID 1 hundreds of KiB of RSS for its whole life (see the modules that
# replace them: spawn.py, poller.py, signals.py, tuples.py, literal.py, table_apart.py).
NEVER_IN_PID1 = ("subprocess", "threading", "typing", "json", "re", "enum", "selectors",
                 "socket", "signal", "collections", "functools", "argparse", "logging",
                 "dataclasses", "locale", "ast", "_ast", "traceback", "encodings.idna",
                 "unicodedata", "stringprep", "site", "types", "opcode",
                 f"{PACKAGE}.literal", f"{PACKAGE}.report")
# What the table's reader (a child of PID 1, gone before any service starts) imports itself:
# its lines share the log with PID 1's.
TABLE_READER = ("_opcode", "opcode", f"{PACKAGE}.literal")

LAUNCHER = '''
import sys
sys.path.insert(0, {lib!r})
try:
    from {package}.__main__ import main
    code = main()
finally:   # PID 1 only: the table's reader and every forked child leave through os._exit
    with open({modules!r}, "w") as handle:
        handle.write("\\n".join(sorted(sys.modules)) + "\\n")
sys.exit(code)
'''


def imported(log: str) -> list[str]:
    """Module names of `-X importtime`'s lines, in import order."""
    return [line.rsplit("|", 1)[1].strip() for line in log.splitlines()
            if line.startswith("import time:") and not line.rstrip().endswith("package")]


def test_pid1_imports_none_of_the_costly_modules(start_init, tmp_path):
    lib = tmp_path / "lib"
    shutil.copytree(Path(SRC) / "monoimage" / "init", lib / PACKAGE,
                    ignore=shutil.ignore_patterns("__pycache__"))
    modules = tmp_path / "modules.txt"
    launcher = tmp_path / "launcher.py"
    launcher.write_text(LAUNCHER.format(lib=str(lib), package=PACKAGE, modules=str(modules)))
    port = free_port()
    events = tmp_path / "events"
    target = tmp_path / "run" / "config" / "web.conf"
    run = start_init(table(
        service("web", svc("web", "--delay", "0.1", "--tcp", str(port), events=events),
                ready={"kind": "tcp", "host": "localhost", "port": port, "timeout": 3600.0},
                templates=[{"target": str(target), "content": "port {{ port }}\n"}],
                commands=[{"argv": ["true"], "user": "nobody"}]),
        service("worker", svc("worker", events=events), user="nobody", workdir="/tmp",
                depends_on=["web"]),
        site={"port": str(port)}), command=[PY, "-X", "importtime", INIT_PYTHON_FLAGS,
                                            str(launcher)])
    run.wait_state("worker", "ready")
    assert target.read_text() == f"port {port}\n"
    states = {fields["name"]: fields["state"] for kind, fields in
              request_status(str(run.socket)) if kind == "service"}
    assert states == {"web": "ready", "worker": "ready"}
    assert run.stop() == 0
    assert init_lines(run.log())[-1] == "exit 0"

    at_startup = imported(run.log())
    assert f"{PACKAGE}.supervisor" in at_startup and f"{PACKAGE}.spawn" in at_startup
    assert [name for name in at_startup
            if name in NEVER_IN_PID1 and name not in TABLE_READER] == []
    in_pid1 = set(modules.read_text().split())
    assert {f"{PACKAGE}.supervisor", f"{PACKAGE}.table_apart", "_socket", "_signal"} <= in_pid1
    assert sorted(in_pid1 & set(NEVER_IN_PID1)) == []
