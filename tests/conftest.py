"""The suite's policy, and the one edge-lite build the slow tests share.

- **No silent skips.** A skipped test fails the run (exit code 1, each skip listed with its
  reason), unless `MONOIMAGE_TEST_ALLOW_SKIP` names it: a comma- or space-separated list of
  test id prefixes (`tests/init`, `tests/test_versions_oracle.py::test_rpm_constraints_...`),
  or `*` for every skip. A developer who chooses to skip says so; a green run skipped nothing
  else.
- **Deterministic property tests.** The `ci` Hypothesis profile (derandomized, no example
  database, no deadline, failing examples printed as a reproduction blob) is what
  `scripts/test` selects (`--hypothesis-profile=ci`, or `HYPOTHESIS_PROFILE=ci`); tests that set
  their own `max_examples` keep drawing as many.
- **Timeouts for slow machines.** `MONOIMAGE_TEST_TIME_FACTOR` scales every harness timeout
  (tests/timing.py); a value that is not a positive number stops the run before it starts.
- **Markers.** `build` (builds images), `boot` (boots containers), `tools` (runs an external
  program: buildah, podman, mmdebstrap, apt, dnf, rpm, dpkg, skopeo, docker-registry,
  unshare). `pytest -m "not build and not tools"` is the offline, fast subset.
- **Two workers.** `scripts/test` runs the suite on two pytest-xdist workers
  (`-n 2`): a build is mostly one process on one core, so two keep this 2-core host busy. A
  worker takes a whole module (its module fixtures are built once), and every module with a
  test of the session's edge-lite goes to one worker (`worker_scope`). Tests already
  look only at what they made themselves (names, build ids), as another run beside them may
  do the same.
- **edge-lite, built once.** The `edge_lite` session fixture builds edge-lite (under a
  `monoimage-test-` name) the first time a test asks; the build, boot and footprint tests
  share it, and `edge_lite_strategies` adds the two layered comparators on the same pinned
  closure. `MONOIMAGE_TEST_EDGE_LITE=PATH` builds a recipe under development instead.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator

import pytest
from hypothesis import settings

from footprint_support import (
    EDGE_LITE_EPOCH,
    EdgeLite,
    edge_lite_run,
    edge_lite_source,
    remove_images_named,
    renamed_recipe_copy,
)
from monoimage.pipeline.build import BuildOptions, build, resolve
from monoimage.pipeline.footprint import FootprintRun
from monoimage.recipe.load import load_recipe
from monoimage.tools.cache_dir import default_cache_dir
from skips import ALLOW_SKIP, Skip, unallowed
from timing import time_factor

settings.register_profile("ci", derandomize=True, database=None, deadline=None,
                          print_blob=True)
if os.environ.get("HYPOTHESIS_PROFILE"):
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])

# Fixtures that start external programs: a test using one runs tools, whatever its module says.
TOOL_FIXTURES = frozenset({"start_init"})
# The session's edge-lite build and its comparators (below), and the modules whose tests use
# them: these share one worker (two would build edge-lite twice).
EDGE_LITE_FIXTURES = frozenset({"edge_lite", "edge_lite_strategies"})
EDGE_LITE_MODULES = frozenset({f"tests/{name}.py" for name in (
    "test_boot_edge_compute", "test_boot_edge_lite", "test_boot_vm", "test_build_apt",
    "test_comparators", "test_estimate")})


# ---------------------------------------------------------------- configuration and markers


def pytest_configure(config: pytest.Config) -> None:
    try:
        time_factor()
    except ValueError as err:
        raise pytest.UsageError(str(err)) from None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    shared = set()
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if TOOL_FIXTURES & fixtures:
            item.add_marker(pytest.mark.tools)
        if EDGE_LITE_FIXTURES & fixtures:
            shared.add(module_of(item.nodeid))
    if shared - EDGE_LITE_MODULES:
        raise pytest.UsageError(f"tests/conftest.py: EDGE_LITE_MODULES must list "
                                f"{sorted(shared - EDGE_LITE_MODULES)} (they use edge-lite)")


def module_of(nodeid: str) -> str:
    return nodeid.partition("::")[0]


def worker_scope(nodeid: str) -> str:
    """What one pytest-xdist worker runs together: a whole module (its module fixtures are
    built once), and every module of EDGE_LITE_MODULES in one go (one edge-lite build)."""
    module = module_of(nodeid)
    return "edge-lite" if module in EDGE_LITE_MODULES else module


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """pytest-xdist's scope scheduling with `worker_scope` as the scope. (The controller does
    not collect, so the modules that use edge-lite are listed in EDGE_LITE_MODULES, and the
    workers' collection checks the list.)"""
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return worker_scope(nodeid)

    return Scheduling(config, log)  # type: ignore[arg-type]


# ---------------------------------------------------------------- no silent skips


SKIPS: list[Skip] = []   # this session's skips, in the order they were reported


def _record(report: pytest.CollectReport | pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        longrepr = report.longrepr
        reason = (str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3
                  else str(longrepr))
        SKIPS.append(Skip(report.nodeid or ".", reason.removeprefix("Skipped: ")))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _record(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _record(report)


def unallowed_skips() -> list[Skip]:
    """This session's skips that MONOIMAGE_TEST_ALLOW_SKIP does not name."""
    return unallowed(SKIPS, os.environ.get(ALLOW_SKIP, ""))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Only the skipped module was collected: no test ran, and that is a failure too.
    passed = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
    if exitstatus in passed and unallowed_skips():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skips = unallowed_skips()
    if not skips:
        return
    terminalreporter.section("skipped tests fail the run", sep="=", red=True, bold=True)
    for skip in skips:
        terminalreporter.line(f"SKIPPED {skip.nodeid}: {skip.reason}")
    terminalreporter.line(f"{len(skips)} test(s) skipped: install what they need (scripts/setup "
                          f"--test), or name them in {ALLOW_SKIP} to skip them on purpose")


# ---------------------------------------------------------------- edge-lite, built once


@pytest.fixture(scope="session")
def edge_lite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeLite]:
    """edge-lite built once per session with the shared (warm) package cache, under a unique
    `monoimage-test-edge-lite-…:t` name; removed when the session ends."""
    name = f"monoimage-test-edge-lite-{secrets.token_hex(3)}"
    folder = tmp_path_factory.mktemp("edge-lite")
    path = renamed_recipe_copy(edge_lite_source(), folder, name)
    recipe = load_recipe(path)
    try:
        resolution = resolve(recipe, cache_dir=default_cache_dir())
        result = build(recipe, BuildOptions(
            tag=f"localhost/{name}:t", cache_dir=default_cache_dir(), out_dir=folder / "out",
            source_date_epoch=EDGE_LITE_EPOCH), resolution=resolution)
        yield EdgeLite(path, recipe, resolution, result, folder)
    finally:
        remove_images_named(f"localhost/{name}")


@pytest.fixture(scope="session")
def edge_lite_strategies(edge_lite: EdgeLite) -> Iterator[FootprintRun]:
    """The session's edge-lite golden image and both layered comparators from its closure,
    measured like `monoimage footprint` (no day 2, no registry pull); removed with edge-lite."""
    oci = edge_lite.folder / "oci"
    try:
        yield edge_lite_run(edge_lite, oci, EDGE_LITE_EPOCH)
    finally:
        shutil.rmtree(oci, ignore_errors=True)
