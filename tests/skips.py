"""Which skips a developer chose: MONOIMAGE_TEST_ALLOW_SKIP (tests/conftest.py fails the run on
any other skip).

The variable is a comma- or space-separated list of test id prefixes (`tests/init`,
`tests/test_versions_oracle.py::test_rpm_constraints_overlap_as_rpm_dependency_matching_does`)
or globs (`*` allows every skip).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

ALLOW_SKIP = "MONOIMAGE_TEST_ALLOW_SKIP"


@dataclass(frozen=True)
class Skip:
    nodeid: str
    reason: str


def allowed_skips(text: str) -> tuple[str, ...]:
    """The patterns of MONOIMAGE_TEST_ALLOW_SKIP: comma- or space-separated."""
    return tuple(p for p in text.replace(",", " ").split() if p)


def skip_is_allowed(nodeid: str, patterns: tuple[str, ...]) -> bool:
    """A pattern allows a test id it prefixes, or matches as a glob (`*` allows every skip)."""
    return any(nodeid.startswith(p) or fnmatch.fnmatchcase(nodeid, p) for p in patterns)


def unallowed(skips: Sequence[Skip], allow: str) -> list[Skip]:
    """The skips the MONOIMAGE_TEST_ALLOW_SKIP value `allow` does not name."""
    patterns = allowed_skips(allow)
    return [s for s in skips if not skip_is_allowed(s.nodeid, patterns)]
