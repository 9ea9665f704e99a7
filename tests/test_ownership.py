"""Path ownership from an image root's own package database (dpkg here; rpm in the dnf build
test, which reads a real rpm database)."""

from __future__ import annotations

import os
from pathlib import Path

from monoimage.recipe.versions import Family
from monoimage.tools.packagers.ownership import (
    apply_diversions,
    owned_bytes,
    parse_diversions,
    parse_rpm_files,
    read_ownership,
    resolve_dir,
)


def _dpkg_root(root: Path, lists: dict[str, list[str]], files: dict[str, str],
               diversions: str = "") -> Path:
    info = root / "var/lib/dpkg/info"
    info.mkdir(parents=True)
    for name, paths in lists.items():
        (info / f"{name}.list").write_text("".join(f"{p}\n" for p in ["/.", *paths]))
    (root / "var/lib/dpkg/diversions").write_text(diversions)
    for path, text in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


def test_merged_usr_paths_resolve_through_the_roots_own_symlinks(tmp_path):
    root = _dpkg_root(tmp_path, {"bash": ["/bin", "/bin/bash", "/usr/share/doc/bash/README"]},
                      {"/usr/bin/bash": "elf"})
    os.symlink("usr/bin", root / "bin")
    owners = read_ownership(root, Family.APT)
    assert owners["/usr/bin/bash"] == ("bash",)
    assert owners["/bin"] == ("bash",)  # the symlink itself, not what it points to
    assert "/usr/share/doc/bash/README" not in owners  # stripped: absent, left out
    listed = (root / "var/lib/dpkg/info/bash.list").stat().st_size  # its dpkg record too
    assert owned_bytes(root, owners) == {"bash": 3 + listed}


def test_an_absolute_symlink_resolves_inside_the_root_never_on_the_host(tmp_path):
    (tmp_path / "usr/lib64").mkdir(parents=True)
    os.symlink("/usr/lib64", tmp_path / "lib64")
    os.symlink("../../etc", tmp_path / "usr/lib64/etc-link")
    assert resolve_dir(tmp_path, "/lib64") == "/usr/lib64"
    assert resolve_dir(tmp_path, "/lib64/etc-link/x") == "/etc/x"
    assert resolve_dir(tmp_path, "/lib64/../../..") == "/"


def test_diverted_files_are_where_dpkg_put_them():
    diversions = parse_diversions("/bin/sh\n/bin/sh.distrib\ndash\n"
                                  "/usr/bin/tool\n/usr/bin/tool.real\n:\n")
    moved = apply_diversions([("dash", "/bin/sh"), ("bash", "/bin/sh"),
                              ("dash", "/usr/bin/tool"), ("other", "/usr/bin/x")], diversions)
    assert moved == [("dash", "/bin/sh"), ("bash", "/bin/sh.distrib"),
                     ("dash", "/usr/bin/tool.real"), ("other", "/usr/bin/x")]


def test_shared_paths_have_every_owner_and_multiarch_lists_name_the_package(tmp_path):
    root = _dpkg_root(tmp_path, {"libc6:amd64": ["/usr", "/usr/lib/libc.so.6"],
                                 "bash": ["/usr", "/usr/bin/bash"]},
                      {"/usr/lib/libc.so.6": "c", "/usr/bin/bash": "b"})
    owners = read_ownership(root, Family.APT)
    assert owners["/usr"] == ("bash", "libc6") and owners["/usr/lib/libc.so.6"] == ("libc6",)


def test_dpkg_records_and_install_time_bytecode_go_with_their_package(tmp_path):
    root = _dpkg_root(
        tmp_path, {"libperl5.36": ["/usr/lib/x.so"], "python3.11-minimal:amd64":
                   ["/usr/lib/python3.11/os.py"]},
        {"/usr/lib/x.so": "x", "/usr/lib/python3.11/os.py": "import sys\n",
         "/usr/lib/python3.11/__pycache__/os.cpython-311.pyc": "pyc",
         "/usr/lib/python3.11/__pycache__/stray.cpython-311.pyc": "no source",
         "/var/lib/dpkg/info/libperl5.36.md5sums": "sum", "/var/lib/dpkg/status": "all"})
    owners = read_ownership(root, Family.APT)
    assert owners["/var/lib/dpkg/info/libperl5.36.md5sums"] == ("libperl5.36",)
    assert owners["/var/lib/dpkg/info/python3.11-minimal:amd64.list"] == ("python3.11-minimal",)
    assert owners["/usr/lib/python3.11/__pycache__/os.cpython-311.pyc"] == ("python3.11-minimal",)
    assert owners["/usr/lib/python3.11/__pycache__"] == ("python3.11-minimal",)
    assert "/usr/lib/python3.11/__pycache__/stray.cpython-311.pyc" not in owners
    assert "/var/lib/dpkg/status" not in owners  # every package's: the metadata layer's


def test_rpm_file_lists_skip_packages_without_files_and_gpg_keys():
    text = "bash\t/usr/bin/bash\nempty\t(none)\ngpg-pubkey\t/x\nbash\t/usr/share/bash\n"
    assert parse_rpm_files(text) == [("bash", "/usr/bin/bash"), ("bash", "/usr/share/bash")]
