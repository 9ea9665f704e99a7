"""The run profile: one ContainerSpec per recipe, and the podman arguments it becomes.

`edge_recipe()` is shared with the host and boot tests (imported from here).
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import monoimage
from monoimage.errors import UserError
from monoimage.image import HEALTH_CMD as HEALTH_ARGV
from monoimage.plan.run_profile import (
    INIT_CAPABILITIES,
    ULIMITS,
    container_spec,
    podman_run_args,
    podman_run_options,
    rewrite_registry,
    split_domain,
    volume_name,
)
from monoimage.recipe.model import Distro, Port, Probe, Recipe, Runtime, Service
from monoimage.recipe.versions import Family

CONTAINERS_CONF = Path(monoimage.__file__).parent / "data" / "containers.conf"
HEALTH_CMD = " ".join(HEALTH_ARGV)


def edge_recipe(name: str = "edge-lite", site: tuple[tuple[str, str], ...] = (
        ("domain", "test"), ("redis_password", "change-me"))) -> Recipe:
    """Three services with ports (tcp and udp on one number), state volumes, capabilities and
    different stop timeouts: enough to see every part of a ContainerSpec."""
    services = (
        Service(name="dnsmasq", source="dnsmasq.yaml", argv=("dnsmasq", "-k"),
                ports=(Port(53, "udp"), Port(53, "tcp")),
                ready=Probe(kind="tcp", port=53, timeout=20),
                capabilities=("NET_BIND_SERVICE", "NET_RAW")),
        Service(name="redis", source="redis.yaml", argv=("redis-server",), ports=(Port(6379),),
                ready=Probe(kind="tcp", port=6379, timeout=15), stop_timeout=20,
                volumes=("/var/lib/redis",), user="redis"),
        Service(name="chrony", source="chrony.yaml", argv=("chronyd", "-d"),
                ports=(Port(123, "udp"),),
                ready=Probe(kind="unix", path="/run/chrony/chronyd.sock", timeout=10),
                stop_timeout=5, volumes=("/var/lib/chrony",),
                capabilities=("CAP_NET_BIND_SERVICE",)),
    )
    return Recipe(name=name, tag="latest", source=f"recipes/{name}.yaml",
                  digest="sha256:" + "ab" * 32,
                  distro=Distro(name="debian", release="bookworm", packager=Family.APT),
                  services=services, site=site,
                  runtime=Runtime(memory="512m", pids_limit=1024, read_only=True))


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def test_small_host_spec_is_read_only_limited_and_capped():
    spec = container_spec(edge_recipe())
    assert spec.image == "localhost/edge-lite:latest"
    assert spec.read_only
    assert [(t.path, t.mode) for t in spec.tmpfs] == [("/run", 0o755), ("/tmp", 0o1777)]
    assert (spec.memory, spec.pids_limit) == ("512m", 1024)
    assert spec.cap_drop_all
    # The services' own, and what the init needs to run them as their users: always added.
    assert spec.cap_add == ("CAP_CHOWN", "CAP_FOWNER", "CAP_KILL", "CAP_NET_BIND_SERVICE",
                            "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID")
    assert INIT_CAPABILITIES == ("CHOWN", "FOWNER", "KILL", "SETGID", "SETUID")


def test_ports_are_published_on_their_own_numbers_tcp_and_udp_apart():
    spec = container_spec(edge_recipe())
    assert [p.option for p in spec.ports] == ["53:53/tcp", "53:53/udp", "123:123/udp",
                                              "6379:6379/tcp"]


def test_boot_ports_go_to_random_loopback_ports():
    spec = container_spec(edge_recipe(), host_ip="127.0.0.1", random_host_ports=True)
    assert [p.option for p in spec.ports][:2] == ["127.0.0.1::53/tcp", "127.0.0.1::53/udp"]


def test_state_volumes_are_named_for_hosts_and_anonymous_for_a_test_boot():
    named = container_spec(edge_recipe())
    assert [v.option for v in named.volumes] == [
        "edge-lite-var-lib-chrony:/var/lib/chrony", "edge-lite-var-lib-redis:/var/lib/redis"]
    ephemeral = container_spec(edge_recipe(), ephemeral=True)
    assert [v.option for v in ephemeral.volumes] == ["/var/lib/chrony", "/var/lib/redis"]


def test_stop_timeout_covers_the_slowest_service_plus_a_margin():
    spec = container_spec(edge_recipe())
    assert spec.stop_timeout == 25          # redis: 20 s, + 5
    assert spec.systemd_stop_timeout == 85  # podman generate systemd's +60


def test_stop_timeout_follows_the_longest_chain_of_dependents():
    """The init stops a service only after its dependents exited: timeouts add up a chain."""
    recipe = edge_recipe()
    dnsmasq, redis, chrony = recipe.services
    chained = replace(recipe, services=(
        dnsmasq, replace(redis, depends_on=("dnsmasq",)),
        replace(chrony, depends_on=("redis",))))
    assert container_spec(chained).stop_timeout == 10 + 20 + 5 + 5


def test_health_check_is_monoimage_init_health_with_time_for_every_probe():
    health = container_spec(edge_recipe()).health
    assert health.cmd == HEALTH_CMD == "/usr/bin/monoimage-init health"
    assert health.start_period == 45        # 20 + 15 + 10: services start in order
    assert (health.retries, health.on_failure) == (3, "kill")


def test_default_profile_keeps_podman_defaults_but_not_ports_or_health():
    spec = container_spec(edge_recipe(), profile="default")
    assert not spec.read_only and not spec.cap_drop_all and spec.cap_add == ()
    assert spec.memory is None and spec.pids_limit is None
    assert len(spec.ports) == 4 and spec.health.cmd == HEALTH_CMD


def test_unknown_profile_is_a_user_error():
    with pytest.raises(UserError, match="unknown profile 'tiny'"):
        container_spec(edge_recipe(), profile="tiny")  # type: ignore[arg-type]


def test_run_args_end_with_the_image_and_pair_every_option():
    spec = container_spec(edge_recipe(), image="registry.example:5000/edge-lite:1")
    args = podman_run_args(spec)
    assert args[-1] == "registry.example:5000/edge-lite:1"
    assert args[:-1] == [a for option in podman_run_options(spec) for a in option]
    options = podman_run_options(spec)
    assert ("--read-only",) in options and ("--read-only-tmpfs=false",) in options
    assert ("--cap-drop", "all") in options
    assert ("--memory", "512m") in options and ("--pids-limit", "1024") in options
    assert ("--stop-timeout", "25") in options
    assert ("--health-cmd", "/usr/bin/monoimage-init health") in options


def test_ulimits_match_the_projects_containers_conf():
    """Both carry this host's quirk; a drift would make boot and host artefacts disagree."""
    conf = tomllib.loads(CONTAINERS_CONF.read_text())
    assert conf["containers"]["default_ulimits"] == [f"{n}={s}:{h}" for n, s, h in ULIMITS]


@pytest.mark.parametrize(("image", "registry", "expected"), [
    ("localhost/edge-lite:latest", "registry.example:5000", "registry.example:5000/edge-lite:latest"),
    ("localhost/edge-lite:latest", "registry.example/edge/", "registry.example/edge/edge-lite:latest"),
    ("edge-lite:1", "registry.example", "registry.example/edge-lite:1"),
    ("old.example/team/edge-lite:1", "new.example", "new.example/team/edge-lite:1"),
])
def test_registry_rewrite_keeps_the_path_and_tag(image, registry, expected):
    assert rewrite_registry(image, registry) == expected


@pytest.mark.parametrize("registry", ["", "https://registry.example", "a b"])
def test_bad_registry_is_a_user_error(registry):
    with pytest.raises(UserError, match="--registry"):
        rewrite_registry("localhost/x:1", registry)


def test_split_domain_knows_localhost_ports_and_dots():
    assert split_domain("localhost/x:1") == ("localhost", "x:1")
    assert split_domain("reg:5000/x") == ("reg:5000", "x")
    assert split_domain("team/x") == (None, "team/x")


def test_volume_names_are_podman_safe():
    assert volume_name("edge-lite", "/var/lib/my state") == "edge-lite-var-lib-my-state"


# --- podman itself reads the arguments --------------------------------------------------------

@pytest.fixture(scope="module")
def scratch_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A one-file image: enough for `podman create` (nothing runs in it)."""
    root = tmp_path_factory.mktemp("scratch")
    (root / "hello").write_text("hello\n")
    archive = root / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(root / "hello", arcname="hello")
    ref = f"localhost/monoimage-test-scratch:{uuid.uuid4().hex[:8]}"
    subprocess.run(["podman", "import", "--quiet", "--change",
                    'ENTRYPOINT ["/usr/bin/monoimage-init", "run"]', str(archive), ref], check=True,
                   env=podman_env(), capture_output=True)
    yield ref
    subprocess.run(["podman", "rmi", "--force", ref], check=False, env=podman_env(),
                   capture_output=True)


@pytest.mark.tools
def test_podman_creates_the_container_the_spec_describes(scratch_image):
    name = f"monoimage-test-spec-{uuid.uuid4().hex[:8]}"
    spec = container_spec(edge_recipe(), image=scratch_image, name=name)
    env = podman_env()
    try:
        subprocess.run(["podman", "create", *podman_run_args(spec)], check=True, env=env,
                       capture_output=True, text=True)
        inspect = json.loads(subprocess.run(["podman", "container", "inspect", name],
                                            check=True, env=env, capture_output=True,
                                            text=True).stdout)[0]
    finally:
        subprocess.run(["podman", "rm", "--force", "--volumes", name], check=False, env=env,
                       capture_output=True)
        subprocess.run(["podman", "volume", "rm", "--force",
                        *(v.name for v in spec.volumes if v.name)], check=False, env=env,
                       capture_output=True)
    host = inspect["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert sorted(host["Tmpfs"]) == ["/run", "/tmp"]      # not /var/tmp: read-only-tmpfs off
    assert "size=64m" in host["Tmpfs"]["/run"] and "mode=1777" in host["Tmpfs"]["/tmp"]
    assert host["Memory"] == 512 * 1024 * 1024
    assert host["PidsLimit"] == 1024
    assert sorted(inspect["EffectiveCaps"]) == list(spec.cap_add)   # nothing else
    assert set(host["PortBindings"]) == {"53/tcp", "53/udp", "123/udp", "6379/tcp"}
    assert {(u["Name"], u["Soft"]) for u in host["Ulimits"]} == {
        ("RLIMIT_NOFILE", 16384), ("RLIMIT_NPROC", 8192)}
    config = inspect["Config"]
    assert config["StopTimeout"] == 25
    assert config["Healthcheck"]["Test"] == ["CMD-SHELL", HEALTH_CMD]
    assert config["HealthcheckOnFailureAction"] == "kill"
    mounts = {m["Destination"]: m["Name"] for m in inspect["Mounts"]}
    assert mounts == {"/var/lib/chrony": f"{name}-var-lib-chrony",
                      "/var/lib/redis": f"{name}-var-lib-redis"}


def test_health_command_is_the_one_the_build_records():
    """The build carries the health command as a label (OCI has no HEALTHCHECK)."""
    from monoimage.pipeline.build import BuildOptions, image_config
    labels = dict(image_config(edge_recipe(), BuildOptions(), "sha256:m").labels)
    assert labels["io.monoimage.health-cmd"] == HEALTH_CMD
