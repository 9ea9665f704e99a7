"""Day 2 on the VM host (`boot --vm`'s Debian trixie VM, podman 5.4, Quadlet, systemd): a good
update and a broken one, both through `podman auto-update` in the VM.

1. Boot IMAGE in the VM (provisioned with its Ignition config) until every service is ready.
2. Push a new image under the same tag (IMAGE plus one small layer: a file /etc/monoimage-day2)
   and run `podman auto-update`: bytes the VM pulled, the restart, every service ready again.
3. Push a broken image under the tag (redis-server replaced by a program that exits 1: a
   critical service that never gets ready, so monoimage-init never says READY=1 and exits) and
   run `podman auto-update`: podman rolls back to the previous image by itself; every service
   ready again on it.

IMAGE must carry a monoimage-init that speaks sd_notify (the Quadlet unit is Notify=true).
Prints figures; asserts nothing. The derived images are removed at the end. Usage:
    python bench/vm_rollback.py IMAGE --recipe RECIPE [--site NAME=VALUE ...]
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from monoimage.pipeline.boot import site_values
from monoimage.pipeline.vm_boot import choose_accelerator, wait_ready
from monoimage.pipeline.vm_image import vm_image
from monoimage.pipeline.vm_session import vm_session
from monoimage.pipeline.vm_update import UpdateReport, update_in_vm
from monoimage.recipe.load import load_recipe
from monoimage.tools import buildah
from monoimage.tools.cache_dir import default_cache_dir

BROKEN = "#!/bin/sh\necho 'redis-server: this build is broken' >&2\nexit 1\n"


def derived(image: str, name: str, files: dict[str, tuple[str, int]]) -> str:
    """IMAGE plus one layer with `files` (image path → (text, mode)), tagged `name`."""
    container = buildah.from_image(f"monoimage-bench-{secrets.token_hex(3)}", image)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for path, (text, mode) in files.items():
                local = Path(scratch) / Path(path).name
                local.write_text(text)
                local.chmod(mode)
                buildah.buildah("copy", "--chmod", f"{mode:o}", container, str(local), path)
        buildah.commit(container, name, timestamp=0, squash=False)
    finally:
        buildah.remove_container(container)
    return name


def show(title: str, report: UpdateReport) -> None:
    print(f"\n{title}: podman auto-update → {report.outcome} in {report.seconds:.1f} s")
    print(f"  the VM pulled {report.pulled_bytes:,} bytes ({report.pull_requests} requests)")
    print(f"  image before {report.image_before[:12]}, after {report.image_after[:12]}")
    ready = f"{report.ready_seconds:.1f} s after auto-update began" if report.ready_seconds \
        else "NOT ready"
    print(f"  every service ready again: {ready} "
          f"({', '.join(f'{s.name} {s.state}' for s in report.services)})")
    print("  podman auto-update said:")
    for line in report.auto_update.splitlines()[-6:]:
        print(f"    {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("--recipe", required=True)
    parser.add_argument("--site", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    recipe = load_recipe(Path(args.recipe))
    values = site_values(recipe, dict(s.split("=", 1) for s in args.site), os.environ)
    tag = secrets.token_hex(3)
    good = derived(args.image, f"localhost/monoimage-bench-day2:{tag}",
                   {"/etc/monoimage-day2": (f"day 2 {tag}\n", 0o644)})
    broken = derived(args.image, f"localhost/monoimage-bench-broken:{tag}",
                     {"/usr/bin/redis-server": (BROKEN, 0o755)})
    try:
        image = vm_image(default_cache_dir())
        accelerator, why = choose_accelerator(image.kernel)
        print(f"accelerator: {why if accelerator == 'tcg' else 'KVM'}")
        began = time.monotonic()
        with vm_session(args.image, recipe, values, image, accelerator) as session:
            session.agent.wait(began + 900, session.vm.running)
            print(f"booted (guest agent) {time.monotonic() - session.started:.1f} s after QEMU")
            healthy, why_not = wait_ready(session, time.monotonic() + 1200)
            print(f"every service ready {time.monotonic() - session.started:.1f} s after "
                  f"QEMU: {healthy} {why_not}")
            first = session.proxy.take()
            print(f"first pull: {first.bytes_served:,} bytes")
            show("good update (one small layer)", update_in_vm(session, good))
            show("broken update (redis-server exits 1)", update_in_vm(session, broken))
    finally:
        for ref in (good, broken):
            buildah.remove_image(ref)


if __name__ == "__main__":
    main()
