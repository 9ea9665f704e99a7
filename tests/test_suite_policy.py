"""The suite's own policy (tests/conftest.py), run on small test files by a real pytest: a skip
fails the run unless MONOIMAGE_TEST_ALLOW_SKIP names it; the `ci` Hypothesis profile is
derandomized; a bad MONOIMAGE_TEST_TIME_FACTOR stops the run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from skips import Skip, unallowed
from timing import scaled

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"

SKIPS = """\
import pytest

def test_passes():
    pass

def test_skips():
    pytest.skip("needs a tool this host lacks")

@pytest.mark.xfail(reason="a known bug", strict=True)
def test_known_bug():
    assert False
"""


def run_pytest(folder: Path, text: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """pytest on one test file in `folder`, with the suite's conftest loaded as a plugin."""
    (folder / "test_sample.py").write_text(textwrap.dedent(text))
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("MONOIMAGE_TEST_ALLOW_SKIP", "MONOIMAGE_TEST_TIME_FACTOR",
                                "HYPOTHESIS_PROFILE")}
    environment |= {"PYTHONPATH": os.pathsep.join([str(TESTS), str(SRC)]), **env}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-q",
                           "-p", "no:cacheprovider", *args, "test_sample.py"],
                          cwd=folder, env=environment, capture_output=True, text=True,
                          check=False, timeout=scaled(120))


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["one-process", "two-workers"])
def test_a_skipped_test_fails_the_run_and_says_why(tmp_path: Path, workers: tuple[str, ...]
                                                   ) -> None:
    # scripts/test runs the suite on two pytest-xdist workers: their skips count the same
    done = run_pytest(tmp_path, SKIPS, *workers)
    assert done.returncode == 1, done.stdout
    assert "1 passed, 1 skipped, 1 xfailed" in done.stdout
    assert "SKIPPED test_sample.py::test_skips: needs a tool this host lacks" in done.stdout
    assert ("1 test(s) skipped: install what they need (scripts/setup --test), or name them "
            "in MONOIMAGE_TEST_ALLOW_SKIP to skip them on purpose") in done.stdout


def test_a_skip_the_developer_named_passes(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, SKIPS, MONOIMAGE_TEST_ALLOW_SKIP="test_sample.py::test_skips")
    assert done.returncode == 0, done.stdout
    assert "skipped tests fail the run" not in done.stdout


@pytest.mark.parametrize(("allow", "left"), [
    ("", ["tests/init/test_a.py::test_x", "tests/test_b.py::test_y"]),
    ("tests/init", ["tests/test_b.py::test_y"]),
    ("tests/test_b.py::test_y", ["tests/init/test_a.py::test_x"]),
    ("other.py, tests/test_b.py::test_*", ["tests/init/test_a.py::test_x"]),
    ("tests/init tests/test_b.py", []),
    ("*", []),
    ("tests/test_b.py::test_yz", ["tests/init/test_a.py::test_x", "tests/test_b.py::test_y"]),
])
def test_allowed_skips_are_test_id_prefixes_or_globs(allow: str, left: list[str]) -> None:
    skips = [Skip("tests/init/test_a.py::test_x", "no unshare"),
             Skip("tests/test_b.py::test_y", "no rpm")]
    assert [s.nodeid for s in unallowed(skips, allow)] == left


def test_a_module_skipped_at_collection_fails_the_run(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, """\
        import pytest
        pytest.skip("no rpm here", allow_module_level=True)
        """)
    assert done.returncode == 1, done.stdout
    assert "SKIPPED test_sample.py: no rpm here" in done.stdout


def test_a_failure_keeps_its_own_exit_code(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, "def test_fails():\n    assert False\n")
    assert done.returncode == 1 and "1 failed" in done.stdout


def test_the_ci_profile_is_derandomized_without_a_database_or_deadline(tmp_path: Path) -> None:
    sample = """\
        from hypothesis import settings

        def test_profile():
            current = settings.default
            assert current.derandomize and current.database is None
            assert current.deadline is None and current.print_blob
        """
    assert run_pytest(tmp_path, sample, "--hypothesis-profile=ci").returncode == 0


def test_a_time_factor_that_is_not_a_positive_number_stops_the_run(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, "def test_passes():\n    pass\n",
                      MONOIMAGE_TEST_TIME_FACTOR="slow")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert "MONOIMAGE_TEST_TIME_FACTOR='slow': expected a positive number, e.g. 2" in done.stderr


@pytest.mark.parametrize(("factor", "seconds"), [("", 90.0), ("2.5", 225.0), (" 3 ", 270.0)])
def test_the_time_factor_scales_the_harness_timeouts(monkeypatch: pytest.MonkeyPatch,
                                                     factor: str, seconds: float) -> None:
    monkeypatch.setenv("MONOIMAGE_TEST_TIME_FACTOR", factor)
    assert scaled(90) == seconds


@pytest.mark.parametrize("factor", ["0", "-2", "nan", "slow"])
def test_a_time_factor_must_be_a_positive_number(monkeypatch: pytest.MonkeyPatch,
                                                 factor: str) -> None:
    monkeypatch.setenv("MONOIMAGE_TEST_TIME_FACTOR", factor)
    with pytest.raises(ValueError, match="expected a positive number"):
        scaled(1)
