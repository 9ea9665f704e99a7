"""The init stage: monoimage-init, the service table and the template links, into an image root.

The golden image gets all of it. A layered comparator's base gets the program alone (as Kolla's
base carries kolla_start) and each child its own service's table, by the same functions.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from monoimage.errors import UserError
from monoimage.image import IMAGE_PYTHON, INIT_LAUNCHER, INIT_LIB, INIT_PACKAGE, PATH, TABLE_PATH
from monoimage.plan.service_table import service_table_text, template_target
from monoimage.recipe.model import Recipe
from monoimage.tools.chroot import run_in_root
from monoimage.tools.in_root import (
    RootPathError,
    make_parents,
    resolve_in_root,
    writable_path,
    write_text,
)
from monoimage.tools.run import tail

INIT_SOURCE = Path(__file__).parents[1] / "init"
# -I (isolated): no PYTHON* variable, user site or script folder reaches PID 1; the launcher
# puts the init's own folder on sys.path itself. -S: no `site` (with its .pth files, half a MiB
# of PID 1's RSS here; the init needs nothing beyond the standard library). -B: never try to
# write bytecode (compile_init wrote it; the root is read-only anyway). One shebang argument.
INIT_PYTHON_FLAGS = "-BIS"


def launcher_text(python: str = IMAGE_PYTHON, lib: str = INIT_LIB) -> str:
    """The launcher script: `python` with the init's flags, the package found under `lib`."""
    return (f'#!{python} {INIT_PYTHON_FLAGS}\nimport sys; sys.path.insert(0, "{lib}"); '
            'from monoimage_init.__main__ import main; sys.exit(main())\n')


LAUNCHER_TEXT = launcher_text()
# PYTHONHASHSEED only works from the environment, which -I/-E would ignore: the environment is
# cleared instead, so no PYTHON* variable of the build host (PYTHONPYCACHEPREFIX…) leaks in.
_CLEAN_PYTHON_ENV = {"PATH": PATH, "PYTHONHASHSEED": "0", "LC_ALL": "C.UTF-8"}


def init_paths(recipe: Recipe) -> tuple[str, ...]:
    """What `add_init` writes: the init's folder (a tree), launcher, table, template links."""
    links = tuple(t.dest for s in recipe.services for t in s.templates)
    return (INIT_LIB, INIT_LAUNCHER, TABLE_PATH, *links)


def is_init_path(recipe: Recipe, root: Path) -> Callable[[str], bool]:
    """Whether a path of the image root `root` belongs to the top (init) layer.

    Each path is taken where `add_init` wrote it: resolved inside the image, its last
    component not followed, so a template link for /var/run/x (Debian's /var/run -> /run) is
    the image's /run/x.
    """
    roots = {resolve_in_root(root, path, follow_last=False) for path in init_paths(recipe)}
    return lambda path: any(path == r or path.startswith(r + "/") for r in roots)


def add_init(root: Path, recipe: Recipe) -> None:
    """monoimage-init (package + launcher), the service table, and one symlink per template."""
    add_init_program(root)
    add_service_table(root, recipe)


def add_init_program(root: Path) -> None:
    """monoimage-init's package and launcher, without a service table."""
    package = writable_path(root, INIT_PACKAGE, "monoimage-init's package")
    if package.is_dir():
        shutil.rmtree(package)
    make_parents(root, package)
    package.mkdir()
    for source in sorted(INIT_SOURCE.glob("*.py")):
        write_file(root, f"{INIT_PACKAGE}/{source.name}", source.read_text(), 0o644)
    write_file(root, INIT_LAUNCHER, LAUNCHER_TEXT, 0o755)


def add_service_table(root: Path, recipe: Recipe) -> None:
    """The service table, and a link from each template's dest to where the init renders it.

    A dest is resolved inside the image (`tools/in_root.py`): Debian's /var/run -> /run puts
    a link for /var/run/x at the image's /run/x, never at the build host's.
    """
    write_file(root, TABLE_PATH, service_table_text(recipe), 0o644)
    for service in recipe.services:
        for index, template in enumerate(service.templates):
            where = f"{service.source}: config.templates[{index}].dest"
            link = writable_path(root, template.dest, where, follow_last=False)
            make_parents(root, link)
            if link.is_symlink() or link.is_file():
                link.unlink()
            elif link.is_dir():
                raise RootPathError(f"{where}: {template.dest} is a directory in the image")
            elif os.path.lexists(link):
                raise RootPathError(f"{where}: {template.dest} is not a regular file in the "
                                    f"image")
            link.symlink_to(template_target(template.dest))


def compile_init(root: Path) -> bool:
    """Byte-compile the init package with the image's own python; False if it has none.

    A read-only root cannot cache bytecode, so without this every start recompiles the init.
    The image's interpreter writes its own magic number; `unchecked-hash` .pyc files hold a
    source hash, not an mtime, and a fixed hash seed orders set constants the same way on
    every build, so the image stays reproducible.
    """
    if not os.path.lexists(root / IMAGE_PYTHON.lstrip("/")):
        return False
    done = run_in_root(root, [IMAGE_PYTHON, "-m", "compileall", "-q", "--invalidation-mode",
                              "unchecked-hash", INIT_PACKAGE], env=_CLEAN_PYTHON_ENV)
    if not done.ok:
        raise UserError(f"compiling monoimage-init with the image's python failed "
                        f"(exit {done.exit_code}):\n{tail(done.output, 15)}")
    return True


def write_file(root: Path, path: str, text: str, mode: int) -> None:
    """Write `text` at the image path `path` under `root` (resolved inside it), parents made,
    with `mode`."""
    write_text(root, path, text, mode, where=f"the image's {path}")
