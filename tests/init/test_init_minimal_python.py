"""monoimage-init runs on Debian's python3-minimal: the package, copied alone outside the
monoimage tree, is run with every module that python3-minimal lacks blocked, as PID 1 of a
PID namespace, supervising a service with a tcp probe, a template and a config command; its
status/health/check clients run the same way. Every module loaded must come from
python3-minimal."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from init_harness import PY, SRC, free_port, init_lines, scaled, service, svc, table

from notify_socket import NotifySocket


def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Top-level modules and packages that Debian 12's libpython3.11-minimal and python3.11-minimal
# ship under /usr/lib/python3.11 (`dpkg -L libpython3.11-minimal python3.11-minimal`),
# including lib-dynload/_hashlib and _ssl ...
MINIMAL_STDLIB = words("""
    __future__ _collections_abc _compat_pickle _py_abc _sitebuiltins _strptime
    _sysconfigdata__x86_64-linux-gnu _threading_local _weakrefset abc argparse ast base64 bisect
    calendar codecs collections compileall configparser contextlib copy copyreg csv datetime dis
    email encodings enum filecmp fnmatch functools genericpath getopt glob hashlib heapq imp
    importlib inspect io ipaddress keyword linecache locale logging opcode operator optparse os
    pathlib pickle pkgutil platform posixpath py_compile quopri random re reprlib runpy selectors
    signal site sitecustomize socket sre_compile sre_constants sre_parse ssl stat string
    stringprep struct subprocess sysconfig tempfile textwrap threading token tokenize traceback
    tracemalloc types typing urllib uu warnings weakref zipfile zipimport _hashlib _ssl
""")
# ... plus the modules Debian's python3.11 has built in (its sys.builtin_module_names) ...
DEBIAN_BUILTINS = words("""
    _abc _ast _bisect _blake2 _codecs _collections _csv _datetime _elementtree _functools _heapq
    _imp _io _locale _md5 _opcode _operator _pickle _posixsubprocess _random _sha1 _sha256 _sha3
    _sha512 _signal _socket _sre _stat _statistics _string _struct _symtable _thread _tokenize
    _tracemalloc _warnings _weakref array atexit binascii builtins cmath errno faulthandler fcntl
    gc grp itertools marshal math posix pwd pyexpat select spwd sys syslog time unicodedata
    xxsubtype zlib
""")
# ... plus what every interpreter has frozen in, and the script being run.
FROZEN = frozenset({"_frozen_importlib", "_frozen_importlib_external", "__main__"})
ALLOWED = MINIMAL_STDLIB | DEBIAN_BUILTINS | FROZEN
# What the issue names explicitly as missing: asserted blocked before the init even starts.
NAMED_MISSING = ("json", "asyncio", "dataclasses", "shlex", "shutil", "queue", "ctypes",
                 "resource", "tomllib")
PACKAGE = "monoimage_init"
MINIMAL_PYTHON = "/usr/bin/python3.11" if os.path.exists("/usr/bin/python3.11") else sys.executable

LAUNCHER = '''
import sys

ALLOWED = frozenset({allowed!r})
PACKAGE = {package!r}


class OnlyPythonMinimal:
    """Refuses every module that python3-minimal does not ship."""

    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top == PACKAGE or top in ALLOWED:
            return None
        raise ModuleNotFoundError(f"No module named {{name!r}} (not in python3-minimal)",
                                  name=name)


# The host's site-packages may have loaded modules at startup (a .pth of setuptools does):
# forget them, so that importing them again goes through the finder.
for loaded in [name for name in sys.modules if name.partition(".")[0] not in ALLOWED]:
    del sys.modules[loaded]
sys.meta_path.insert(0, OnlyPythonMinimal())
for name in {named!r}:
    try:
        __import__(name)
    except ImportError:
        continue
    sys.exit(f"{{name}} should be blocked")
import runpy

sys.argv = [{package_dir!r}, *sys.argv[1:]]
try:
    runpy.run_path({package_dir!r}, run_name="__main__")  # as `python3 -I <package dir>`
finally:
    with open({modules_file!r}, "a") as handle:
        handle.write("\\n".join(sorted(sys.modules)) + "\\n")
'''


def install_copy(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The package copied alone (as the build does), and a launcher that blocks imports."""
    lib = tmp_path / "lib"
    package_dir = lib / PACKAGE
    shutil.copytree(Path(SRC) / "monoimage" / "init", package_dir,
                    ignore=shutil.ignore_patterns("__pycache__"))
    modules_file = tmp_path / "modules.txt"
    launcher = tmp_path / "launch_minimal.py"
    launcher.write_text(LAUNCHER.format(allowed=sorted(ALLOWED), package=PACKAGE,
                                        named=NAMED_MISSING, package_dir=str(package_dir),
                                        modules_file=str(modules_file)))
    return package_dir, launcher, modules_file


def test_init_and_its_clients_run_with_only_python3_minimal_modules(start_init, tmp_path):
    _, launcher, modules_file = install_copy(tmp_path)
    minimal = [MINIMAL_PYTHON, "-I", str(launcher)]
    port = free_port()
    events = tmp_path / "events"
    target = tmp_path / "run" / "config" / "tiny.conf"
    table_data = table(service(
        "tiny", svc("tiny", "--delay", "0.2", "--tcp", str(port), events=events),
        ready={"kind": "tcp", "port": port, "timeout": 3600.0, "interval": 0.05},
        templates=[{"target": str(target), "content": "port {{ port }}\n"}],
        commands=[{"argv": ["true"], "user": "nobody"}]), site={"port": str(port)})
    run = start_init(table_data, command=minimal)
    run.wait_state("tiny", "ready")
    assert target.read_text() == f"port {port}\n"

    def client(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*minimal, *args], capture_output=True, text=True,
                              timeout=scaled(20), check=False)

    ready_ms = run.status()["tiny"]["ready_after_ms"]
    status = client("status", "--json", "--socket", str(run.socket))
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["services"][0]["state"] == "ready"
    health = client("health", "--socket", str(run.socket))
    assert (health.returncode, health.stdout) == (0, "healthy\n")
    check = client("check", "--table", str(run.table_path))
    assert check.returncode == 0, check.stderr
    assert run.stop() == 0
    assert f"tiny is ready (tcp probe, {ready_ms} ms)" in init_lines(run.log())

    loaded = set(modules_file.read_text().split())
    assert {PACKAGE, f"{PACKAGE}.supervisor", f"{PACKAGE}.probes"} <= loaded
    outside = sorted(name for name in loaded
                     if name.partition(".")[0] not in ALLOWED | {PACKAGE})
    assert outside == []
    assert not [name for name in loaded if name.partition(".")[0] in NAMED_MISSING]


def test_sd_notify_and_the_http_probe_need_only_python3_minimal_modules(start_init, tmp_path):
    """What only some images load (the http probe) or only some hosts (NOTIFY_SOCKET set)."""
    _, launcher, modules_file = install_copy(tmp_path)
    notify = NotifySocket(tmp_path / "notify.sock")
    (tmp_path / "www").mkdir()
    port = free_port()
    web = [PY, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(tmp_path / "www"),
           str(port)]   # the service, not the init: the host's full python runs it
    run = start_init(table(service("web", web, ready={"kind": "http", "port": port,
                                                      "path": "/", "timeout": 3600.0})),
                     command=[MINIMAL_PYTHON, "-I", str(launcher)],
                     env={"NOTIFY_SOCKET": notify.address})
    notify.wait_line("READY=1", log=run.log)
    assert run.stop() == 0
    notify.wait_line("STOPPING=1", log=run.log)
    notify.close()
    loaded = set(modules_file.read_text().split())
    assert {f"{PACKAGE}.notify", f"{PACKAGE}.httpprobe"} <= loaded
    assert sorted(name for name in loaded if name.partition(".")[0] not in ALLOWED | {PACKAGE}) \
        == []


def test_copied_package_runs_as_a_directory_and_as_a_module(tmp_path):
    package_dir, _, _ = install_copy(tmp_path)
    table_path = tmp_path / "services.py"
    table_path.write_text(repr(table(service("tiny", ["sleep", "1"]))))
    as_directory = subprocess.run([MINIMAL_PYTHON, "-I", str(package_dir), "check",
                                   "--table", str(table_path)],
                                  capture_output=True, text=True, timeout=scaled(20),
                                  check=False)
    assert as_directory.returncode == 0, as_directory.stderr
    assert as_directory.stdout == f"{table_path}: valid: image test, 1 service(s): tiny\n"
    as_module = subprocess.run([MINIMAL_PYTHON, "-m", PACKAGE, "check", "--table", "/nonexistent"],
                               capture_output=True, text=True, timeout=scaled(20),
                               check=False,
                               env={"PATH": os.environ["PATH"],
                                    "PYTHONPATH": str(package_dir.parent)})
    assert as_module.returncode == 2
    assert as_module.stderr == ("monoimage-init: /nonexistent: cannot read the service table: "
                                "No such file or directory\n")


def test_package_imports_nothing_from_the_rest_of_monoimage():
    for path in (Path(SRC) / "monoimage" / "init").glob("*.py"):
        text = path.read_text()
        assert "from monoimage" not in text and "import monoimage" not in text, path
