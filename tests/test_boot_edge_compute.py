"""End to end: build edge-compute (about 640 packages, 1 GiB, two minutes alone) once, and boot
it with its host integration (`runtime:` of the recipe: the host network, /dev/kvm,
/dev/net/tun): every service ready by a probe that means it works, or skipped because this
host lacks what its condition names (the kernel's iSCSI transport, the device mapper).

The OpenStack agents have no control plane here: they run, but do not reach a message bus.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from monoimage.pipeline.boot import boot
from monoimage.pipeline.build import BuildOptions, build
from monoimage.recipe.load import load_recipe
from monoimage.recipe.model import Recipe, Service
from test_runprofile import podman_env

pytestmark = [pytest.mark.build, pytest.mark.boot]

REPO = Path(__file__).resolve().parent.parent
EDGE_COMPUTE = Path(os.environ.get("MONOIMAGE_TEST_EDGE_COMPUTE",
                                   REPO / "recipes" / "edge-compute.yaml"))


@pytest.fixture(scope="session")
def edge_compute(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Recipe]]:
    """One build for the session, with the user's package cache (a private one would fetch a
    gigabyte of packages again)."""
    recipe = load_recipe(EDGE_COMPUTE)
    ref = f"localhost/monoimage-test-edge-compute:{uuid.uuid4().hex[:8]}"
    build(recipe, BuildOptions(tag=ref, out_dir=tmp_path_factory.mktemp("edge-compute")))
    yield ref, recipe
    subprocess.run(["podman", "rmi", "--force", ref], check=False, env=podman_env(),
                   capture_output=True)


# What Open vSwitch's userspace datapath makes on the host's network when neutron's agent sets up
# its bridges: tap devices that outlive ovs-vswitchd (OVS makes them persistent).
OVS_LINKS = ("ovs-netdev", "br-int", "br-tun", "br-ex")


def host_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], check=True, capture_output=True,
                         text=True).stdout
    return {line.split(":")[1].strip().partition("@")[0] for line in out.splitlines()}


@pytest.fixture
def ovs_links_removed() -> Iterator[None]:
    """The boot shares the host's network: remove the OVS links it made, and only those."""
    before = host_links()
    yield
    for link in sorted((host_links() - before) & set(OVS_LINKS)):
        subprocess.run(["ip", "link", "delete", link], check=False, capture_output=True)


def can_run_here(service: Service, recipe: Recipe) -> bool:
    """Whether the service's condition holds in the container on this host: a device is
    there only when the recipe hands it over."""
    def present(path: str) -> bool:
        if path.startswith("/dev/"):
            return path in recipe.runtime.devices and os.path.exists(path)
        return os.path.exists(path)
    return all(present(path) for path in service.condition)


def test_edge_compute_boots_every_service_it_can_run_here(edge_compute, ovs_links_removed):
    ref, recipe = edge_compute
    name = f"monoimage-test-compute-{uuid.uuid4().hex[:6]}"
    report = boot(ref, recipe, name=name, timeout=300)
    assert report.problems == (), "\n".join([*report.problems, report.log_tail])
    states = {s.name: s.state for s in report.services}
    expected = {s.name: "ready" if can_run_here(s, recipe) else "skipped"
                for s in recipe.services}
    assert states == expected
    skipped = [s.name for s in recipe.services if expected[s.name] == "skipped"]
    assert all(any(note.startswith(f"{n} cannot run on this host") for note in report.notes)
               for n in skipped)
    assert report.exit_code == 0 and not report.zombies
    assert [p.outcome for p in report.probes if p.port == "8022/tcp"] == ["ok"]
    leftover = subprocess.run(["podman", "ps", "--all", "--filter", f"name={name}", "--format",
                               "{{.Names}}"], check=True, env=podman_env(),
                              capture_output=True, text=True).stdout.split()
    assert leftover == []
