"""The real Ignition engine (Debian's `ignition` package ships it inside its dracut module)
applying a config to a root folder, as a host's initramfs does at first boot:
`-platform file -stage fetch-offline` (the config from `IGNITION_CONFIG_FILE`), then
`-stage files -root ROOT`.

Debian's engine always relabels what it wrote for SELinux: it reads `ROOT/etc/selinux/config`
(a `SELINUX=` and a `SELINUXTYPE=` line) and runs `setfiles` with the list of paths on its
input. The VM has no SELinux: a stand-in `setfiles` (on the engine's PATH only) reads that list
and exits 0, and the SELinux config is removed again afterwards.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from monoimage.errors import MissingToolError, UserError
from monoimage.tools.run import run

ENGINE = Path("/usr/lib/dracut/modules.d/30ignition/ignition")
SETFILES_STANDIN = "#!/bin/sh\n# monoimage: no SELinux in the VM; read the relabel list, succeed\ncat >/dev/null\nexit 0\n"
SELINUX_CONFIG = "SELINUX=disabled\nSELINUXTYPE=targeted\n"


class IgnitionRejected(UserError):
    """The engine refused the config: its own last words."""


@dataclass(frozen=True)
class Applied:
    """What the engine wrote: paths (relative to the root), folders last."""

    files: tuple[str, ...]
    log: str


def apply_ignition(config: Path, root: Path, timeout: float = 120) -> Applied:
    """Apply the Ignition `config` to the (empty or not) folder `root` with the real engine."""
    if not ENGINE.exists():
        raise MissingToolError(str(ENGINE), "ignition")
    before = _tree(root)
    selinux = root / "etc/selinux/config"
    made_selinux = not selinux.exists()
    if made_selinux:
        selinux.parent.mkdir(parents=True, exist_ok=True)
        selinux.write_text(SELINUX_CONFIG)
    with tempfile.TemporaryDirectory(prefix="monoimage-ignition-") as scratch:
        bin_dir = Path(scratch) / "bin"
        bin_dir.mkdir()
        (bin_dir / "setfiles").write_text(SETFILES_STANDIN)
        (bin_dir / "setfiles").chmod(0o755)
        env = {"IGNITION_CONFIG_FILE": str(config),
               "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/sbin:/usr/bin')}"}
        logs = []
        for stage in (["-platform", "file", "-stage", "fetch-offline"],
                      ["-platform", "file", "-stage", "files", "-root", str(root)]):
            done = run([str(ENGINE), "-log-to-stdout", *stage], env=env, cwd=scratch,
                       timeout=timeout, check=False, what="ignition")
            logs.append(done.stdout + done.stderr)
            if not done.ok:
                raise IgnitionRejected(f"ignition {stage[-1] if stage[-2] != '-root' else 'files'}"
                                       f" rejected {config.name}: {_reason(done.output)}")
    if made_selinux:
        selinux.unlink()
        for folder in (selinux.parent, selinux.parent.parent):
            if folder != root and not any(folder.iterdir()):
                folder.rmdir()
    written = tuple(sorted(_tree(root) - before))
    return Applied(written, "\n".join(logs))


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir()}


def _reason(output: str) -> str:
    """The engine's own error line (it logs many), shortened."""
    lines = [line for line in output.splitlines() if "CRITICAL" in line or "error" in line.lower()]
    line = (lines or output.strip().splitlines() or ["no output"])[-1]
    return line.split(": ", 1)[-1][:300] if "CRITICAL" in line else line[:300]
