"""The `monoimage` command itself: its version, and a user's mistake as one line and exit 2."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from timing import scaled

REPO = Path(__file__).resolve().parent.parent


def test_version_is_the_projects() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    done = subprocess.run([sys.executable, "-c", ("from monoimage.cli import main; "
                           "main(prog_name='monoimage')"), "--version"],
                          capture_output=True, text=True, check=False, timeout=scaled(60))
    assert (done.returncode, done.stdout, done.stderr) == (0, f"monoimage, version {version}\n",
                                                           "")


def test_an_unknown_subcommand_exits_2() -> None:
    done = subprocess.run([sys.executable, "-c", ("from monoimage.cli import main; "
                           "main(prog_name='monoimage')"), "deploy"],
                          capture_output=True, text=True, check=False, timeout=scaled(60))
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["monoimage: No such command 'deploy'.",
                                        "  see 'monoimage --help'"]
