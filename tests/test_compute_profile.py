"""The host integration of `runtime:` (host namespaces, devices, host mounts, sysctls,
privileged): refused when unsafe, written into the labels and read back, and turned into the
same grants by `podman run`, Quadlet, the plain unit and Ignition from one ContainerSpec."""

from __future__ import annotations

import base64
import json
import shlex
import shutil
import subprocess
import urllib.parse
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from monoimage.cli import main
from monoimage.errors import RecipeError, UserError
from monoimage.hosts.ignition import host_bundle
from monoimage.hosts.quadlet import QUADLET_KEY_SINCE, render_quadlet
from monoimage.hosts.spec import host_spec
from monoimage.hosts.systemd import systemd_run_command
from monoimage.init.table import parse_table
from monoimage.pipeline.boot import boot_spec, check_needs
from monoimage.plan.image_config import golden_image_config
from monoimage.plan.image_facts import runtime_from_labels
from monoimage.plan.run_profile import (
    container_spec,
    podman_run_args,
    podman_run_options,
    unmet_needs,
)
from monoimage.plan.service_table import service_table_text
from monoimage.recipe.load import load_recipe
from monoimage.recipe.model import HostMount, Runtime
from recipe_files import write_recipe
from test_hosts import TARGETS, quadlet_options, unit_sections
from test_runprofile import edge_recipe, podman_env, scratch_image  # noqa: F401 (a fixture)

RECIPES = Path(__file__).parent.parent / "recipes"
HOST_FLAGS = ("--network", "--pid", "--ipc", "--privileged", "--device", "--sysctl")
# The Quadlet keys of the host integration -> the podman option podman-systemd.unit(5) says
# each becomes (test_hosts.quadlet_options knows the others).
HOST_KEY_OPTION = {"Network": "--network", "AddDevice": "--device", "Sysctl": "--sysctl"}

COMPUTE = Runtime(memory="8g", pids_limit=8192, read_only=True, network="host",
                  devices=("/dev/kvm", "/dev/net/tun"),
                  host_mounts=(HostMount("/lib/modules", "/lib/modules", True),
                               HostMount("/srv/iscsi", "/etc/iscsi", False)))


def compute_recipe(runtime: Runtime = COMPUTE):
    return replace(edge_recipe("edge-compute"), runtime=runtime)


def host_flags(args: list[str]) -> list[str]:
    return [a for a in args if a in HOST_FLAGS]


# --- the recipes ---------------------------------------------------------------------------

def test_edge_lite_asks_for_no_host_integration_and_gets_none():
    recipe = load_recipe(RECIPES / "edge-lite.yaml")
    assert recipe.runtime.grants == ()
    for profile in ("small-host", "default"):
        args = podman_run_args(container_spec(recipe, profile=profile))  # type: ignore[arg-type]
        assert host_flags(args) == []
        assert "--privileged" not in args
    assert not any(k.startswith("io.monoimage.runtime.") and k.rsplit(".", 1)[1] not in
                   ("memory", "pids-limit", "read-only")
                   for k, _ in golden_image_config(recipe, manifest_digest="sha256:m",
                                                   source_date_epoch=0).labels)


def test_edge_compute_shares_the_host_network_and_its_devices():
    recipe = load_recipe(RECIPES / "edge-compute.yaml")
    assert recipe.runtime.grants == ("network=host", "device=/dev/kvm", "device=/dev/net/tun")
    spec = container_spec(recipe)
    assert spec.ports == ()             # the host's own ports: nothing to publish
    assert spec.cap_drop_all and not spec.privileged   # a capability list does
    assert host_flags(podman_run_args(spec)) == ["--network", "--device", "--device"]


# --- the spec and what podman gets ---------------------------------------------------------

def test_compute_spec_becomes_podman_options():
    options = podman_run_options(container_spec(compute_recipe()))
    assert ("--network", "host") in options
    assert [o for o in options if o[0] == "--device"] == [("--device", "/dev/kvm"),
                                                         ("--device", "/dev/net/tun")]
    volumes = [o[1] for o in options if o[0] == "--volume"]
    assert "/lib/modules:/lib/modules:ro" in volumes and "/srv/iscsi:/etc/iscsi" in volumes
    assert not any(o[0] == "--publish" for o in options)
    assert ("--cap-drop", "all") in options


def test_privileged_replaces_the_capability_list_and_namespaces_follow_the_recipe():
    runtime = replace(COMPUTE, privileged=True, pid="host", ipc="host", network="private",
                      sysctls=(("net.ipv4.ip_forward", "1"),))
    spec = container_spec(compute_recipe(runtime), random_host_ports=True)
    args = podman_run_args(spec)
    assert "--privileged" in args and "--cap-drop" not in args and "--cap-add" not in args
    assert host_flags(args) == ["--pid", "--ipc", "--privileged", "--device", "--device",
                                "--sysctl"]
    assert args[args.index("--sysctl") + 1] == "net.ipv4.ip_forward=1"
    assert any(o[0] == "--publish" for o in podman_run_options(spec))   # its own network


def compute_quadlet_options(text: str) -> tuple[Counter[tuple[str, ...]], str]:
    """test_hosts.quadlet_options, and the host integration's keys."""
    extra: Counter[tuple[str, ...]] = Counter()
    kept = []
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key in HOST_KEY_OPTION:
            for item in value.split() if key == "Sysctl" else [value]:
                extra[(HOST_KEY_OPTION[key], item)] += 1
        else:
            kept.append(line)
    options, image = quadlet_options("\n".join(kept) + "\n")
    return options + extra, image


SPECS = {
    "host-network": COMPUTE,
    "privileged": replace(COMPUTE, privileged=True, pid="host", ipc="host",
                          sysctls=(("kernel.shmmax", "68719476736"),)),
    "sysctl-with-space": replace(COMPUTE, network="private",
                                 sysctls=(("net.ipv4.ping_group_range", "0 2147483647"),
                                          ("net.ipv4.ip_forward", "1"))),
}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("which", sorted(SPECS))
def test_quadlet_grants_exactly_what_podman_run_gets(target, which):
    recipe = compute_recipe(SPECS[which])
    spec = host_spec(recipe)
    text = render_quadlet(spec, recipe, target)
    keys = {key for key, _ in unit_sections(text)["Container"]}
    assert all(QUADLET_KEY_SINCE[key] <= target for key in keys)
    assert "Network" in keys or SPECS[which].network == "private"
    options, image = compute_quadlet_options(text)
    assert image == spec.image
    assert options == Counter(podman_run_options(spec))


def test_plain_unit_and_ignition_carry_the_same_grants():
    recipe = compute_recipe(SPECS["privileged"])
    spec = host_spec(recipe)
    command = systemd_run_command(spec)
    assert host_flags(command) == host_flags(podman_run_args(spec))
    bundle = host_bundle(spec, recipe)
    quadlets = [f.content for f in bundle.files if f.path.endswith(".container")]
    assert quadlets == [render_quadlet(spec, recipe)]
    unit = next(u.content for u in bundle.units if u.content)
    exec_start = dict(unit_sections(unit)["Service"])["ExecStart"]
    assert host_flags(shlex.split(exec_start)) == host_flags(podman_run_args(spec))


# --- labels --------------------------------------------------------------------------------

@pytest.mark.parametrize("which", sorted(SPECS))
def test_the_host_integration_round_trips_through_the_labels(which):
    runtime = replace(SPECS[which], sysctls=tuple(sorted(SPECS[which].sysctls)))
    labels = dict(golden_image_config(compute_recipe(runtime), manifest_digest="sha256:m",
                                      source_date_epoch=0).labels)
    assert runtime_from_labels(labels) == runtime


def test_an_image_without_host_labels_runs_with_no_host_integration():
    assert runtime_from_labels({}).grants == ()


# --- bad recipes ---------------------------------------------------------------------------

def runtime_recipe(root: Path, runtime: str) -> Path:
    image = ("image:\n  name: test-image\ndistro:\n  name: debian\n  release: bookworm\n"
             "  packager: apt\nservices:\n  - alpha\nruntime:\n" + runtime)
    return write_recipe(root, {"alpha": "name: alpha\nrun:\n  argv: [/usr/bin/alpha]\n"},
                        image=image)


@pytest.mark.parametrize(("runtime", "line", "says"), [
    ("  network: bridge\n", 10, "must be one of private, host"),
    ("  devices: [/dev/kvm, kvm]\n", 10, "must be an absolute path"),
    ("  devices: [/etc/passwd]\n", 10, "is not a device"),
    ("  devices: [/dev/../etc/shadow]\n", 10, "not a normal path"),
    ("  devices:\n    - /dev/kvm\n    - /dev/kvm\n", 12, "listed twice"),
    ("  devices: [\"/dev/kvm:rwm\"]\n", 10, "contains ':'"),
    ("  devices: [\"/dev/kv\\x1bm\"]\n", 10, "U+001B"),
    ("  host_mounts:\n    - source: /\n", 11, "gives the container the host itself"),
    ("  host_mounts:\n    - source: /var/run/docker.sock\n", 11, "the host itself"),
    ("  host_mounts:\n    - source: /etc\n", 11, "the host itself"),
    ("  host_mounts:\n    - source: /proc/sys\n", 11, "the host itself"),
    ("  host_mounts:\n    - source: /srv/data\n      target: /usr\n", 12,
     "would hide the image's own /usr"),
    ("  host_mounts:\n    - source: /run/secrets\n", 11, "would hide"),
    ("  host_mounts:\n    - source: /srv/a b\n", 11, "contains ' '"),
    ("  host_mounts:\n    - source: srv\n", 11, "must be an absolute path"),
    ("  host_mounts:\n    - source: /srv/x\n      mode: rw\n", 12, "unknown key"),
    ("  host_mounts:\n    - source: /srv/x\n      read_only: \"no\"\n", 12, "true or false"),
    (("  host_mounts:\n    - source: /srv/x\n      target: /opt/x\n    - source: /srv/y\n"
      "      target: /opt/x\n"), 14, "mounted twice"),
    ("  sysctls:\n    kernel.panic: 1\n", 11, "would change the host"),
    ("  sysctls:\n    vm.swappiness: 10\n", 11, "not kept per container"),
    ("  network: host\n  sysctls:\n    net.ipv4.ip_forward: 1\n", 12,
     "the host's own network"),
    ("  ipc: host\n  sysctls:\n    kernel.shmmax: 1\n", 12, "the host's own IPC"),
    ("  sysctls:\n    \"net.ipv4.ip_forward=1\": 1\n", 11, "not a sysctl name"),
    ("  sysctls:\n    net.ipv4.ip_forward: true\n", 11, "string or a whole number"),
    ("  privileged: yes please\n", 10, "true or false"),
    ("  pid: hostt\n", 10, "must be one of private, host"),
])
def test_bad_host_integration_is_refused_at_its_line(tmp_path, runtime, line, says):
    path = runtime_recipe(tmp_path, runtime)
    assert_refused(path, path, line, says)


def assert_refused(recipe: Path, where: Path, line: int, says: str) -> None:
    """Loading `recipe` fails with one line that starts `WHERE:LINE:` and says `says`."""
    with pytest.raises(RecipeError) as caught:
        load_recipe(recipe)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{where}:{line}:"), message
    assert says in message


def test_good_host_integration_is_read_as_written(tmp_path):
    path = runtime_recipe(tmp_path, "  network: host\n  pid: host\n  devices: [/dev/kvm]\n"
                                    "  host_mounts:\n    - source: /lib/modules\n"
                                    "    - source: /srv/iscsi\n      target: /etc/iscsi\n"
                                    "      read_only: false\n"
                                    "  sysctls:\n    kernel.shmmax: 4096\n")
    runtime = load_recipe(path).runtime
    assert runtime.grants == ("network=host", "pid=host", "device=/dev/kvm",
                              "mount=/lib/modules:/lib/modules:ro",
                              "mount=/srv/iscsi:/etc/iscsi:rw", "sysctl=kernel.shmmax=4096")


# --- podman itself reads the arguments ------------------------------------------------------

def test_podman_creates_the_container_with_the_grants(scratch_image, tmp_path):  # noqa: F811
    """`podman create` (nothing runs) of a compute spec, sysctl included: what podman
    records is the grant."""
    (tmp_path / "modules").mkdir()
    (tmp_path / "iscsi").mkdir()
    runtime = replace(COMPUTE, network="private",
                      host_mounts=(HostMount(str(tmp_path / "modules"), "/lib/modules", True),
                                   HostMount(str(tmp_path / "iscsi"), "/etc/iscsi", False)),
                      devices=("/dev/net/tun",), sysctls=(("net.ipv4.ip_forward", "1"),))
    name = f"monoimage-test-compute-{uuid.uuid4().hex[:8]}"
    inspects = {}
    env = podman_env()
    for which, rt in (("private", runtime), ("host", replace(runtime, network="host",
                                                              sysctls=()))):
        spec = container_spec(compute_recipe(rt), image=scratch_image, name=f"{name}-{which}",
                              ephemeral=True, random_host_ports=True, host_ip="127.0.0.1")
        try:
            subprocess.run(["podman", "create", *podman_run_args(spec)], check=True, env=env,
                           capture_output=True, text=True)
            inspects[which] = json.loads(subprocess.run(
                ["podman", "container", "inspect", spec.name], check=True, env=env,
                capture_output=True, text=True).stdout)[0]
        finally:
            subprocess.run(["podman", "rm", "--force", "--volumes", spec.name], check=False,
                           env=env, capture_output=True)
    host = inspects["private"]["HostConfig"]   # (podman 4.3's inspect shows no sysctls)
    assert [d["PathOnHost"] for d in host["Devices"]] == ["/dev/net/tun"]
    assert host["Privileged"] is False
    binds = {m["Destination"]: m for m in inspects["private"]["Mounts"] if m["Type"] == "bind"}
    assert binds["/lib/modules"]["RW"] is False and binds["/etc/iscsi"]["RW"] is True
    assert binds["/lib/modules"]["Source"] == str(tmp_path / "modules")
    assert inspects["host"]["HostConfig"]["NetworkMode"] == "host"
    assert inspects["host"]["HostConfig"]["PortBindings"] in ({}, None)


# --- a service's condition -----------------------------------------------------------------

def condition_recipe(root: Path, condition: str) -> Path:
    service = "name: alpha\nrun:\n  argv: [/usr/bin/alpha]\n" + condition
    return write_recipe(root, {"alpha": service})


def test_a_condition_goes_into_the_table_and_only_when_there_is_one(tmp_path):
    path = condition_recipe(tmp_path, "condition:\n  path_exists: [/sys/class/iscsi_transport]\n")
    recipe = load_recipe(path)
    assert recipe.services[0].condition == ("/sys/class/iscsi_transport",)
    text = service_table_text(recipe)
    assert parse_table(text).services[0].condition == ("/sys/class/iscsi_transport",)
    plain = replace(recipe, services=(replace(recipe.services[0], condition=()),))
    assert "condition" not in service_table_text(plain)


@pytest.mark.parametrize(("condition", "line", "says"), [
    ("condition:\n  path_exists: [sys/class]\n", 5, "must be an absolute path"),
    ("condition:\n  path_exists: [/sys/../etc]\n", 5, "not a normal path"),
    ("condition:\n  paths: [/sys/class]\n", 5, "unknown key"),
    ("condition: /sys/class\n", 4, "must be a mapping"),
])
def test_a_bad_condition_is_refused_at_its_line(tmp_path, condition, line, says):
    path = condition_recipe(tmp_path, condition)
    assert_refused(path, tmp_path / "services" / "alpha.yaml", line, says)


# --- what a service needs from its host ----------------------------------------------------

NEEDY = "name: alpha\nrun:\n  argv: [/usr/bin/alpha]\nneeds:\n{needs}"


def needs_recipe(root: Path, needs: str, runtime: str) -> Path:
    image = ("image:\n  name: test-image\ndistro:\n  name: debian\n  release: bookworm\n"
             "  packager: apt\nservices:\n  - alpha\nruntime:\n" + runtime)
    return write_recipe(root, {"alpha": NEEDY.format(needs=needs)}, image=image)


def test_a_service_gets_what_it_needs_from_the_images_runtime(tmp_path):
    path = needs_recipe(tmp_path, "  network: host\n  devices: [/dev/kvm]\n",
                        "  network: host\n  devices: [/dev/kvm, /dev/net/tun]\n")
    assert load_recipe(path).services[0].needs == ("network=host", "device=/dev/kvm")


@pytest.mark.parametrize(("needs", "runtime", "line", "says"), [
    ("  network: host\n", "  devices: [/dev/kvm]\n", 5,
     "alpha needs network=host, which the runtime of"),
    ("  devices: [/dev/kvm]\n", "  network: host\n", 5,
     "alpha needs device=/dev/kvm, which the runtime of"),
    ("  privileged: true\n", "  network: host\n", 5, "alpha needs privileged"),
    ("  network: bridge\n", "  network: host\n", 5, "needs `network: host` or nothing"),
    ("  devices: [dev/kvm]\n", "  network: host\n", 5, "must be an absolute path"),
])
def test_a_need_the_runtime_does_not_grant_is_refused_naming_both(tmp_path, needs, runtime,
                                                                 line, says):
    path = needs_recipe(tmp_path, needs, runtime)
    assert_refused(path, tmp_path / "services" / "alpha.yaml", line, says)


def test_edge_computes_services_need_only_what_its_runtime_grants():
    recipe = load_recipe(RECIPES / "edge-compute.yaml")
    needs = {s.name: s.needs for s in recipe.services if s.needs}
    assert needs == {"iscsid": ("network=host",), "nova-libvirt": ("device=/dev/kvm",),
                     "openvswitch-vswitchd": ("device=/dev/net/tun",)}


# --- boot's own check, and the artefacts beside the spec boot runs -------------------------

def test_boot_names_the_service_whose_need_the_profile_does_not_grant():
    """A recipe value that bypassed the load check (or an image whose labels lost a grant):
    boot refuses before podman runs, naming the service and the grant."""
    recipe = load_recipe(RECIPES / "edge-compute.yaml")
    bare = replace(recipe, runtime=replace(recipe.runtime, network="private"))
    spec = boot_spec(bare, image="localhost/x:y", name="x", profile="small-host")
    assert unmet_needs(bare, spec) == (("iscsid", "network=host"),)
    with pytest.raises(UserError) as refused:
        check_needs(bare, spec)
    assert str(refused.value) == ("localhost/x:y: iscsid needs network=host, which the run "
                                  "profile small-host does not grant: give it in the recipe's "
                                  "runtime: (runtime.network: host)")
    no_kvm = replace(recipe, runtime=replace(recipe.runtime, devices=("/dev/net/tun",)))
    spec = boot_spec(no_kvm, image="localhost/x:y", name="x", profile="default")
    assert unmet_needs(no_kvm, spec) == (("nova-libvirt", "device=/dev/kvm"),)
    check_needs(recipe, boot_spec(recipe, image="i", name="x", profile="small-host"))


def test_the_needs_travel_in_the_table_and_come_back_from_the_image():
    recipe = load_recipe(RECIPES / "edge-compute.yaml")
    table = parse_table(service_table_text(recipe), "services.py")
    assert {s.name: s.needs for s in table.services if s.needs} == {
        s.name: s.needs for s in recipe.services if s.needs}
    lite = load_recipe(RECIPES / "edge-lite.yaml")
    assert "needs" not in service_table_text(lite)     # edge-lite's table stays as it was


GRANT_FLAGS = (*HOST_FLAGS, "--cap-drop", "--cap-add")


def grant_options(options: Counter[tuple[str, ...]]) -> Counter[tuple[str, ...]]:
    """The options that grant something of the host: namespaces, devices, capabilities,
    sysctls, and volumes whose source is a host path."""
    return Counter({o: n for o, n in options.items()
                    if o[0] in GRANT_FLAGS or (o[0] == "--volume" and o[1].startswith("/")
                                               and ":" in o[1])})


def argv_options(argv: list[str]) -> Counter[tuple[str, ...]]:
    options: Counter[tuple[str, ...]] = Counter()
    for i, arg in enumerate(argv):
        if arg == "--privileged":
            options[(arg,)] += 1
        elif arg in (*GRANT_FLAGS, "--volume") and i + 1 < len(argv):
            options[(arg, argv[i + 1])] += 1
    return options


@pytest.mark.tools
@pytest.mark.parametrize("which", ["recipe", "with-host-mounts"])
def test_host_artefacts_carry_the_grants_of_the_spec_boot_runs(tmp_path, which):
    """`monoimage host --format all` (Quadlet, plain unit, Ignition) against the spec that
    `boot` hands podman for the same recipe: the same grants, option for option."""
    path = RECIPES / "edge-compute.yaml"
    if which == "with-host-mounts":   # the TLS certificates of docs/boot.md, and more grants
        text = path.read_text().replace("  network: host\n", "  network: host\n  host_mounts:\n"
                                        "    - {source: /srv/pki, target: /etc/pki, "
                                        "read_only: true}\n  pid: host\n")
        path = tmp_path / "edge-compute.yaml"
        path.write_text(text)
        shutil.copytree(RECIPES / "services", tmp_path / "services")
    recipe = load_recipe(path)
    booted = grant_options(Counter(podman_run_options(
        boot_spec(recipe, image=recipe.reference, name="edge-compute", profile="small-host"))))
    assert ("--network", "host") in booted and ("--device", "/dev/kvm") in booted
    assert (("--volume", "/srv/pki:/etc/pki:ro") in booted) == (which != "recipe")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["host", str(path), "--format", "all", "-o", str(out)])
    assert result.exit_code == 0, result.output
    quadlet = (out / "edge-compute.container").read_text()
    assert grant_options(compute_quadlet_options(quadlet)[0]) == booted
    unit = (out / "edge-compute-podman.service").read_text()
    exec_start = dict(unit_sections(unit)["Service"])["ExecStart"]
    assert grant_options(argv_options(shlex.split(exec_start))) == booted
    ignition = json.loads((out / "edge-compute.ign").read_text())
    sources = [f["contents"]["source"] for f in ignition["storage"]["files"]
               if f["path"].endswith(".container")]
    assert [data_url_text(s) for s in sources] == [quadlet]


def data_url_text(url: str) -> str:
    head, _, data = url.partition(",")
    return (base64.b64decode(data) if head.endswith(";base64") else
            urllib.parse.unquote_to_bytes(data)).decode()
