"""Every rejected recipe names the file, the line and the key path, and exits 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from monoimage.cli import main
from monoimage.errors import RecipeError
from monoimage.recipe.load import load_recipe
from recipe_files import IMAGE, SERVICE, write_recipe


def error_of(path: Path) -> RecipeError:
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    return caught.value


def service(name: str, extra: str = "", run: str = "  argv: [/usr/bin/x]\n") -> str:
    return f"name: {name}\npackages:\n  - {name}-pkg\nrun:\n{run}{extra}"


def test_unknown_key_in_a_service_names_file_line_and_key(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, {"alpha": service("alpha", "restart:\n  polcy: always\n")})
    err = error_of(path)
    assert err.file == str(tmp_path / "services" / "alpha.yaml")
    assert (err.line, err.key_path) == (7, "restart.polcy")
    assert "unknown key" in err.message


def test_wrong_type_is_located(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, {"alpha": service("alpha", "critical: sometimes\n")})
    err = error_of(path)
    assert (err.line, err.key_path) == (6, "critical")
    assert "true or false" in err.message


def test_missing_image_file_is_reported(tmp_path: Path) -> None:
    err = error_of(tmp_path / "nope.yaml")
    assert err.file == str(tmp_path / "nope.yaml")
    assert "no such file" in err.message


def test_unknown_service_points_at_the_list_entry(tmp_path: Path) -> None:
    image = IMAGE.format(services="  - alpha\n  - ghost")
    path = write_recipe(tmp_path, {"alpha": SERVICE.format(name="alpha")}, image=image)
    err = error_of(path)
    assert err.file == str(path)
    assert (err.line, err.key_path) == (9, "services[1]")
    assert "unknown service 'ghost'" in err.message


def test_service_listed_twice_is_rejected(tmp_path: Path) -> None:
    image = IMAGE.format(services="  - alpha\n  - alpha")
    path = write_recipe(tmp_path, {"alpha": SERVICE.format(name="alpha")}, image=image)
    err = error_of(path)
    assert (err.line, err.key_path) == (9, "services[1]")
    assert "listed twice" in err.message


def test_duplicate_yaml_key_is_rejected(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, {"alpha": service("alpha", "critical: true\ncritical: false\n")})
    err = error_of(path)
    assert (err.line, err.key_path) == (7, "critical")
    assert "duplicate key" in err.message


def test_service_name_must_match_its_file(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, {"alpha": service("beta")})
    err = error_of(path)
    assert (err.line, err.key_path) == (1, "name")


def test_dependency_cycle_names_the_cycle(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, {
        "alpha": service("alpha", "depends_on: [beta]\n"),
        "beta": service("beta", "depends_on:\n  - gamma\n"),
        "gamma": service("gamma", "depends_on: [alpha]\n"),
    })
    err = error_of(path)
    assert err.file == str(tmp_path / "services" / "alpha.yaml")
    assert (err.line, err.key_path) == (6, "depends_on[0]")
    assert "alpha -> beta -> gamma -> alpha" in err.message


def test_dependency_on_a_service_the_image_does_not_run(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, {"alpha": service("alpha", "depends_on:\n  - zeta\n")})
    err = error_of(path)
    assert (err.line, err.key_path) == (7, "depends_on[0]")
    assert "'zeta'" in err.message


@pytest.mark.parametrize("dest", ["etc/x.conf", "/etc/../../x.conf", "/etc//x.conf"])
def test_template_destination_outside_the_image_root(tmp_path: Path, dest: str) -> None:
    extra = f"config:\n  templates:\n    - dest: {dest}\n      content: hi\n"
    path = write_recipe(tmp_path, {"alpha": service("alpha", extra)})
    err = error_of(path)
    assert (err.line, err.key_path) == (8, "config.templates[0].dest")


def test_run_command_as_shell_string_is_rejected(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, {"alpha": service("alpha", run="  argv: nginx -g 'daemon off;'\n")})
    err = error_of(path)
    assert (err.line, err.key_path) == (5, "run.argv")
    assert "shell string" in err.message


def test_invalid_yaml_is_located(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, {"alpha": service("alpha", "ready: [tcp\n")})
    err = error_of(path)
    assert err.file == str(tmp_path / "services" / "alpha.yaml")
    assert err.line >= 6
    assert "not valid YAML" in err.message


def test_bad_version_constraint_is_located(tmp_path: Path) -> None:
    text = "name: alpha\npackages:\n  - good\n  - bad => 1.0\nrun:\n  argv: [x]\n"
    path = write_recipe(tmp_path, {"alpha": text})
    err = error_of(path)
    assert (err.line, err.key_path) == (4, "packages[1]")


def test_bad_mode_and_port_are_located(tmp_path: Path) -> None:
    extra = "runtime_dirs:\n  - path: /run/a\n    mode: 755\n"
    err = error_of(write_recipe(tmp_path, {"alpha": service("alpha", extra)}))
    assert (err.line, err.key_path) == (8, "runtime_dirs[0].mode")
    err = error_of(write_recipe(tmp_path, {"alpha": service("alpha", "ports: [70000]\n")}))
    assert (err.line, err.key_path) == (6, "ports[0]")


def test_two_probes_are_rejected(tmp_path: Path) -> None:
    extra = "ready:\n  tcp: 80\n  file: /run/x\n"
    err = error_of(write_recipe(tmp_path, {"alpha": service("alpha", extra)}))
    assert (err.line, err.key_path) == (6, "ready")


def test_cli_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, {"alpha": service("alpha", "critical: 3\n")})
    result = CliRunner().invoke(main, ["plan", str(path)])
    assert result.exit_code == 2
    expected = f"monoimage: {tmp_path}/services/alpha.yaml:6: critical: must be true or false"
    assert result.output.startswith(expected)
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
