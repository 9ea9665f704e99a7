"""apt inside a layered comparator's child: `apt-get install` on top of its base, as Kolla does.

A child is `FROM` its base: a working container over the base image in which the service's own
pins are installed on top of it. `apt-get install name=version…` runs inside the container
(`buildah run`), with the private APT root's lists and sources and this install's .deb cache
bind-mounted in, and `--no-download` (every .deb is fetched on the host first), so a child build
neither updates lists nor touches the network. An apt preferences file pins every package of
the closure to its resolved version, so apt never moves a base package to a newer candidate
(day 1 of a real update runs an older libssl3 than the sources offer).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from monoimage.errors import UserError
from monoimage.plan.resolution import ResolvedPackage
from monoimage.recipe.model import Recipe
from monoimage.tools import buildah
from monoimage.tools.in_root import writable_path
from monoimage.tools.packagers.apt import AptRoot
from monoimage.tools.packagers.cache import deb_file_name
from monoimage.tools.run import tail

# Where a child's apt sees the host-side APT state while it installs (removed before commit).
APT_MOUNTS = "/run/monoimage-apt"


def install_in_container(recipe: Recipe, apt_root: AptRoot, container: str, root: Path,
                         packages: Sequence[ResolvedPackage], archives: Path, *,
                         source_date_epoch: int, pins: Sequence[ResolvedPackage] = ()) -> None:
    """`apt-get install name=version…` inside the container, offline, from host-side state.

    `archives` is this install's private .deb cache (cache.py): what it lacks is fetched
    on the host first, and it is merged back into the shared cache after the install.
    `pins`: the whole closure, held at its versions (default: `packages`).
    """
    apt_root.download([p for p in packages if not (archives / deb_file_name(p)).is_file()],
                      archives)
    with tempfile.TemporaryDirectory(prefix="monoimage-apt-pins-") as preferences:
        (Path(preferences) / "monoimage.pref").write_text(preferences_text(pins or packages))
        _install(recipe, apt_root, container, root, packages, archives, Path(preferences),
                 source_date_epoch)


def preferences_text(pins: Sequence[ResolvedPackage]) -> str:
    """apt preferences holding every package at its resolved version."""
    return "\n".join(f"Package: {p.name}\nPin: version {p.version}\nPin-Priority: 1001\n"
                     for p in pins)


def _install(recipe: Recipe, apt_root: AptRoot, container: str, root: Path,
             packages: Sequence[ResolvedPackage], archives: Path, preferences: Path,
             source_date_epoch: int) -> None:
    mounts = {"lists": (apt_root.path / "var/lib/apt/lists", "ro"),
              "sources": (apt_root.path / "etc/apt/sources.list.d", "ro"),
              "archives": (archives, "rw"), "preferences": (preferences, "ro")}
    argv = ["apt-get", "-q", "-y", "--no-download",
            "-o", f"Dir::State::Lists={APT_MOUNTS}/lists",
            "-o", "Dir::Etc::SourceList=/dev/null",
            "-o", f"Dir::Etc::SourceParts={APT_MOUNTS}/sources",
            "-o", f"Dir::Cache::Archives={APT_MOUNTS}/archives",
            "-o", f"Dir::Etc::PreferencesParts={APT_MOUNTS}/preferences",
            "-o", f"APT::Install-Recommends={'true' if recipe.distro.recommends else 'false'}",
            "-o", "Acquire::Languages=none", "-o", "Debug::NoLocking=true",
            "install", "--", *(f"{p.name}={p.version}" for p in packages)]
    env = {"DEBIAN_FRONTEND": "noninteractive", "DEBCONF_NONINTERACTIVE_SEEN": "true",
           "LC_ALL": "C.UTF-8", "SOURCE_DATE_EPOCH": str(source_date_epoch)}
    volumes = [(host_path, f"{APT_MOUNTS}/{name}", mode)
               for name, (host_path, mode) in mounts.items()]
    try:
        # buildah's own error keeps only its last line ("exit status 100"): apt's lines say
        # what went wrong, so the whole output comes back.
        done = buildah.run_in(container, argv, env=env, volumes=volumes)
    finally:
        _remove_mount_points(root)
    if not done.ok:
        output = "\n".join(line for line in (done.stdout + "\n" + done.stderr).splitlines()
                           if not line.startswith(("debconf:", "W: ")))
        raise UserError(f"apt-get install in a {recipe.name} child container failed "
                        f"(exit {done.exit_code}):\n" + tail(output, 15))
    machine_id = writable_path(root, "/etc/machine-id", "the child's /etc/machine-id",
                               follow_last=False)
    if machine_id.is_file() and not machine_id.is_symlink() and machine_id.stat().st_size:
        machine_id.write_text("")  # as mmdebstrap leaves it: empty, filled at boot


def _remove_mount_points(root: Path) -> None:
    """buildah leaves the bind mounts' (empty) mount points in the container: remove them."""
    top = writable_path(root, APT_MOUNTS, "the child's apt mount points")
    if top.is_dir():
        for sub in top.iterdir():
            if sub.is_dir() and not any(sub.iterdir()):
                sub.rmdir()
        if not any(top.iterdir()):
            top.rmdir()
