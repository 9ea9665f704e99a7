"""Templates: `{{ name }}` only, `$` untouched, and where a value comes from."""

import os
import stat

import pytest

from monoimage.init.files import write_atomic
from monoimage.init.render import MissingValue, SiteValues, placeholders, render


def test_placeholders_with_or_without_spaces_and_everything_else_verbatim():
    text = "a={{a}} b={{  b }} $uri ${var} {{ $labels.x }} {{ not-a-name }} {b}"
    assert render(text, {"a": "1", "b": "2"}.get) == \
        "a=1 b=2 $uri ${var} {{ $labels.x }} {{ not-a-name }} {b}"
    assert placeholders(text) == ["a", "b"]


def test_unknown_name_raises_missing_value():
    with pytest.raises(MissingValue) as missing:
        render("{{ known }} {{ unknown }}", {"known": "x"}.get)
    assert missing.value.name == "unknown"


def test_secret_file_beats_environment_beats_site_default(tmp_path):
    (tmp_path / "password").write_text("from-file\n\n")
    values = SiteValues({"password": "site", "port": "1", "user": "site"},
                        {"MONOIMAGE_SITE_PASSWORD": "env", "MONOIMAGE_SITE_USER": "env"},
                        str(tmp_path))
    assert values("password") == "from-file\n", "exactly one trailing newline is stripped"
    assert values("user") == "env"
    assert values("port") == "1"
    assert values("absent") is None


def test_missing_secrets_directory_is_no_secret(tmp_path):
    values = SiteValues({"x": "site"}, {}, str(tmp_path / "nowhere"))
    assert values("x") == "site"


def test_write_atomic_sets_mode_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "deep" / "er" / "app.conf"
    write_atomic(str(target), b"one", 0o640, os.geteuid(), os.getegid())
    write_atomic(str(target), b"two", 0o600, os.geteuid(), os.getegid())
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["app.conf"]
