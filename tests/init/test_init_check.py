"""`monoimage-init check`: the build's way to validate a table before it ships."""

import subprocess
import sys

from init_harness import scaled, service, table


def check(tmp_path, data, *flags):
    path = tmp_path / "services.py"
    path.write_text(repr(data))
    return subprocess.run([sys.executable, "-m", "monoimage.init", "check", "--table", str(path),
                           *flags], capture_output=True, text=True, timeout=scaled(20), check=False)


def test_check_accepts_a_valid_table_and_lists_values_left_to_boot_time(tmp_path):
    data = table(service("web", ["nginx"], user="nobody", templates=[
        {"target": "/run/x.conf", "content": "{{ port }} {{ token }}"}]), site={"port": "80"})
    result = check(tmp_path, data)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{tmp_path}/services.py: valid: image test, 1 service(s): web",
        ("note: web: /run/x.conf: {{ token }} has no site default: it needs "
         "MONOIMAGE_SITE_TOKEN or a secret file at boot")]


def test_check_refuses_unknown_accounts_unless_told_not_to_look(tmp_path):
    data = table(service("web", ["nginx"], user="www-nobody"))
    result = check(tmp_path, data)
    assert result.returncode == 2
    assert result.stderr == "monoimage-init: service web: user 'www-nobody' does not exist\n"
    assert check(tmp_path, data, "--no-accounts").returncode == 0


def test_check_reports_a_broken_table_with_exit_2(tmp_path):
    result = check(tmp_path, {"version": 1, "services": [{"name": "web"}]})
    assert result.returncode == 2
    assert result.stderr == (f"monoimage-init: {tmp_path}/services.py: services[0] (web): "
                             "missing key(s) argv\n")
