"""The shared package cache: private copies per install, merged back under a lock.

mmdebstrap's sync-out is a tar pipe into the cache folder: the small tests drive the same GNU
tar the same way; the concurrency test runs real mmdebstrap installs side by side on one cache.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from buildsupport import write_tiny_recipe
from monoimage.pipeline.build import resolve
from monoimage.plan.resolution import ResolvedPackage
from monoimage.recipe.load import load_recipe
from monoimage.tools.cache_dir import default_cache_dir
from monoimage.tools.packagers.cache import APT_ARCHIVES, deb_file_name, private_cache
from timing import scaled

pytestmark = pytest.mark.tools


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


# One build's install, as `install_root` runs it, in its own process (as concurrent builds are).
INSTALL = """
import pickle, sys
from pathlib import Path
from monoimage.pipeline.rootfs import install_root
from monoimage.tools.packagers.apt import AptPackager
recipe, resolution, root, cache, token = pickle.loads(Path(sys.argv[1]).read_bytes())
installed = install_root(recipe, AptPackager(), resolution, root, cache_dir=cache,
                         token=token, source_date_epoch=0)
print(len(installed))
"""


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.deb")}


@pytest.mark.build
def test_concurrent_mmdebstrap_installs_each_finish_and_the_cache_holds_every_new_file(
        tmp_path: Path) -> None:
    """Two real installs of the tiny image at once on one cache that lacks a few of their
    packages: each finishes with exactly its resolution, the files already there are never
    written through, and the cache ends up with every package, no partial download and no
    private copy left."""
    recipe = load_recipe(write_tiny_recipe(tmp_path / "recipe"))
    resolution = resolve(recipe, cache_dir=default_cache_dir())
    cache = tmp_path / "cache"
    shared = cache / APT_ARCHIVES
    shared.mkdir(parents=True)
    names = sorted(deb_file_name(p) for p in resolution.packages)
    warm = default_cache_dir() / APT_ARCHIVES
    missing = {deb_file_name(resolution.package(n)) for n in ("busybox", "libc6", "bash")}
    for name in names:
        if name not in missing and (warm / name).is_file():
            shutil.copyfile(warm / name, shared / name)
    before = _digests(shared)
    installs = []
    for n in range(2):
        job = tmp_path / f"install{n}.pickle"
        job.write_bytes(pickle.dumps((recipe, resolution, tmp_path / f"root{n}", cache,
                                      f"concurrent{n}")))
        installs.append(subprocess.Popen([sys.executable, "-c", INSTALL, str(job)],
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True))
    results = [(proc.communicate(timeout=scaled(900)), proc.returncode) for proc in installs]
    for (out, err), code in results:
        assert code == 0, err[-3000:]
        assert int(out) == len(resolution.packages)
    after = _digests(shared)
    assert sorted(after) == names                    # every package, the missing ones too
    assert {k: after[k] for k in before} == before   # nothing written through
    partial = shared / "partial"
    assert not partial.exists() or not any(partial.iterdir())
    assert not list((cache / "builds").iterdir())
