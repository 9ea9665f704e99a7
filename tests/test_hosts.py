"""Host artefacts: checked by the real tools where they run here (ignition-validate,
systemd-analyze verify, podman), by podman's documentation where they do not (Quadlet).

Podman 4.3 on this host has no Quadlet generator (Quadlet arrived in 4.4), and Butane is not
packaged for Debian 12: the Quadlet file is checked against the key lists of
podman-systemd.unit(5) and translated to podman options with that page's table; the Butane
file is checked against the Ignition config it must translate to.
"""

from __future__ import annotations

import base64
import configparser
import json
import shlex
import shutil
import subprocess
import tomllib
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from monoimage.errors import UserError
from monoimage.hosts.artefacts import FORMATS, render_artefacts
from monoimage.hosts.ignition import (
    host_bundle,
    render_butane,
    render_ignition,
    render_mirror_conf,
    render_site_env,
)
from monoimage.hosts.quadlet import QUADLET_KEY_SINCE, render_quadlet
from monoimage.hosts.spec import PodmanVersion, host_spec, parse_podman_version, plain_unit_name
from monoimage.hosts.systemd import (
    START_TIMEOUT,
    render_systemd_unit,
    start_timeout,
    systemd_quote,
    systemd_run_command,
)
from monoimage.plan.run_profile import podman_run_options
from test_runprofile import edge_recipe

TARGETS: list[PodmanVersion] = [(4, 4), (4, 5), (4, 6), (4, 8), (5, 0), (5, 5)]

# [Container] keys of podman 4.4's Quadlet, verbatim from its quadlet.go supportedContainerKeys
# (the generator rejects a file with any other key).
CONTAINER_KEYS_4_4 = {
    "ContainerName", "Image", "Environment", "EnvironmentFile", "EnvironmentHost", "Exec",
    "NoNewPrivileges", "DropCapability", "AddCapability", "ReadOnly", "RemapUsers", "RemapUid",
    "RemapGid", "RemapUidSize", "Notify", "ExposeHostPort", "PublishPort", "User", "Group",
    "Volume", "PodmanArgs", "Label", "Annotation", "RunInit", "VolatileTmp", "Timezone",
    "SeccompProfile", "AddDevice", "Network",
}
# The [Container] table of podman-systemd.unit(5) in podman 4.5 and 4.6.
CONTAINER_KEYS_4_5 = {
    "AddCapability", "AddDevice", "Annotation", "ContainerName", "DropCapability",
    "Environment", "EnvironmentFile", "EnvironmentHost", "Exec", "ExposeHostPort", "Group",
    "HealthCmd", "HealthInterval", "HealthOnFailure", "HealthRetries", "HealthStartPeriod",
    "HealthStartupCmd", "HealthStartupInterval", "HealthStartupRetries", "HealthStartupSuccess",
    "HealthStartupTimeout", "HealthTimeout", "Image", "IP", "IP6", "Label", "LogDriver", "Mount",
    "Network", "NoNewPrivileges", "Rootfs", "Notify", "PodmanArgs", "PublishPort", "ReadOnly",
    "RunInit", "SeccompProfile", "SecurityLabelDisable", "SecurityLabelFileType",
    "SecurityLabelLevel", "SecurityLabelType", "Timezone", "Tmpfs", "User", "UserNS",
    "VolatileTmp", "Volume",
}
CONTAINER_KEYS_4_6 = CONTAINER_KEYS_4_5 | {
    "AutoUpdate", "HostName", "Pull", "SecurityLabelNested", "Sysctl", "WorkingDir"}
# The [Container] table of podman-systemd.unit(5) on podman's main branch (5.x).
CONTAINER_KEYS_5 = {
    "AddCapability", "AddDevice", "AddHost", "Annotation", "AutoUpdate", "CgroupsMode",
    "ContainerName", "ContainersConfModule", "DNS", "DNSOption", "DNSSearch", "DropCapability",
    "Entrypoint", "Environment", "EnvironmentFile", "EnvironmentHost", "Exec", "ExposeHostPort",
    "GIDMap", "GlobalArgs", "Group", "GroupAdd", "HealthCmd", "HealthInterval",
    "HealthLogDestination", "HealthMaxLogCount", "HealthMaxLogSize", "HealthOnFailure",
    "HealthRetries", "HealthStartPeriod", "HealthStartupCmd", "HealthStartupInterval",
    "HealthStartupRetries", "HealthStartupSuccess", "HealthStartupTimeout", "HealthTimeout",
    "HostName", "Image", "IP", "IP6", "Label", "LogDriver", "LogOpt", "Mask", "Memory", "Mount",
    "Network", "NetworkAlias", "NoNewPrivileges", "Notify", "PidsLimit", "Pod", "PodmanArgs",
    "PublishPort", "Pull", "ReadOnly", "ReadOnlyTmpfs", "ReloadCmd", "ReloadSignal", "Retry",
    "RetryDelay", "Rootfs", "RunInit", "SeccompProfile", "Secret", "SecurityLabelDisable",
    "SecurityLabelFileType", "SecurityLabelLevel", "SecurityLabelNested", "SecurityLabelType",
    "ShmSize", "StartWithPod", "StopSignal", "StopTimeout", "SubGIDMap", "SubUIDMap", "Sysctl",
    "Timezone", "Tmpfs", "UIDMap", "Ulimit", "Unmask", "User", "UserNS", "Volume", "WorkingDir",
}
# podman-systemd.unit(5), "Enabling unit files": the generator applies only these.
INSTALL_KEYS = {"Alias", "WantedBy", "RequiredBy"}

# podman-systemd.unit(5)'s table: [Container] key -> the podman run option it becomes.
KEY_OPTION = {
    "ContainerName": "--name", "Tmpfs": "--tmpfs", "PublishPort": "--publish",
    "Volume": "--volume", "EnvironmentFile": "--env-file", "Label": "--label",
    "Secret": "--secret", "Memory": "--memory", "PidsLimit": "--pids-limit",
    "Ulimit": "--ulimit", "HealthCmd": "--health-cmd", "HealthInterval": "--health-interval",
    "HealthTimeout": "--health-timeout", "HealthRetries": "--health-retries",
    "HealthStartPeriod": "--health-start-period", "HealthOnFailure": "--health-on-failure",
    "StopTimeout": "--stop-timeout",
}


def spec_and_recipe(**kwargs):
    recipe = edge_recipe()
    return host_spec(recipe, **kwargs), recipe


def unit_sections(text: str) -> dict[str, list[tuple[str, str]]]:
    """A unit file's sections as (key, value) lists, continuation lines joined."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    joined = text.replace("\\\n", " ")
    for line in joined.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
        else:
            key, _, value = line.partition("=")
            current.append((key, value))
    return sections


def quadlet_options(text: str) -> tuple[Counter[tuple[str, ...]], str]:
    """What Quadlet's generator passes to `podman run` for the [Container] section (the
    documented table), and the image."""
    options: Counter[tuple[str, ...]] = Counter()
    image = ""
    for key, value in unit_sections(text)["Container"]:
        value = value.replace("%%", "%")
        if key == "Image":
            image = value
        elif key == "ReadOnly":
            options[("--read-only",)] += value == "true"
        elif key == "ReadOnlyTmpfs":
            options[(f"--read-only-tmpfs={value}",)] += 1
        elif key == "AutoUpdate":
            options[("--label", f"io.containers.autoupdate={value}")] += 1
        elif key in ("DropCapability", "AddCapability"):
            option = "--cap-drop" if key == "DropCapability" else "--cap-add"
            for cap in value.split():
                options[(option, cap)] += 1
        elif key == "PodmanArgs":
            options[tuple(shlex.split(value))] += 1
        elif key == "Notify":   # not a run option of the spec: how podman treats NOTIFY_SOCKET
            assert value == "true"
        else:
            options[(KEY_OPTION[key], value)] += 1
    return options, image


@pytest.mark.parametrize("target", TARGETS)
def test_quadlet_uses_only_keys_its_target_podman_documents(target):
    spec, recipe = spec_and_recipe()
    sections = unit_sections(render_quadlet(spec, recipe, target))
    assert set(sections) == {"Unit", "Container", "Service", "Install"}
    keys = {key for key, _ in sections["Container"]}
    documented = {(4, 4): CONTAINER_KEYS_4_4, (4, 5): CONTAINER_KEYS_4_5,
                  (4, 6): CONTAINER_KEYS_4_6}.get(target, CONTAINER_KEYS_5)
    assert keys <= documented, keys - documented
    assert all(QUADLET_KEY_SINCE[key] <= target for key in keys)
    assert {key for key, _ in sections["Install"]} <= INSTALL_KEYS


def test_quadlet_prefers_documented_keys_on_new_podman():
    spec, recipe = spec_and_recipe(registry="registry.example:5000")
    sections = unit_sections(render_quadlet(spec, recipe, (5, 5)))
    keys = {key for key, _ in sections["Container"]}
    assert "PodmanArgs" not in keys
    assert {"AutoUpdate", "Memory", "PidsLimit", "Ulimit", "HealthCmd", "Tmpfs"} <= keys
    assert ("AutoUpdate", "registry") in sections["Container"]


@pytest.mark.parametrize("target", TARGETS)
def test_quadlet_runs_exactly_what_podman_run_args_say(target):
    """One source of truth: Quadlet's translation of the file equals podman_run_options."""
    spec, recipe = spec_and_recipe(registry="registry.example:5000", secrets=("redis_password",))
    options, image = quadlet_options(render_quadlet(spec, recipe, target))
    assert image == spec.image == "registry.example:5000/edge-lite:latest"
    assert options == Counter(podman_run_options(spec))


@pytest.mark.tools
def test_quadlet_service_and_unit_sections_pass_systemd_analyze(tmp_path):
    """[Unit], [Service] and [Install] go to systemd untouched: systemd itself checks them
    (with the [Container] section out and a stand-in ExecStart, as the generator would add)."""
    spec, recipe = spec_and_recipe()
    text = render_quadlet(spec, recipe)
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    lines = []
    for section in ("Unit", "Service", "Install"):
        lines.append(f"[{section}]")
        lines += [f"{k}={v}" for k, v in parser.items(section)]
        if section == "Service":
            lines.append("ExecStart=/bin/true")
    unit = tmp_path / f"{spec.name}.service"
    unit.write_text("\n".join(lines) + "\n")
    verify(unit)


def test_quadlet_header_and_service_timeouts(tmp_path):
    spec, recipe = spec_and_recipe()
    text = render_quadlet(spec, recipe)
    assert text.startswith("# Generated by `monoimage host` from edge-lite.yaml")
    service = dict(unit_sections(text)["Service"])
    assert service["TimeoutStopSec"] == str(spec.stop_timeout + 60)
    assert dict(unit_sections(text)["Install"]) == {"WantedBy": "multi-user.target"}


def verify(unit: Path) -> None:
    """systemd-analyze verify, which must say nothing at all (it only warns on unknown keys)."""
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], check=False,
                            capture_output=True,
                            text=True, cwd=unit.parent)
    assert (result.returncode, result.stderr, result.stdout) == (0, "", "")


@pytest.mark.tools
def test_plain_unit_passes_systemd_analyze_verify(tmp_path):
    spec, recipe = spec_and_recipe()
    unit = tmp_path / plain_unit_name(spec)
    unit.write_text(render_systemd_unit(spec, recipe))
    verify(unit)


@pytest.mark.tools
def test_systemd_analyze_verify_is_not_a_rubber_stamp(tmp_path):
    spec, recipe = spec_and_recipe()
    unit = tmp_path / plain_unit_name(spec)
    unit.write_text(render_systemd_unit(spec, recipe).replace("Type=notify", "Typo=notify"))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], check=False,
                            capture_output=True,
                            text=True, cwd=tmp_path)
    assert "Unknown key 'Typo'" in result.stderr


def exec_start(text: str) -> list[str]:
    """The ExecStart argv as systemd reads it (quotes, continuation lines, %% and $$)."""
    value = dict(unit_sections(text)["Service"])["ExecStart"]
    return [arg.replace("%%", "%").replace("$$", "$") for arg in shlex.split(value)]


def test_plain_unit_runs_podman_like_generate_systemd_new():
    spec, recipe = spec_and_recipe()
    text = render_systemd_unit(spec, recipe)
    argv = exec_start(text)
    assert argv == systemd_run_command(spec)
    assert argv[:8] == ["/usr/bin/podman", "run", "--cidfile=%t/%n.ctr-id",
                        "--cgroups=no-conmon", "--rm", "--sdnotify=container", "--detach",
                        "--replace"]
    service = unit_sections(text)["Service"]
    assert ("Type", "notify") in service and ("NotifyAccess", "all") in service
    stop = f"-t {spec.stop_timeout} --cidfile=%t/%n.ctr-id"
    assert ("ExecStop", f"/usr/bin/podman stop --ignore {stop}") in service
    assert ("ExecStopPost", f"/usr/bin/podman rm -f --ignore {stop}") in service
    assert ("Conflicts", "edge-lite.service") in unit_sections(text)["Unit"]


@pytest.mark.parametrize("target", TARGETS)
def test_quadlet_hands_the_notify_socket_to_the_container(target):
    """Notify=true (in Quadlet since 4.4): `--sdnotify=container`, so the unit is started once
    monoimage-init says READY=1, not when conmon sees the container start."""
    spec, recipe = spec_and_recipe()
    container = unit_sections(render_quadlet(spec, recipe, target))["Container"]
    assert ("Notify", "true") in container
    assert not [v for k, v in container if k == "PodmanArgs" and "sdnotify" in v]


def test_start_timeout_covers_the_first_pull_and_the_longest_readiness_chain():
    spec, recipe = spec_and_recipe()
    first = recipe.services[0]

    def service(name: str, timeout: float, *after: str):
        return replace(first, name=name, depends_on=after,
                       ready=replace(first.ready, timeout=timeout))

    # a (10 s) then b (20.5 s) after it: 30.5 s; c (25 s) starts at once beside them
    chained = replace(recipe, services=(service("a", 10), service("b", 20.5, "a"),
                                        service("c", 25)))
    assert start_timeout(chained) == START_TIMEOUT + 31
    assert start_timeout(replace(recipe, services=(service("c", 25),))) == START_TIMEOUT + 25
    expected = start_timeout(recipe)
    assert expected > START_TIMEOUT
    for text in (render_quadlet(spec, recipe), render_systemd_unit(spec, recipe)):
        assert dict(unit_sections(text)["Service"])["TimeoutStartSec"] == str(expected)


def test_values_with_specifiers_and_spaces_survive_the_unit_file():
    assert systemd_quote("a b") == '"a b"'
    assert systemd_quote('say "hi"\\') == '"say \\"hi\\"\\\\"'
    assert systemd_quote("50%", specifiers=True) == "50%%"
    assert systemd_quote("$HOME", specifiers=True) == "$$HOME"
    with pytest.raises(UserError):
        systemd_quote("two\nlines")


# --- Ignition and Butane ----------------------------------------------------------------------

def ignition_validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ignition-validate", str(path)], check=False, capture_output=True,
                          text=True)


def decode(source: str) -> str:
    assert source.startswith("data:;base64,")
    return base64.b64decode(source.removeprefix("data:;base64,")).decode()


@pytest.mark.tools
def test_ignition_config_passes_ignition_validate(tmp_path):
    spec, recipe = spec_and_recipe(registry="registry.example:5000")
    path = tmp_path / "edge-lite.ign"
    path.write_text(render_ignition(host_bundle(spec, recipe, mirror="mirror.example:5000")))
    result = ignition_validate(path)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.tools
def test_ignition_validate_rejects_a_broken_config(tmp_path):
    """The validator really reads the file: a 3.4.0 version is not stable in Debian 12's."""
    spec, recipe = spec_and_recipe()
    config = json.loads(render_ignition(host_bundle(spec, recipe)))
    config["ignition"]["version"] = "3.4.0"
    path = tmp_path / "broken.ign"
    path.write_text(json.dumps(config))
    assert ignition_validate(path).returncode != 0


def test_ignition_installs_quadlet_fallback_unit_site_values_and_mirror():
    spec, recipe = spec_and_recipe(registry="registry.example:5000")
    config = json.loads(render_ignition(host_bundle(spec, recipe, mirror="mirror.example:5000")))
    files = {f["path"]: f for f in config["storage"]["files"]}
    assert set(files) == {"/etc/containers/systemd/edge-lite.container",
                          "/etc/monoimage/edge-lite.env",
                          "/etc/containers/registries.conf.d/50-monoimage-edge-lite.conf"}
    quadlet = files["/etc/containers/systemd/edge-lite.container"]
    assert decode(quadlet["contents"]["source"]) == render_quadlet(spec, recipe)
    assert quadlet["mode"] == 0o644
    assert files["/etc/monoimage/edge-lite.env"]["mode"] == 0o600
    assert config["storage"]["directories"] == [{"path": "/etc/monoimage", "mode": 0o700}]
    units = {u["name"]: u for u in config["systemd"]["units"]}
    assert units["edge-lite-podman.service"]["enabled"] is False
    assert units["edge-lite-podman.service"]["contents"] == render_systemd_unit(spec, recipe)
    assert units["podman-auto-update.timer"] == {"name": "podman-auto-update.timer",
                                                 "enabled": True}


def test_butane_says_the_same_as_ignition():
    """Butane's translation for this subset: inline contents become data URLs; the variant
    fcos 1.4.0 is the one that emits Ignition 3.3.0."""
    spec, recipe = spec_and_recipe()
    bundle = host_bundle(spec, recipe, mirror=None)
    butane = yaml.safe_load(render_butane(bundle))
    ignition = json.loads(render_ignition(bundle))
    assert (butane["variant"], butane["version"]) == ("fcos", "1.4.0")
    assert ignition["ignition"]["version"] == "3.3.0"
    assert butane["systemd"] == ignition["systemd"]
    assert butane["storage"]["directories"] == ignition["storage"]["directories"]
    translated = [{**f, "contents": {"source": "data:;base64," + base64.b64encode(
        f["contents"]["inline"].encode()).decode()}} for f in butane["storage"]["files"]]
    assert translated == ignition["storage"]["files"]


def test_mirror_drop_in_is_registries_conf_v2():
    conf = tomllib.loads(render_mirror_conf("registry.example:5000/edge-lite:1",
                                            "mirror.example:5000"))
    assert conf["registry"] == [{"prefix": "registry.example:5000",
                                 "location": "registry.example:5000",
                                 "mirror": [{"location": "mirror.example:5000"}]}]


def test_mirror_needs_a_registry_to_mirror():
    with pytest.raises(UserError, match="--mirror needs an image from a registry"):
        render_mirror_conf("localhost/edge-lite:latest", "mirror.example:5000")


def test_site_values_file_holds_every_value_under_the_inits_names():
    spec, recipe = spec_and_recipe()
    lines = [line for line in render_site_env(spec, recipe).splitlines()
             if line and not line.startswith("#")]
    assert lines == ["MONOIMAGE_SITE_DOMAIN=test", "MONOIMAGE_SITE_REDIS_PASSWORD=change-me"]


def test_auto_update_policy_follows_the_image_origin():
    local, _ = spec_and_recipe()
    remote, _ = spec_and_recipe(registry="registry.example:5000")
    assert dict(local.labels)["io.containers.autoupdate"] == "local"
    assert dict(remote.labels)["io.containers.autoupdate"] == "registry"


@pytest.mark.parametrize(("text", "expected"), [("4.4", (4, 4)), ("5.2.1", (5, 2))])
def test_podman_version_parses(text, expected):
    assert parse_podman_version(text) == expected


@pytest.mark.parametrize("text", ["4.3", "four", ""])
def test_podman_version_without_quadlet_is_refused(text):
    with pytest.raises(UserError, match="--podman-version"):
        parse_podman_version(text)


def test_artefacts_per_format():
    spec, recipe = spec_and_recipe(registry="registry.example:5000")
    names = {f: [a.filename for a in render_artefacts(spec, recipe, (f,), mirror="m.example")]
             for f in FORMATS}
    assert names == {
        "quadlet": ["edge-lite.container", "edge-lite.env", "50-monoimage-edge-lite.conf"],
        "systemd": ["edge-lite-podman.service", "edge-lite.env",
                    "50-monoimage-edge-lite.conf"],
        "ignition": ["edge-lite.ign"],
        "butane": ["edge-lite.bu"],
    }
    modes = {a.filename: a.mode for a in render_artefacts(spec, recipe, FORMATS)}
    assert modes["edge-lite.env"] == modes["edge-lite.ign"] == modes["edge-lite.bu"] == 0o600


@pytest.mark.tools
def test_tools_are_here():
    """The checks above need these; their absence is a setup problem, not a pass."""
    assert shutil.which("ignition-validate") and shutil.which("systemd-analyze")
    assert Path("/usr/bin/podman").exists()
