"""Copy exact paths between two folders with a tar pipe: owners, modes, xattrs, hard links."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from monoimage.errors import UserError
from monoimage.tools.run import finish, spawn, stop_group, tail

# File capabilities live in xattrs (security.capability); numeric owners, not the host's names.
_TAR_OPTIONS = ("--xattrs", "--xattrs-include=*", "--numeric-owner")


def copy_paths(source: Path, target: Path, paths: Sequence[str]) -> None:
    """Copy exactly `paths` (image paths, no recursion) from `source` to `target`."""
    with tempfile.TemporaryDirectory(prefix="monoimage-layer-") as work:
        listing = Path(work) / "paths"
        listing.write_bytes(b"".join(p.lstrip("/").encode(errors="surrogateescape") + b"\0"
                                     for p in paths))
        create_argv = ["tar", "--create", "--format=posix", "--file", "-", *_TAR_OPTIONS,
                       "--directory", str(source),  # positional: before the names it governs
                       "--no-recursion", "--null", "--verbatim-files-from",
                       f"--files-from={listing}"]
        extract_argv = ["tar", "--extract", "--same-owner", "--preserve-permissions",
                        *_TAR_OPTIONS, "--directory", str(target), "--file", "-"]
        create = spawn(create_argv, piped=True)
        try:
            extract = spawn(extract_argv, stdin=create)
            written = finish(extract, extract_argv, check=False)
            read = finish(create, create_argv, check=False)
        except BaseException:
            stop_group(create)
            raise
    # The reader first: when it fails the writer stops too, and the reader says why.
    for done, what in ((read, "reading the staged root"), (written, "writing the layer")):
        if not done.ok:
            raise UserError(f"tar failed {what} (exit {done.exit_code}):\n"
                            + tail(done.output, 10))
