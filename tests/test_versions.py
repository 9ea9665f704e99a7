"""monoimage.recipe.versions: version ordering, constraints and ranges, without the real tools.

tests/test_versions_oracle.py checks the same functions against dpkg and rpm themselves.
"""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rpm_vercmp import vercmp as library_rpmvercmp

from monoimage.recipe.version_ranges import Bound, VersionRange, intersect, pick_best, satisfies
from monoimage.recipe.versions import (
    OPERATORS,
    Constraint,
    Family,
    compare,
    is_valid_version,
    parse_constraint,
)

APT, DNF = Family.APT, Family.DNF


def constraints(*texts: str) -> list[Constraint]:
    result = []
    for text in texts:
        op, version = text.split()
        result.append(Constraint(op, version))
    return result


# --- ordering -------------------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("1.0~rc1", "1.0", -1),      # '~' sorts before the end of the string
    ("1.0~~", "1.0~", -1),
    ("1.0~rc1", "1.0~rc2", -1),
    ("1:0.1", "9.9", 1),         # the epoch decides first
    ("0:1.0", "1.0", 0),         # a missing epoch is 0
    ("01:1.0", "1:1.0", 0),
    ("1.0-1", "1.0-2", -1),      # revisions
    ("1.0", "1.0-0", 0),         # a missing revision equals -0
    ("1.0-1", "1.0.1", -1),
    ("1.01", "1.1", 0),          # numbers, not strings
    ("1.10", "1.9", 1),
    ("1.0a", "1.0+", -1),        # letters sort before other symbols
    ("1.0A", "1.0a", -1),
    ("1.0", "1.0a", -1),
    ("1-2-3", "1-2-3.0", -1),    # '-' inside upstream, revision after the last '-'
    ("2.36-9+deb12u4", "2.36-9+deb12u10", -1),
    ("99999999999999999999999", "99999999999999999999998", 1),
])
def test_apt_orders_like_dpkg(a: str, b: str, expected: int) -> None:
    assert compare(APT, a, b) == expected
    assert compare(APT, b, a) == -expected


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("1.0~rc1", "1.0", -1),      # '~' sorts before the end of the string
    ("1.0~rc1", "1.0~rc2", -1),
    ("1.0^", "1.0", 1),          # '^' sorts after the end of the string ...
    ("1.0^git1", "1.0.1", -1),   # ... and before any further segment
    ("1.0^git1", "1.0.git1", -1),
    ("1.0~rc1^git2", "1.0~rc1", 1),
    ("1.0~rc1^git2", "1.0", -1),
    ("1.0^~", "1.0^", -1),
    ("1.0a", "1.0.1", -1),       # a letter segment is older than a number segment
    ("1.1", "1.a", 1),
    ("1.0alpha", "1.0beta", -1),  # letter segments compare as strings
    ("1.0B", "1.0a", -1),
    ("1.01", "1.1", 0),          # leading zeros do not count
    ("1.0", "1_0", 0),           # separators only split segments
    ("1.0", "1..0", 0),
    ("1.0", "1.0.", 0),
    ("1.0", "1.0.0", -1),
    ("123456789012345678901234567890", "123456789012345678901234567889", 1),
    ("1:0.1", "9.9", 1),         # the epoch decides first
    ("0:1.0", "1.0", 0),         # a missing epoch is 0
    ("1.0-1", "1.0-2", -1),
    ("1.0", "1.0-0", -1),        # rpm.vercmp: a missing release sorts below any release
    ("2.17-1.fc38", "2.17-1.el9", 1),
])
def test_dnf_orders_like_rpm(a: str, b: str, expected: int) -> None:
    assert compare(DNF, a, b) == expected
    assert compare(DNF, b, a) == -expected


def test_rpm_vercmp_library_misorders_caret_so_versions_carries_its_own() -> None:
    assert library_rpmvercmp("1.0^git1", "1.0.git1") == 0
    assert compare(DNF, "1.0^git1", "1.0.git1") == -1


rpm_text = st.text(alphabet="0123456789azAZ._+~", min_size=1, max_size=10)


@settings(max_examples=1000)
@given(rpm_text, rpm_text)
def test_dnf_agrees_with_rpm_vercmp_library_without_caret(a: str, b: str) -> None:
    assert compare(DNF, a, b) == library_rpmvercmp(a, b)


apt_versions = st.builds(
    lambda epoch, upstream, revision: f"{epoch}{upstream}{revision}",
    st.sampled_from(["", "", "0:", "1:", "01:"]),
    st.from_regex(r"[0-9][0-9a-zA-Z.+~]{0,6}", fullmatch=True),
    st.one_of(st.just(""), st.from_regex(r"-[0-9a-z.+~]{1,4}", fullmatch=True)),
)
dnf_versions = st.builds(
    lambda epoch, version, release: f"{epoch}{version}{release}",
    st.sampled_from(["", "", "0:", "1:", "01:"]),
    st.from_regex(r"[0-9a-zA-Z._+~^]{1,6}", fullmatch=True),
    st.one_of(st.just(""), st.from_regex(r"-[0-9a-z._+~^]{1,4}", fullmatch=True)),
)
family_versions = st.one_of(
    st.tuples(st.just(APT), st.lists(apt_versions, min_size=3, max_size=3)),
    st.tuples(st.just(DNF), st.lists(dnf_versions, min_size=3, max_size=3)),
)


@settings(max_examples=500)
@given(family_versions)
def test_ordering_is_antisymmetric_and_transitive(case: tuple[Family, list[str]]) -> None:
    family, versions = case
    for a, b in itertools.permutations(versions, 2):
        assert compare(family, a, b) == -compare(family, b, a)
    for a, b, c in itertools.permutations(versions, 3):
        if compare(family, a, b) <= 0 and compare(family, b, c) <= 0:
            assert compare(family, a, c) <= 0


@pytest.mark.parametrize(("family", "text"), [
    (APT, "a1.0"), (APT, "1.0-"), (APT, "1:a"), (APT, "1.0_1"), (APT, ""), (APT, "1:1:2"),
    (APT, "2147483648:1.0"), (APT, "1.0 "),
    (DNF, "1.0-1-2"), (DNF, "1.0-"), (DNF, ":1.0"), (DNF, ""), (DNF, "1.0/2"), (DNF, "1:2:3"),
])
def test_compare_rejects_invalid_versions(family: Family, text: str) -> None:
    assert not is_valid_version(family, text)
    with pytest.raises(ValueError, match="not a valid"):
        compare(family, text, "1.0")


@pytest.mark.parametrize(("family", "text"), [
    (APT, "1.0"), (APT, "1:2.36-9+deb12u4"), (APT, "1.0~rc1-1~bpo12+1"), (APT, "1-2-3"),
    (APT, "2147483647:1"), (APT, "0.1+git20230101.abcdef-1"),
    (DNF, "2.17.0-1.fc38"), (DNF, "1:1.0^git1-3"), (DNF, "rc1"), (DNF, "1.0_2"),
    (DNF, "1.0~beta"), (DNF, "0:1"),
])
def test_real_world_versions_are_valid(family: Family, text: str) -> None:
    assert is_valid_version(family, text)


def test_family_may_be_given_as_its_name() -> None:
    by_name: str = "dnf"
    assert compare(by_name, "1.0", "1.0-0") == -1  # type: ignore[arg-type]
    assert intersect(by_name, []) == intersect(DNF, [])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        compare("DNF", "1.0", "1.0")  # type: ignore[arg-type]


# --- constraints ----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "name", "constraint"), [
    ("openvswitch >= 2.17", "openvswitch", Constraint(">=", "2.17")),
    ("nginx", "nginx", None),
    ("  nginx  ", "nginx", None),
    ("libc6>=2.36", "libc6", Constraint(">=", "2.36")),
    ("python3-rpm = 4.18.0-1", "python3-rpm", Constraint("=", "4.18.0-1")),
    ("libstdc++6 < 1:13", "libstdc++6", Constraint("<", "1:13")),
    ("NetworkManager <= 1.42.2-1.fc38", "NetworkManager", Constraint("<=", "1.42.2-1.fc38")),
    ("perl_foo > 1.0^git1", "perl_foo", Constraint(">", "1.0^git1")),
    ("R", "R", None),
])
def test_parse_constraint_splits_name_and_constraint(
        text: str, name: str, constraint: Constraint | None) -> None:
    assert parse_constraint(text) == (name, constraint)


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty package specification"),
    ("   ", "empty package specification"),
    ("a >=", "missing version after '>='"),
    (">= 1", "missing package name before '>='"),
    ("a => 1", "unknown operator '=>'; write '>='"),
    ("a >> 1", "unknown operator '>>'; write '>'"),
    ("a << 1", "unknown operator '<<'; write '<'"),
    ("a == 1", "unknown operator '=='; write '='"),
    ("a != 1", "unknown operator '!='; use one of"),
    ("-nginx", "invalid package name '-nginx'"),
    ("ng/inx", "invalid package name 'ng/inx'"),
    ("nginx 1.2", "expected an operator"),
    ("nginx >= 1.2 2", "unexpected '2' after version '1.2'"),
    ("nginx >= 1.2,", "'1.2,' is not a valid package version"),
    ("nginx >= >= 1", "'>=' is not a valid package version"),
    ("nginx = 1.0-", "'1.0-' is not a valid package version"),
])
def test_parse_constraint_explains_junk(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^.*" + message.replace("+", r"\+")):
        parse_constraint(text)


def test_constraint_prints_as_written_and_rejects_unknown_operators() -> None:
    assert str(Constraint(">=", "2.17")) == ">= 2.17"
    with pytest.raises(ValueError, match="unknown operator '=>'"):
        Constraint("=>", "1")
    with pytest.raises(ValueError, match="empty version"):
        Constraint("=", "")


@pytest.mark.parametrize(("family", "version", "texts", "expected"), [
    (APT, "2.17.1-1", [">= 2.17"], True),
    (APT, "2.17~rc1-1", [">= 2.17"], False),
    (APT, "1.0", ["= 1.0-0"], True),
    (APT, "1.0-1", ["= 1.0"], False),
    (APT, "1:1.0", ["< 2.0"], False),
    (APT, "1.5", [">= 1.0", "< 2.0"], True),
    (APT, "2.0", [">= 1.0", "< 2.0"], False),
    (APT, "1.0", [], True),
    # rpm dependency matching: a constraint without release covers every release.
    (DNF, "1.0-7", ["= 1.0"], True),
    (DNF, "1.0-7", ["<= 1.0"], True),
    (DNF, "1.0-7", [">= 1.0"], True),
    (DNF, "1.0-7", ["< 1.0"], False),
    (DNF, "1.0-7", ["> 1.0"], False),
    (DNF, "1.0-7", ["= 1.0-7"], True),
    (DNF, "1.0-7", ["> 1.0-6"], True),
    (DNF, "1.0-7", ["= 1:1.0"], False),
    (DNF, "0:1.0-7", ["= 1.0"], True),
    (DNF, "1.0", ["> 1.0-2"], True),   # a release-less candidate: rpm matches it the same way
    (DNF, "1.0", ["< 1.0"], False),
    (DNF, "1.0^git3-1", ["> 1.0"], True),
    (DNF, "1.0~rc1-1", [">= 1.0"], False),
])
def test_satisfies(family: Family, version: str, texts: list[str], expected: bool) -> None:
    assert satisfies(family, version, constraints(*texts)) is expected


def test_satisfies_checks_the_version_against_the_family() -> None:
    with pytest.raises(ValueError, match="'1.0-1-2' is not a valid dnf version"):
        satisfies(DNF, "1.0-1-2", constraints(">= 1.0"))
    with pytest.raises(ValueError, match="'a1' is not a valid apt version"):
        satisfies(APT, "1.0", constraints(">= a1"))


# --- ranges ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("family", "texts", "shown", "empty"), [
    (APT, [], "any", False),
    (APT, [">= 1.2", "< 2"], ">= 1.2, < 2", False),
    (APT, ["= 1.4-2"], "= 1.4-2", False),
    (APT, [">= 1", ">= 2", "> 2", "<= 5", "< 5"], "> 2, < 5", False),
    (APT, [">= 1.0", "<= 1.0"], "= 1.0", False),
    (APT, [">= 1.0", "<= 1.0-0"], "= 1.0", False),  # dpkg: 1.0 and 1.0-0 are equal
    (APT, ["= 1.0", "= 1.0-0"], "= 1.0", False),
    (APT, ["= 1.0", "= 1:1.0"], ">= 1:1.0, <= 1.0", True),
    (APT, [">= 2", "< 1"], ">= 2, < 1", True),
    (APT, ["> 1.0", "< 1.0-0"], "> 1.0, < 1.0-0", True),
    (APT, ["> 1.0", "<= 1.0-5"], "> 1.0, <= 1.0-5", False),
    (APT, [">= 2.0~rc1", "< 2.0"], ">= 2.0~rc1, < 2.0", False),
    (DNF, ["= 1.0"], "= 1.0", False),
    (DNF, [">= 1.0", "<= 1.0"], "= 1.0", False),
    (DNF, ["= 1.0", "= 1.0-0"], "= 1.0-0", False),   # = 1.0 covers every release of 1.0
    (DNF, ["= 1.0", "= 1:1.0"], ">= 1:1.0, <= 1.0", True),
    (DNF, [">= 1.0-2", "<= 1.0"], ">= 1.0-2, <= 1.0", False),
    (DNF, [">= 1.0-2", "< 1.0"], ">= 1.0-2, < 1.0", True),
    (DNF, ["> 1.0", "<= 1.0-5"], "> 1.0, <= 1.0-5", True),
    (DNF, ["> 1.0", "< 1.0^"], "> 1.0, < 1.0^", False),
    (DNF, ["= 1.0-1", "= 1.0-2"], ">= 1.0-2, <= 1.0-1", True),
    (DNF, [">= 1.0", "> 1.0-3"], "> 1.0-3", False),
    (DNF, [">= 1.0", "> 1.0-3", "> 1.0"], "> 1.0", False),
])
def test_intersect(family: Family, texts: list[str], shown: str, empty: bool) -> None:
    result = intersect(family, constraints(*texts))
    assert str(result) == shown
    assert result.is_empty is empty


def test_version_range_exposes_its_bounds() -> None:
    assert intersect(APT, constraints(">= 1.2", "< 2")) == VersionRange(
        APT, lower=Bound("1.2", inclusive=True), upper=Bound("2", inclusive=False))
    assert intersect(DNF, constraints("<= 3")) == VersionRange(DNF, None, Bound("3", True))


# Versions chosen to collide: equal spellings (1.0, 1.0-0, 0:1.0, 01.0), release-less versions
# next to released ones, '~' and '^' neighbours, epochs.
POOL = {
    APT: ["1.0", "1.0-0", "0:1.0", "01.0", "1.00", "1.0-1", "1.0-2", "1.0~rc1", "1.0+b1",
          "1:0.1", "2.0", "1.0.0", "1.0a", "1.0-1~bpo1"],
    DNF: ["1.0", "1.0-0", "0:1.0", "01.0", "1_0", "1.0-1", "1.0-2", "1.0~rc1", "1.0^git1",
          "1:0.1", "2.0", "1.0.0", "1.0-1.fc38", "0:1.0-1", "1.0^git1-1", "1:1.0"],
}


@st.composite
def family_and_constraints(draw: st.DrawFn) -> tuple[Family, list[Constraint]]:
    family = draw(st.sampled_from([APT, DNF]))
    versions = st.one_of(st.sampled_from(POOL[family]),
                         apt_versions if family == APT else dnf_versions)
    made = draw(st.lists(st.builds(Constraint, st.sampled_from(OPERATORS), versions),
                         min_size=1, max_size=6))
    return family, made


@settings(max_examples=400)
@given(family_and_constraints(), st.randoms(use_true_random=False))
def test_intersect_does_not_depend_on_constraint_order(
        case: tuple[Family, list[Constraint]], rnd: random.Random) -> None:
    family, made = case
    expected = intersect(family, made)
    for _ in range(5):
        shuffled = list(made)
        rnd.shuffle(shuffled)
        assert intersect(family, shuffled) == expected
    assert intersect(family, made + made) == expected


def as_constraints(found: VersionRange) -> list[Constraint]:
    result = []
    if found.lower is not None:
        result.append(Constraint(">=" if found.lower.inclusive else ">", found.lower.version))
    if found.upper is not None:
        result.append(Constraint("<=" if found.upper.inclusive else "<", found.upper.version))
    return result


@settings(max_examples=400)
@given(family_and_constraints(), st.lists(st.sampled_from(sorted(set(POOL[APT] + POOL[DNF]))),
                                          min_size=1, max_size=8))
def test_intersect_allows_exactly_the_versions_every_constraint_allows(
        case: tuple[Family, list[Constraint]], probes: list[str]) -> None:
    family, made = case
    found = intersect(family, made)
    for version in probes:
        if not is_valid_version(family, version):
            continue
        if family == DNF and "-" not in version:
            continue  # a release-less candidate is matched per constraint by rpm, see below
        every = satisfies(family, version, made)
        assert satisfies(family, version, as_constraints(found)) == every
        if every:
            assert not found.is_empty


def test_release_less_dnf_candidate_is_matched_per_constraint_as_rpm_does() -> None:
    # rpm: Provides `= 1.0` overlaps both requirements, though no single release meets both.
    made = constraints("> 1.0-2", "< 1.0-1")
    assert satisfies(DNF, "1.0", made)
    assert intersect(DNF, made).is_empty


# --- picking --------------------------------------------------------------------------------


@pytest.mark.parametrize(("family", "candidates", "texts", "best"), [
    (APT, ["1.0", "2.0~rc1", "2.0", "1:0.1"], [], "1:0.1"),
    (APT, ["1.0", "2.0~rc1", "2.0", "1:0.1"], ["< 1:0"], "2.0"),
    (APT, ["1.0", "2.0~rc1", "2.0", "1:0.1"], ["< 2.0"], "2.0~rc1"),
    (APT, ["1.0", "2.0"], ["> 3"], None),
    (APT, [], [], None),
    (APT, ["1.0-0", "1.0"], [], "1.0"),            # equal for dpkg: the smallest spelling
    (APT, ["1.0", "1.0-0"], [], "1.0"),
    (DNF, ["1.0-1", "1.0-2", "1.0^git1-1", "1.1~rc1-1"], ["= 1.0"], "1.0-2"),
    (DNF, ["1.0-1", "1.0-2", "1.0^git1-1", "1.1~rc1-1"], [">= 1.0"], "1.1~rc1-1"),
    (DNF, ["1.0-1", "1.0-2", "1.0^git1-1", "1.1~rc1-1"], ["< 1.1~"], "1.0^git1-1"),
    (DNF, ["1.0", "1.0-1"], [], "1.0-1"),          # rpm sorts a missing release lowest
    (DNF, ["2:1.0-1", "1:9.0-1", "9.9-9"], [], "2:1.0-1"),
])
def test_pick_best_takes_the_highest_fitting_candidate(
        family: Family, candidates: list[str], texts: list[str], best: str | None) -> None:
    assert pick_best(family, candidates, constraints(*texts)) == best
    assert pick_best(family, reversed(candidates), iter(constraints(*texts))) == best
