"""Copying one layer's paths out of the staged root: exactly those paths, metadata kept.

Real GNU tar on the host's file system (these run as root, as builds do); the build tests cover
the buildah side (tests/test_build_dnf.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from monoimage.errors import UserError
from monoimage.pipeline.layer_commit import root_entries
from monoimage.tools.tar import copy_paths

CAPABILITY = "security.capability"
# cap_net_raw=ep, as `setcap` writes it (VFS_CAP_REVISION_2).
NET_RAW = bytes.fromhex("0100000200200000000000000000000000000000")


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    root = tmp_path / "staged"
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/share/doc").mkdir(parents=True)
    (root / "usr/share/doc/left-out").write_text("another layer's")
    ping = root / "usr/bin/ping"
    ping.write_text("elf")
    os.chown(ping, 0, 42)  # before chmod and setxattr: a chown clears setuid and capabilities
    ping.chmod(0o4755)
    os.setxattr(ping, CAPABILITY, NET_RAW)
    os.link(ping, root / "usr/bin/ping4")
    os.symlink("ping", root / "usr/bin/ping6")
    (root / "usr/share").chmod(0o750)
    return root


@pytest.mark.tools  # GNU tar
def test_only_the_listed_paths_with_owner_mode_xattrs_and_hard_links(staged, tmp_path):
    target = tmp_path / "layer"
    target.mkdir()
    copy_paths(staged, target, ["/usr", "/usr/bin", "/usr/bin/ping", "/usr/bin/ping4",
                                "/usr/bin/ping6", "/usr/share"])
    ping = target / "usr/bin/ping"
    info = ping.stat()
    assert (info.st_mode & 0o7777, info.st_uid, info.st_gid) == (0o4755, 0, 42)
    assert os.getxattr(ping, CAPABILITY) == NET_RAW
    assert info.st_ino == (target / "usr/bin/ping4").stat().st_ino
    assert os.readlink(target / "usr/bin/ping6") == "ping"
    assert (target / "usr/share").stat().st_mode & 0o777 == 0o750
    assert not (target / "usr/share/doc").exists()  # a directory is copied, not its contents


def test_root_entries_lists_everything_without_following_symlinks(staged):
    os.symlink("/usr", staged / "host-usr")
    entries = set(root_entries(staged))
    assert {"/usr", "/usr/bin/ping", "/usr/bin/ping6", "/usr/share/doc/left-out",
            "/host-usr"} <= entries
    assert not any(e.startswith("/host-usr/") for e in entries)


@pytest.mark.tools  # GNU tar
def test_a_path_missing_from_the_staged_root_is_a_clear_error(staged, tmp_path):
    with pytest.raises(UserError, match="tar failed reading the staged root"):
        copy_paths(staged, tmp_path, ["/usr/bin/no-such-file"])
