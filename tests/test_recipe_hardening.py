"""A hostile or careless recipe is refused at load, by class, with one located line (issue 11):
package names, template sources, repositories, YAML abuse, numbers, strings, names and
references, capabilities and signals, version conflicts, and {{ names }} nobody declared."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from monoimage.cli import main
from monoimage.errors import RecipeError, UserError
from monoimage.plan.merge import plan
from monoimage.plan.service_table import service_table_text
from monoimage.recipe.load import load_recipe
from recipe_files import write_recipe

APT_IMAGE = """\
image:
  name: test-image
distro:
  name: debian
  release: bookworm
  packager: apt
{distro}services:
  - alpha
{rest}"""
DNF_DISTRO = """\
  repositories:
    - id: fedora
      baseurl: {url}
"""
SERVICE = """\
name: alpha
packages:
  - alpha-pkg
run:
  argv: [/usr/bin/alpha]
{extra}"""


def recipe(root: Path, extra: str = "", rest: str = "", distro: str = "",
           packager: str = "apt") -> Path:
    image = APT_IMAGE.format(distro=distro, rest=rest).replace("packager: apt",
                                                               f"packager: {packager}")
    return write_recipe(root, {"alpha": SERVICE.format(extra=extra)}, image=image)


def refused(path: Path) -> RecipeError:
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    assert "\n" not in str(caught.value)
    return caught.value


def cli_refusal(path: Path) -> tuple[str, float]:
    """`monoimage plan PATH` in-process: exit 2, one stderr line; the line and the CPU seconds
    it took (CPU, not wall time: what a bomb would cost is work, and a loaded host stretches
    wall time, not this process's CPU time)."""
    began = time.process_time()
    result = CliRunner().invoke(main, ["plan", str(path)])
    seconds = time.process_time() - began
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0], seconds


# -- 1. package names, in every list ---------------------------------------------------------

@pytest.mark.parametrize(("where", "extra", "rest", "key"), [
    ("strip.packages", "", "strip:\n  packages: ['--root=/']\n", "strip.packages[0]"),
    ("base.packages", "", "base:\n  packages: [-x]\n", "base.packages[0]"),
    ("base.config_tools", "", "base:\n  config_tools: [Upper]\n", "base.config_tools[0]"),
    ("service packages.apt", "", "", "packages.apt[0]"),
])
def test_a_package_name_outside_the_packagers_grammar_is_refused(tmp_path, where, extra, rest,
                                                                 key):
    path = recipe(tmp_path, rest=rest)
    if where == "service packages.apt":
        (tmp_path / "services" / "alpha.yaml").write_text(
            "name: alpha\npackages:\n  apt: ['-purge']\nrun:\n  argv: [/usr/bin/alpha]\n")
    err = refused(path)
    assert err.key_path == key
    assert "is not a apt package name" in err.message or "invalid package name" in err.message


def test_strip_packages_with_an_option_is_refused_at_its_line(tmp_path):
    path = recipe(tmp_path, rest="strip:\n  packages:\n    - ok-pkg\n    - --root=/\n")
    err = refused(path)
    assert (err.file, err.line, err.key_path) == (str(path), 12, "strip.packages[1]")
    assert err.message.startswith("'--root=/' is not a apt package name")


def test_rpm_names_follow_rpms_rules_on_a_dnf_image(tmp_path):
    dnf = DNF_DISTRO.format(url="http://rpm.example/fedora")
    ok = recipe(tmp_path / "ok", distro=dnf, packager="dnf",
                rest="strip:\n  packages: [Capital_Name, python3.11+x]\n")
    assert load_recipe(ok).strip.packages == ("Capital_Name", "python3.11+x")
    for bad in ("'-e'", "'a..b'", "'a b'", "'.hidden'"):
        path = recipe(tmp_path / str(abs(hash(bad))), distro=dnf, packager="dnf",
                      rest=f"strip:\n  packages: [{bad}]\n")
        assert refused(path).key_path == "strip.packages[0]"


# -- 3. template sources ---------------------------------------------------------------------

def template_from(source: str) -> str:
    return f"config:\n  templates:\n    - dest: /etc/alpha.conf\n      source: {source}\n"


def test_a_template_source_inside_the_recipe_folder_is_read(tmp_path):
    path = recipe(tmp_path, extra=template_from("files/alpha.conf"))
    (tmp_path / "services" / "files").mkdir()
    (tmp_path / "services" / "files" / "alpha.conf").write_text("port 1\n")
    assert load_recipe(path).services[0].templates[0].content == "port 1\n"


@pytest.mark.parametrize(("source", "setup", "says"), [
    ("/etc/hostname", None, "must be a path relative"),
    ("../../outside.conf", "outside", "leads out of the recipe's folder"),
    ("link.conf", "symlink", "leads out of the recipe's folder"),
    ("zero", "device", "leads out of the recipe's folder"),
    ("fifo", "fifo", "is not a regular file"),
    ("big.conf", "big", "is larger than 1048576 bytes"),
    ("latin1.conf", "latin1", "is not UTF-8 text (line 2)"),
    ("nul.conf", "nul", "contains U+0000"),
    ("missing.conf", None, "no such file"),
])
def test_a_template_source_that_is_not_a_small_text_file_in_the_tree_is_refused(
        tmp_path, source, setup, says):
    root = tmp_path / "recipe"
    path = recipe(root, extra=template_from(source))
    services = root / "services"
    if setup == "outside":
        (tmp_path / "outside.conf").write_text("secret\n")
    elif setup == "symlink":
        (tmp_path / "outside.conf").write_text("secret\n")
        (services / "link.conf").symlink_to(tmp_path / "outside.conf")
    elif setup == "device":
        (services / "zero").symlink_to("/dev/zero")
    elif setup == "fifo":
        os.mkfifo(services / "fifo")
    elif setup == "big":
        (services / "big.conf").write_bytes(b"x" * (1024 * 1024 + 1))
    elif setup == "latin1":
        (services / "latin1.conf").write_bytes(b"ok\ncaf\xe9\n")
    elif setup == "nul":
        (services / "nul.conf").write_bytes(b"a\0b\n")
    err = refused(path)
    assert err.key_path == "config.templates[0].source"
    assert says in err.message


# -- 4. repositories -------------------------------------------------------------------------

def apt_repo(uri: str, extra: str = "") -> str:
    return f"  repositories:\n    - uri: {uri}\n      suite: bookworm\n{extra}"


@pytest.mark.parametrize(("repo", "key", "says"), [
    (apt_repo('"http://deb.example/debian\\nTrusted: yes"'), "distro.repositories[0].uri",
     "contains a newline"),
    (apt_repo('"http://deb.example/debian [trusted=yes]"'), "distro.repositories[0].uri",
     "contains a space"),
    (apt_repo("ftp://deb.example/debian"), "distro.repositories[0].uri", "the scheme must be"),
    (apt_repo("http:///debian"), "distro.repositories[0].uri", "names no host"),
    (apt_repo("http://deb.example:99999/x"), "distro.repositories[0].uri", "is not a URL"),
    (apt_repo("http://deb.example/debian", '      components: ["main\\ncontrib"]\n'),
     "distro.repositories[0].components[0]", "contains a newline"),
    (apt_repo("http://deb.example/debian", "      components: [main contrib]\n"),
     "distro.repositories[0].components[0]", "is not a component name"),
    (apt_repo("http://deb.example/debian", "      signed_by: key.gpg\n"),
     "distro.repositories[0].signed_by", "absolute path to a key file"),
    ("  architecture: 'amd64 arm64'\n", "distro.architecture", "is not one word"),
])
def test_an_apt_repository_field_that_could_add_a_line_is_refused(tmp_path, repo, key, says):
    err = refused(recipe(tmp_path, distro=repo))
    assert err.key_path == key
    assert says in err.message


def test_an_apt_suite_with_a_newline_is_refused(tmp_path):
    repo = '  repositories:\n    - uri: http://deb.example/d\n      suite: "bookworm\\nTrusted: yes"\n'
    err = refused(recipe(tmp_path, distro=repo))
    assert err.key_path == "distro.repositories[0].suite"


def test_a_dnf_baseurl_that_would_turn_gpgcheck_off_is_refused(tmp_path):
    dnf = DNF_DISTRO.format(url='"http://rpm.example/f\\ngpgcheck=0"')
    err = refused(recipe(tmp_path, distro=dnf, packager="dnf"))
    assert err.key_path == "distro.repositories[0].baseurl"


def test_a_flat_file_repository_is_accepted(tmp_path):
    repo = "  repositories:\n    - uri: file:///srv/repo\n      suite: ./\n      components: []\n"
    loaded = load_recipe(recipe(tmp_path, distro=repo))
    assert loaded.distro.repositories[0].suites == ("./",)  # type: ignore[union-attr]


# -- 6. YAML abuse ---------------------------------------------------------------------------

BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


@pytest.mark.parametrize(("text", "says"), [
    (BOMB, "values (aliases expanded)"),
    ("a: &a [*a]\n", "refers to a value that contains it"),
    ("x: " + "[" * 100 + "]" * 100 + "\n", "nested deeper than 64 levels"),
    ("x: " + "[" * 100000 + "]" * 100000 + "\n", "not valid YAML: exceeded maximum nesting"),
    ("".join(f"{'  ' * i}k:\n" for i in range(70)), "nested deeper than 64 levels"),
    ("l:\n" + "- x\n" * 1_000_000, "more than 50000 values"),
    ("x: !custom 1\n", "the tag '!custom' is not allowed"),
    ("x: !!binary aGVsbG8=\n", "is not allowed"),
    ("x: !!int abc\n", "'abc' is not a valid int"),
    ("x: !!python/object:os.system 1\n", "is not allowed"),
    ("x: a\0b\n", "control character U+0000"),
    ("x: !!set {a, b}\n", "is not allowed"),
])
def test_yaml_abuse_is_one_located_line_fast(tmp_path, text, says):
    path = recipe(tmp_path)
    path.write_text("image:\n  name: test-image\n" + text)
    line, seconds = cli_refusal(path)
    assert line.startswith(f"monoimage: {path}:")
    assert says in line
    assert seconds < 1.0


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_a_recipe_path_that_is_not_a_regular_file_is_refused_at_once(tmp_path, kind):
    path = tmp_path / "image.yaml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero")
    line, seconds = cli_refusal(path)
    assert line.startswith(f"monoimage: {path}: ")
    assert seconds < 1.0


def test_a_yaml_timestamp_is_read_as_the_text_written(tmp_path):
    path = recipe(tmp_path, rest="site:\n  installed: 2024-05-01\n")
    assert dict(load_recipe(path).site)["installed"] == "2024-05-01"


def test_an_oversized_recipe_file_is_refused_without_parsing(tmp_path):
    path = recipe(tmp_path)
    path.write_text("# " + "x" * (4 * 1024 * 1024) + "\n")
    assert "larger than" in refused(path).message


# -- 7. numbers ------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["ready.timeout", "ready.interval", "stop.timeout",
                                 "restart.window", "restart.backoff.initial"])
@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "1.0e+300"])
def test_nan_infinity_and_absurd_durations_are_refused(tmp_path, key, value):
    *parents, last = key.split(".")
    block = "".join(f"{'  ' * i}{p}:\n" for i, p in enumerate(parents))
    extra = block + f"{'  ' * len(parents)}{last}: {value}\n"
    if key == "ready.interval" or key == "ready.timeout":
        extra = extra.replace("ready:\n", "ready:\n  tcp: 80\n")
    err = refused(recipe(tmp_path, extra=extra))
    assert err.key_path == key
    assert "finite" in err.message or "at most" in err.message


@pytest.mark.parametrize(("rest", "key"), [
    ("runtime:\n  pids_limit: 100000000000\n", "runtime.pids_limit"),
    ("layering:\n  max_layers: 1000\n", "layering.max_layers"),
    ("site:\n  x: .nan\n", "site.x"),
])
def test_absurd_counts_and_nan_values_are_refused(tmp_path, rest, key):
    assert refused(recipe(tmp_path, rest=rest)).key_path == key


# -- 8. strings ------------------------------------------------------------------------------

@pytest.mark.parametrize(("extra", "key"), [
    ('  user: "root\\n"\n', "run.user"),
    ('  user: "' + "a" * 33 + '"\n', "run.user"),
    ('  env:\n    A: "x\\0y"\n', "run.env.A"),
    ('  env:\n    A: "x\\ny"\n', "run.env.A"),
    ('  workdir: "/srv\\n"\n', "run.workdir"),
])
def test_control_characters_and_absurd_lengths_in_run_are_refused(tmp_path, extra, key):
    path = recipe(tmp_path)
    (tmp_path / "services" / "alpha.yaml").write_text(
        f"name: alpha\nrun:\n  argv: [/usr/bin/alpha]\n{extra}")
    assert refused(path).key_path == key


def test_an_argv_the_inits_table_cannot_hold_is_refused_at_load(tmp_path):
    path = recipe(tmp_path)
    (tmp_path / "services" / "alpha.yaml").write_text(
        'name: alpha\nrun:\n  argv: [/usr/bin/alpha, "a\\0b"]\n')
    err = refused(path)
    assert (err.line, err.key_path) == (3, "run.argv[1]")
    assert "contains U+0000" in err.message


def test_a_megabyte_user_name_gives_a_short_line(tmp_path):
    path = recipe(tmp_path)
    (tmp_path / "services" / "alpha.yaml").write_text(
        f"name: alpha\nrun:\n  argv: [/usr/bin/alpha]\n  user: {'a' * 1_000_000}\n")
    assert len(str(refused(path))) < 300


def test_a_site_value_that_an_env_file_cannot_hold_is_located(tmp_path):
    path = recipe(tmp_path, rest='site:\n  banner: "two\\nlines"\n')
    err = refused(path)
    assert (err.file, err.line, err.key_path) == (str(path), 10, "site.banner")
    assert "contains a newline" in err.message


# -- 9. names, references, capabilities, signals ----------------------------------------------

@pytest.mark.parametrize(("image", "key"), [
    ("image:\n  name: " + "a" * 300 + "\n", "image.name"),
    ("image:\n  name: a..b\n", "image.name"),
    ("image:\n  name: ok\n  tag: -bad\n", "image.tag"),
    ("image:\n  name: ok\n  tag: " + "t" * 129 + "\n", "image.tag"),
])
def test_image_name_and_tag_are_oci_references(tmp_path, image, key):
    path = recipe(tmp_path)
    path.write_text(path.read_text().replace("image:\n  name: test-image\n", image))
    assert refused(path).key_path == key


@pytest.mark.parametrize("cap", ["ALL", "CAP_ALL", "NET_FLY", "cap_sys_everything"])
def test_unknown_capabilities_and_all_are_refused(tmp_path, cap):
    err = refused(recipe(tmp_path, extra=f"capabilities: [{cap}]\n"))
    assert err.key_path == "capabilities[0]"
    assert "is not a Linux capability" in err.message


def test_known_capabilities_are_accepted(tmp_path):
    path = recipe(tmp_path, extra="capabilities: [net_admin, CAP_CHECKPOINT_RESTORE]\n")
    assert load_recipe(path).services[0].capabilities == ("NET_ADMIN", "CHECKPOINT_RESTORE")


@pytest.mark.parametrize(("extra", "key"), [
    ("stop:\n  signal: SIGSTOP\n", "stop.signal"),
    ("stop:\n  signal: CONT\n", "stop.signal"),
    ("stop:\n  signal: SIGCHLD\n", "stop.signal"),
    ("reload_signal: SIGKILL\n", "reload_signal"),
    ("reload_signal: SIGSTOP\n", "reload_signal"),
])
def test_signals_that_cannot_stop_or_reload_are_refused(tmp_path, extra, key):
    err = refused(recipe(tmp_path, extra=extra))
    assert err.key_path == key
    assert "cannot" in err.message


def test_sigkill_may_stop_and_sigusr1_may_reload(tmp_path):
    loaded = load_recipe(recipe(tmp_path, extra="stop:\n  signal: KILL\nreload_signal: USR1\n"))
    assert (loaded.services[0].stop_signal, loaded.services[0].reload_signal) == (
        "SIGKILL", "SIGUSR1")


# -- 10. conflicts name where ----------------------------------------------------------------

def test_a_version_conflict_names_file_and_line_of_each_request(tmp_path):
    path = recipe(tmp_path, rest="base:\n  packages:\n    - alpha-pkg >= 2\n")
    (tmp_path / "services" / "alpha.yaml").write_text(
        "name: alpha\npackages:\n  - alpha-pkg < 1\nrun:\n  argv: [/usr/bin/alpha]\n")
    with pytest.raises(UserError) as caught:
        plan(load_recipe(path))
    text = str(caught.value)
    service_file = tmp_path / "services" / "alpha.yaml"
    assert text.startswith(f"{service_file}:3: package 'alpha-pkg': no version satisfies")
    assert f"base wants alpha-pkg >= 2 ({path}:11)" in text
    assert f"alpha wants alpha-pkg < 1 ({service_file}:3)" in text


# -- undeclared {{ names }} ------------------------------------------------------------------

def test_an_undeclared_template_name_is_a_recipe_error(tmp_path):
    extra = "config:\n  templates:\n    - dest: /etc/a\n      content: 'x {{ hostnmae }}'\n"
    path = recipe(tmp_path, extra=extra, rest="site:\n  hostname: edge\n")
    err = refused(path)
    assert (err.line, err.key_path) == (8, "config.templates[0]")
    assert err.message.startswith("{{ hostnmae }} is not a site value of the image")


def test_a_required_value_is_declared_without_a_default(tmp_path):
    extra = "config:\n  templates:\n    - dest: /etc/a\n      content: 'x {{ token }}'\n"
    path = recipe(tmp_path, extra=extra, rest="site:\n  token: {required: true}\n")
    loaded = load_recipe(path)
    assert (loaded.site, loaded.site_required, loaded.site_secrets) == ((), ("token",), ())
    assert "token" not in service_table_text(loaded).split("'site'")[1].split("'services'")[0]
