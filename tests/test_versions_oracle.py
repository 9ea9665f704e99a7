"""monoimage.recipe.versions against the real tools: dpkg and rpm 4.18 on this host.

Hypothesis draws thousands of version pairs (realistic and nasty ones); each test collects
them first, then asks the real tool about all of them in one subprocess, and fails listing
every disagreement. Collected examples are not shrunk, so the failure prints them all.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rpm_vercmp import vercmp as library_rpmvercmp

from monoimage.recipe.version_ranges import intersect, satisfies
from monoimage.recipe.versions import OPERATORS, Constraint, Family, compare, is_valid_version

T = TypeVar("T")

# Still a skip without the oracles, but a skip fails the run (tests/conftest.py): scripts/setup
# installs rpm, dpkg and python3-rpm.
pytestmark = [pytest.mark.tools, pytest.mark.skipif(
    shutil.which("rpm") is None or shutil.which("dpkg") is None,
    reason="the oracles are the real rpm and dpkg binaries (Debian packages rpm, dpkg)",
)]


def collect(strategy: st.SearchStrategy[T], count: int, batch: int = 1) -> list[T]:
    """Draw about `count` examples, `batch` per Hypothesis example (it is faster that way).

    No shrinking: the examples go to the oracle in one batch, and a failure lists them all.
    """
    drawn: list[T] = []

    @settings(max_examples=count // batch, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(st.lists(strategy, min_size=batch, max_size=batch))
    def draw(examples: list[T]) -> None:
        drawn.extend(examples)

    draw()
    assert len(drawn) >= count * 0.9, f"Hypothesis drew only {len(drawn)} examples"
    return drawn


# --- generators -----------------------------------------------------------------------------
# A version is a list of tokens (numbers, words, separators). Pairs are mostly a version and a
# small mutation of it, so that comparisons reach deep into both strings.

digits = st.one_of(
    st.builds(lambda zeros, number: "0" * zeros + str(number), st.integers(0, 3),
              st.integers(0, 999)),
    st.sampled_from(["0", "00", "1", "01", "10", "9", "99999999999999999999", "4294967296"]),
)
letters = st.one_of(
    st.text(alphabet="abcxyzABCXYZ", min_size=1, max_size=3),
    st.sampled_from(["a", "z", "A", "Z", "rc", "alpha", "beta", "git", "pre", "el9", "fc38"]),
)
epochs = st.sampled_from([None, None, None, "0", "1", "00", "01", "2", "10"])

RPM_SEPARATORS = [".", ".", "+", "_", "~", "^", "..", "~~", "^^", "._", "+.", "~^", "^~"]
DPKG_SEPARATORS = [".", ".", "+", "~", "..", "~~", ".~", "+.", "~."]


def tokens(separators: list[str]) -> st.SearchStrategy[list[str]]:
    token = st.one_of(digits, digits, letters, st.sampled_from(separators))
    return st.lists(token, min_size=1, max_size=6)


@st.composite
def mutation(draw: st.DrawFn, original: list[str], separators: list[str]) -> list[str]:
    """The same tokens, or one token appended, inserted, replaced or dropped, or new ones."""
    changed = list(original)
    extra = draw(tokens(separators))[0]
    how = draw(st.sampled_from(["same", "append", "append", "insert", "replace", "replace",
                                "drop", "new"]))
    place = draw(st.integers(0, len(changed) - 1)) if changed else 0
    if how == "append":
        changed.append(extra)
    elif how == "insert":
        changed.insert(place, extra)
    elif how == "replace" and changed:
        changed[place] = extra
    elif how == "drop" and len(changed) > 1:
        changed.pop(place)
    elif how == "new":
        changed = draw(tokens(separators))
    return changed


@st.composite
def rpm_version_pairs(draw: st.DrawFn) -> tuple[str, str]:
    """Two rpm version (or release) strings: no epoch, no '-'."""
    first = draw(tokens(RPM_SEPARATORS))
    return "".join(first), "".join(draw(mutation(first, RPM_SEPARATORS)))


@st.composite
def evr_pairs(draw: st.DrawFn, separators: list[str], upstream_start: bool) -> tuple[str, str]:
    """Two [epoch:]version[-release] strings, usually differing in one part only."""
    sides = []
    epoch = draw(epochs)
    version = draw(tokens(separators))
    release = draw(st.one_of(st.none(), tokens(separators)))
    for side in range(2):
        if side == 1:
            part = draw(st.sampled_from(["epoch", "version", "version", "release", "release",
                                         "all"]))
            if part == "epoch":
                epoch = draw(epochs)
            elif part == "version":
                version = draw(mutation(version, separators))
            elif part == "release":
                release = (draw(tokens(separators)) if release is None
                           else draw(st.one_of(st.none(), mutation(release, separators))))
            else:
                epoch, version = draw(epochs), draw(tokens(separators))
                release = draw(st.one_of(st.none(), tokens(separators)))
        text = "".join(version)
        if upstream_start:  # dpkg: the upstream version starts with a digit
            text = "1" + text if not text[0].isdigit() else text
        if release is not None:
            if upstream_start:  # dpkg: with a revision, '-' may appear in upstream as well
                text += draw(st.sampled_from(["", "", "", "", "-", "-1", "-rc"]))
            text += "-" + "".join(release)
        sides.append(text if epoch is None else f"{epoch}:{text}")
    return sides[0], sides[1]


rpm_evr_pairs = evr_pairs(RPM_SEPARATORS, upstream_start=False)
dpkg_pairs = evr_pairs(DPKG_SEPARATORS, upstream_start=True)


# --- oracles --------------------------------------------------------------------------------

# Lua inside an rpm macro: no '%' (the macro engine would expand it). One pair per line.
RPM_VERCMP_LUA = ('%{lua: for line in io.lines() do local s = line:find(" ", 1, true); '
                  'print(rpm.vercmp(line:sub(1, s - 1), line:sub(s + 1)) .. "\\n") end}')


def rpm_vercmp_many(pairs: list[tuple[str, str]]) -> list[int]:
    stdin = "".join(f"{a} {b}\n" for a, b in pairs)
    done = subprocess.run(["rpm", "--eval", RPM_VERCMP_LUA], input=stdin, capture_output=True,
                          text=True, check=True)
    results = [int(line) for line in done.stdout.split()]
    assert len(results) == len(pairs), done.stderr
    return results


DPKG_LOOP = """
while read -r a b; do
  if dpkg --compare-versions "$a" lt "$b"; then echo -1
  elif dpkg --compare-versions "$a" eq "$b"; then echo 0
  else echo 1; fi
done
"""


def dpkg_compare_many(pairs: list[tuple[str, str]]) -> list[int]:
    stdin = "".join(f"{a} {b}\n" for a, b in pairs)
    done = subprocess.run(["sh", "-c", DPKG_LOOP], input=stdin, capture_output=True,
                          text=True, check=True)
    assert done.stderr == "", done.stderr  # dpkg warns about versions it finds invalid
    results = [int(line) for line in done.stdout.split()]
    assert len(results) == len(pairs)
    return results


def both_ways(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Each pair and its mirror: the oracle checks antisymmetry for free."""
    return pairs + [(b, a) for a, b in pairs]


def disagreements(pairs: list[tuple[str, str]], ours: Callable[[str, str], int],
                  theirs: list[int]) -> list[str]:
    return [f"{a!r} vs {b!r}: ours {ours(a, b)}, real {real}"
            for (a, b), real in zip(pairs, theirs, strict=True) if ours(a, b) != real]


# --- rpm ------------------------------------------------------------------------------------


def test_rpm_version_strings_compare_as_real_rpm_does() -> None:
    pairs = both_ways(collect(rpm_version_pairs(), 2000))
    pairs += [("1.0^", "1.0"), ("1.0^git1", "1.0.git1"), ("1.0~rc1^2", "1.0~rc1"),
              ("1^~", "1^"), ("1~^", "1~"), ("a", "1"), ("1.0a", "1.0.a"), ("001", "1"),
              ("1..0", "1.0"), ("1_0", "1.0"), ("1.0.", "1.0"), ("~", "^"), ("^", "0")]
    assert all(is_valid_version(Family.DNF, v) for pair in pairs for v in pair)
    problems = disagreements(pairs, lambda a, b: compare(Family.DNF, a, b),
                             rpm_vercmp_many(pairs))
    assert problems == [], "\n".join(problems)


def test_rpm_epoch_version_release_compare_as_real_rpm_does() -> None:
    pairs = both_ways(collect(rpm_evr_pairs, 2500))
    pairs += [("1.0", "1.0-0"), ("1.0-1", "1.0"), ("0:1.0", "1.0"), ("00:1.0-1", "1.0-1"),
              ("1:0.1", "9.9-9"), ("01:1.0", "1:1.0"), ("1.0-1^", "1.0-1"), ("2.0-~", "2.0")]
    assert all(is_valid_version(Family.DNF, v) for pair in pairs for v in pair)
    problems = disagreements(pairs, lambda a, b: compare(Family.DNF, a, b),
                             rpm_vercmp_many(pairs))
    assert problems == [], "\n".join(problems)


def test_rpm_vercmp_library_disagrees_with_rpm_only_on_caret() -> None:
    """Why versions.py carries its own rpmvercmp: rpm-vercmp treats '^' as a separator."""
    pairs = both_ways(collect(rpm_version_pairs(), 1000))
    real = rpm_vercmp_many(pairs)
    problems = disagreements(pairs, library_rpmvercmp, real)
    assert problems, "rpm-vercmp now agrees with rpm: versions.py could use it again"
    assert all("^" in line.split(": ours")[0] for line in problems), "\n".join(problems)


# Dependency matching (rpmdsCompare / rpmverOverlap) is not reachable from rpm's Lua; the
# rpm Python bindings of the host's Python (Debian package python3-rpm, pulled in by dnf)
# expose it as rpm.ds(...).Compare(...).
RPM_OVERLAP_DRIVER = """
import json, sys, rpm
FLAGS = {"=": rpm.RPMSENSE_EQUAL, ">=": rpm.RPMSENSE_GREATER | rpm.RPMSENSE_EQUAL,
         "<=": rpm.RPMSENSE_LESS | rpm.RPMSENSE_EQUAL, ">": rpm.RPMSENSE_GREATER,
         "<": rpm.RPMSENSE_LESS}
out = []
for (op1, v1), (op2, v2) in json.load(sys.stdin):
    a = rpm.ds(("p", FLAGS[op1], v1), rpm.RPMTAG_PROVIDENAME)
    b = rpm.ds(("p", FLAGS[op2], v2), rpm.RPMTAG_REQUIRENAME)
    out.append(bool(a.Compare(b)))
json.dump(out, sys.stdout)
"""
SYSTEM_PYTHON = "/usr/bin/python3"


def rpm_bindings_present() -> bool:
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import rpm"], capture_output=True, check=False)
    return probe.returncode == 0


def rpm_overlap_many(pairs: list[tuple[Constraint, Constraint]]) -> list[bool]:
    stdin = json.dumps([[[a.op, a.version], [b.op, b.version]] for a, b in pairs])
    done = subprocess.run([SYSTEM_PYTHON, "-c", RPM_OVERLAP_DRIVER], input=stdin,
                          capture_output=True, text=True, check=True)
    results: list[bool] = json.loads(done.stdout)
    return results


rpm_evr_pair_with_ops = st.tuples(rpm_evr_pairs, st.sampled_from(OPERATORS),
                                  st.sampled_from(OPERATORS))


@pytest.mark.skipif(not rpm_bindings_present(),
                    reason="needs rpm's Python bindings (Debian package python3-rpm)")
def test_rpm_constraints_overlap_as_rpm_dependency_matching_does() -> None:
    drawn = collect(rpm_evr_pair_with_ops, 2000)
    pairs = [(Constraint(op1, a), Constraint(op2, b)) for (a, b), op1, op2 in drawn]
    pairs += [(b, a) for a, b in pairs]
    pairs += [(Constraint(op1, a), Constraint(op2, b)) for op1 in OPERATORS for op2 in OPERATORS
              for a, b in [("1.0", "1.0-2"), ("1.0-2", "1.0"), ("1.0", "1:1.0"), ("0:1.0", "1.0"),
                           ("1.0-1", "1.0-2"), ("1.0", "1.0"), ("1.0^", "1.0")]]
    real = rpm_overlap_many(pairs)
    problems = []
    for (a, b), overlap in zip(pairs, real, strict=True):
        ours = not intersect(Family.DNF, [a, b]).is_empty
        if ours != overlap:
            problems.append(f"{a} with {b}: ours {ours}, rpm {overlap}")
        # A provided version `= v` meets a requirement exactly when the two overlap.
        if a.op == "=" and satisfies(Family.DNF, a.version, [b]) != overlap:
            problems.append(f"{a.version} satisfies {b}: ours {not overlap}, rpm {overlap}")
    assert problems == [], "\n".join(problems)


# --- dpkg -----------------------------------------------------------------------------------


def test_dpkg_versions_compare_as_real_dpkg_does() -> None:
    pairs = both_ways(collect(dpkg_pairs, 2000))
    pairs += [("1.0~rc1", "1.0"), ("1:0.1", "9.9"), ("1.0-1", "1.0-2"), ("1.0", "1.0-0"),
              ("0:1.0", "1.0"), ("1.0", "1.0+"), ("1.0a", "1.0+"), ("1.0~", "1.0~~"),
              ("1.0-1~", "1.0-1"), ("01:1", "1:1"), ("1.00", "1.0"), ("1-2-3", "1-2-3.0"),
              ("1.0.", "1.0"), ("1A", "1a"), ("1.0-0", "1.0-~")]
    assert all(is_valid_version(Family.APT, v) for pair in pairs for v in pair)
    problems = disagreements(pairs, lambda a, b: compare(Family.APT, a, b),
                             dpkg_compare_many(pairs))
    assert problems == [], "\n".join(problems)


DPKG_VALIDATE_LOOP = """
while read -r v; do
  if dpkg --validate-version "$v" >/dev/null 2>&1; then echo 1; else echo 0; fi
done
"""


def test_dpkg_validity_matches_dpkg_except_colons_in_upstream() -> None:
    """Ours is dpkg's rule with Debian policy's character set: no ':' after the epoch."""
    texts = collect(st.text(alphabet="0123456789aZ.+~-:_", min_size=1, max_size=8), 1000)
    texts += ["1.0", "1.0-", "a1", "1:a", "1:1:2", "1.0-1-2", "1.0-a_b", "2147483648:1",
              "2147483647:1", "01:1", ":1", "1:", "-1", "1--1"]
    done = subprocess.run(["sh", "-c", DPKG_VALIDATE_LOOP], input="".join(f"{t}\n" for t in texts),
                          capture_output=True, text=True, check=True)
    real = [line == "1" for line in done.stdout.split()]
    problems = []
    for text, dpkg_valid in zip(texts, real, strict=True):
        ours = is_valid_version(Family.APT, text)
        upstream = text.split(":", 1)[1] if ":" in text else text
        # dpkg reads the epoch with strtol(), which also takes a sign: '+1:1.0' passes.
        expected = dpkg_valid and ":" not in upstream and not text.startswith("+")
        if ours != expected:
            problems.append(f"{text!r}: ours {ours}, dpkg {dpkg_valid}")
    assert problems == [], "\n".join(problems)


dpkg_triples = st.tuples(dpkg_pairs, st.sampled_from(OPERATORS))
DPKG_RELATIONS = {"=": "eq", ">=": "ge", "<=": "le", ">": "gt", "<": "lt"}
DPKG_RELATION_LOOP = """
while read -r a rel b; do
  if dpkg --compare-versions "$a" "$rel" "$b"; then echo 1; else echo 0; fi
done
"""


def test_dpkg_constraints_are_met_as_dpkg_relations_say() -> None:
    drawn = collect(dpkg_triples, 1000)
    stdin = "".join(f"{a} {DPKG_RELATIONS[op]} {b}\n" for (a, b), op in drawn)
    done = subprocess.run(["sh", "-c", DPKG_RELATION_LOOP], input=stdin, capture_output=True,
                          text=True, check=True)
    real = [line == "1" for line in done.stdout.split()]
    problems = [f"{a} {op} {b}: ours {not met}, dpkg {met}"
                for ((a, b), op), met in zip(drawn, real, strict=True)
                if satisfies(Family.APT, a, [Constraint(op, b)]) != met]
    assert problems == [], "\n".join(problems)
