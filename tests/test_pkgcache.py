"""The shared package cache: private copies per install, merged back under a lock.

No mmdebstrap here: its sync-out is a tar pipe into the cache folder, and these tests drive the
same GNU tar the same way (the build tests run the real mmdebstrap through `private_cache`).
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from monoimage.plan.resolution import ResolvedPackage
from monoimage.tools.packagers.cache import APT_ARCHIVES, deb_file_name, private_cache


def _tar_into(folder: Path, files: dict[str, bytes]) -> None:
    """Extract `files` into `folder` with GNU tar, as mmdebstrap's sync-out does."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    subprocess.run(["tar", "-C", str(folder), "-x"], input=buffer.getvalue(), check=True)


def _shared(cache: Path, files: dict[str, bytes]) -> Path:
    folder = cache / APT_ARCHIVES
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def test_an_install_never_writes_through_to_the_shared_files(tmp_path):
    shared = _shared(tmp_path, {"a_1_all.deb": b"shared a"})
    with private_cache(tmp_path, "b1") as private:
        archives = private / APT_ARCHIVES
        assert (archives / "a_1_all.deb").stat().st_ino == (shared / "a_1_all.deb").stat().st_ino
        _tar_into(archives, {"a_1_all.deb": b"rewritten", "n_2_all.deb": b"new n"})
        assert (shared / "a_1_all.deb").read_bytes() == b"shared a"  # tar unlinked, not wrote
    assert (shared / "a_1_all.deb").read_bytes() == b"shared a"
    assert (shared / "n_2_all.deb").read_bytes() == b"new n"  # merged back
    assert not (tmp_path / "builds" / "b1").exists()


def test_a_failed_install_merges_nothing_back(tmp_path):
    shared = _shared(tmp_path, {})
    with pytest.raises(RuntimeError), private_cache(tmp_path, "b2") as private:
        _tar_into(private / APT_ARCHIVES, {"n_2_all.deb": b"maybe broken"})
        raise RuntimeError("install failed")
    assert not list(shared.iterdir())
    assert not (tmp_path / "builds" / "b2").exists()


def test_only_the_wanted_files_are_seeded_never_partial_downloads(tmp_path):
    pkg = ResolvedPackage("libfoo", "1:2.0-1", "amd64", 1, 1)
    assert deb_file_name(pkg) == "libfoo_1%3a2.0-1_amd64.deb"
    shared = _shared(tmp_path, {deb_file_name(pkg): b"foo", "other_1_all.deb": b"other"})
    (shared / "partial").mkdir()
    (shared / "partial" / "x_1_all.deb").write_bytes(b"half")
    with private_cache(tmp_path, "b3", [deb_file_name(pkg), "absent_1_all.deb"]) as private:
        assert sorted(p.name for p in (private / APT_ARCHIVES).iterdir()) == [deb_file_name(pkg)]
        assert (private / "dnf").resolve() == (tmp_path / "dnf").resolve()


def test_concurrent_installs_each_finish_and_the_cache_holds_every_new_file(tmp_path):
    shared = _shared(tmp_path, {"base_1_all.deb": b"base"})
    errors: list[BaseException] = []

    def install(n: int) -> None:
        try:
            with private_cache(tmp_path, f"c{n}") as private:
                # Every install rewrites the same files, as sync-out does: into one shared
                # folder, this load makes tar fail with "Cannot open: File exists".
                for _ in range(20):
                    _tar_into(private / APT_ARCHIVES,
                              {"base_1_all.deb": b"base", "common_1_all.deb": b"common",
                               f"own{n}_1_all.deb": f"own {n}".encode(),
                               **{f"big{i}_1_all.deb": b"x" * 100_000 for i in range(20)}})
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=install, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(p.name for p in shared.iterdir()) == sorted([
        "base_1_all.deb", "common_1_all.deb", *(f"own{n}_1_all.deb" for n in range(4)),
        *(f"big{i}_1_all.deb" for i in range(20))])
    assert (shared / "common_1_all.deb").read_bytes() == b"common"
    assert not list((tmp_path / "builds").iterdir())
