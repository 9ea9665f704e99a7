"""Package versions and version constraints, ordered the way each packager orders them.

Pure: no I/O. Two families:

APT (dpkg ordering)
    ``[epoch:]upstream[-revision]``, compared with python-debian's ``version_compare``, which
    agrees with ``dpkg --compare-versions`` (checked by tests/test_versions_oracle.py): epochs
    first, then upstream and revision, ``~`` sorting before everything, even the end of the
    string. A missing revision equals ``-0``, so ``1.0`` = ``1.0-0`` and ``= 1.0`` accepts
    both; ``0:1.0`` = ``1.0``. Validity follows dpkg with Debian policy's stricter character
    set (no ``:`` inside the upstream part): python-debian alone would accept ``1.0-`` or an
    upstream that starts with a letter, which dpkg rejects.

DNF (rpm ordering)
    ``[epoch:]version[-release]``. Segments are compared with rpm 4.18's ``rpmvercmp``,
    re-implemented here: the rpm-vercmp package does not know the ``^`` (caret) operator of
    rpm >= 4.15 and treats it as a plain separator, so it calls ``1.0^git1`` equal to
    ``1.0.git1`` where rpm says ``1.0^git1 < 1.0.git1`` (and ``1.0 < 1.0^``). On every input
    without ``^`` the two agree; the tests check this implementation against both the
    library and the real ``rpm``.

    A missing epoch is 0. A missing release means two different things in rpm, and this
    module follows rpm in both places:

    * ``compare`` sorts, like ``rpm.vercmp`` / ``rpmverCmp``: a version without release sorts
      just below the same version with any release (``1.0 < 1.0-0 < 1.0-1``). That keeps
      ``compare`` a total order, which ``pick_best`` and sorting need.
    * ``satisfies`` and ``intersect`` match dependencies, like ``rpmdsCompare`` /
      ``rpmverOverlap``: a constraint version without release stands for every release of
      that version, so ``= 1.0`` accepts ``1.0-7``, ``< 1.0`` rejects it, ``<= 1.0`` accepts
      it, ``> 1.0`` rejects it, and ``>= 1.0-2, <= 1.0`` is not empty. A release-less
      candidate version is matched the same way (as rpm matches ``Provides: foo = 1.0``).

Package names in constraints: the union of Debian's ``[a-z0-9][a-z0-9+.-]+`` and rpm's
(which adds upper case, ``_`` and one-letter names such as ``R``).

Ranges of versions (``intersect``, ``satisfies``, ``pick_best``) live in version_ranges.py.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from debian.debian_support import version_compare as _dpkg_version_compare


class Family(str, enum.Enum):
    """A packager family: how versions are written and ordered."""

    APT = "apt"
    DNF = "dnf"


OPERATORS = ("=", ">=", "<=", ">", "<")

# Spellings people bring from other tools, with the operator they mean here.
_OPERATOR_HINTS = {">>": ">", "<<": "<", "==": "=", "=>": ">=", "=<": "<=", "!=": None}

_INT_MAX = 2**31 - 1  # dpkg refuses larger epochs; rpm stores them as 32-bit integers

_DPKG_VERSION = re.compile(
    r"(?:(?P<epoch>[0-9]+):)?"
    # upstream may hold '-' only when a (non-empty) revision follows the last '-'
    r"(?:[0-9][A-Za-z0-9.+~-]*-[A-Za-z0-9.+~]+|[0-9][A-Za-z0-9.+~]*)"
)
_RPM_VERSION = re.compile(
    r"(?:(?P<epoch>[0-9]+):)?"
    r"(?P<version>[A-Za-z0-9._+~^]+)"
    r"(?:-(?P<release>[A-Za-z0-9._+~^]+))?"
)
# Debian: [a-z0-9][a-z0-9+.-]+ ; rpm adds upper case and '_' (and one-letter names like R).
_PACKAGE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_+.-]*")
_NAME_PART = re.compile(r"[^\s<>=!]*")
_OPERATOR_PART = re.compile(r"[<>=!]+")


def is_valid_version(family: Family, text: str) -> bool:
    """Whether `text` is a version the family's packager accepts."""
    family = Family(family)
    if family == Family.APT:
        match = _DPKG_VERSION.fullmatch(text)
    else:
        match = _RPM_VERSION.fullmatch(text)
    if match is None:
        return False
    epoch = match.group("epoch")
    return epoch is None or int(epoch) <= _INT_MAX


def check_version(family: Family, text: str) -> None:
    if not is_valid_version(family, text):
        raise ValueError(f"{text!r} is not a valid {family.value} version")


# --- rpm ordering ---------------------------------------------------------------------------

_ASCII_DIGITS = frozenset("0123456789")
_ASCII_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_ASCII_ALNUM = _ASCII_DIGITS | _ASCII_LETTERS


def rpmvercmp(a: str, b: str) -> int:
    """rpm 4.18's rpmvercmp() on one epoch, version or release string: -1, 0 or 1."""
    if a == b:
        return 0
    i, j, len_a, len_b = 0, 0, len(a), len(b)
    while i < len_a or j < len_b:
        # Separators (anything but letters, digits, '~' and '^') only split segments.
        while i < len_a and a[i] not in _ASCII_ALNUM and a[i] not in "~^":
            i += 1
        while j < len_b and b[j] not in _ASCII_ALNUM and b[j] not in "~^":
            j += 1
        char_a = a[i] if i < len_a else ""
        char_b = b[j] if j < len_b else ""
        if char_a == "~" or char_b == "~":  # '~' sorts before everything, even the end
            if char_a != "~":
                return 1
            if char_b != "~":
                return -1
            i, j = i + 1, j + 1
            continue
        if char_a == "^" or char_b == "^":  # '^' sorts after the end, before anything else
            if not char_a:
                return -1
            if not char_b:
                return 1
            if char_a != "^":
                return 1
            if char_b != "^":
                return -1
            i, j = i + 1, j + 1
            continue
        if not (char_a and char_b):
            break
        is_number = char_a in _ASCII_DIGITS
        kind = _ASCII_DIGITS if is_number else _ASCII_LETTERS
        end_a, end_b = i, j
        while end_a < len_a and a[end_a] in kind:
            end_a += 1
        while end_b < len_b and b[end_b] in kind:
            end_b += 1
        if end_b == j:  # a number against letters: the number is newer
            return 1 if is_number else -1
        seg_a, seg_b = a[i:end_a], b[j:end_b]
        if is_number:
            seg_a, seg_b = seg_a.lstrip("0"), seg_b.lstrip("0")
            if len(seg_a) != len(seg_b):
                return 1 if len(seg_a) > len(seg_b) else -1
        if seg_a != seg_b:
            return 1 if seg_a > seg_b else -1
        i, j = end_a, end_b
    if i >= len_a and j >= len_b:
        return 0
    return -1 if i >= len_a else 1


@dataclass(frozen=True)
class _Evr:
    epoch: str
    version: str
    release: str | None


def parse_evr(text: str) -> _Evr:
    match = _RPM_VERSION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a valid dnf version")
    return _Evr(match.group("epoch") or "0", match.group("version"), match.group("release"))


def _rpm_compare(a: str, b: str) -> int:
    """rpmverCmp(): a missing release sorts below any release."""
    evr_a, evr_b = parse_evr(a), parse_evr(b)
    result = rpmvercmp(evr_a.epoch, evr_b.epoch) or rpmvercmp(evr_a.version, evr_b.version)
    if result or evr_a.release == evr_b.release:
        return result
    if evr_a.release is None:
        return -1
    if evr_b.release is None:
        return 1
    return rpmvercmp(evr_a.release, evr_b.release)


def compare(family: Family, a: str, b: str) -> int:
    """Order two versions as the family's packager does: -1, 0 or 1.

    APT as `dpkg --compare-versions`; DNF as `rpm.vercmp`, where a missing release sorts below
    any release (constraints read it differently: see `satisfies`).
    Raises ValueError when either is not a valid version of the family.
    """
    family = Family(family)
    check_version(family, a)
    check_version(family, b)
    if family == Family.APT:
        result = _dpkg_version_compare(a, b)
        return (result > 0) - (result < 0)
    return _rpm_compare(a, b)


# --- constraints ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Constraint:
    """One version constraint, such as `>= 2.17`."""

    op: str
    version: str

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ValueError(f"unknown operator {self.op!r}; use one of {', '.join(OPERATORS)}")
        if not self.version:
            raise ValueError("empty version in constraint")

    def __str__(self) -> str:
        return f"{self.op} {self.version}"


def parse_constraint(text: str) -> tuple[str, Constraint | None]:
    """Split `name [op version]` into the package name and its constraint (None if absent).

    The version must be valid for at least one family; whether it is valid for the image's
    own family is checked where the family is known (`satisfies`, `intersect`, ...).
    Raises ValueError with a message that says what is wrong.
    """
    spec = text.strip()
    if not spec:
        raise ValueError("empty package specification")
    name_match = _NAME_PART.match(spec)
    assert name_match is not None  # the pattern matches the empty string too
    name = name_match.group()
    rest = spec[len(name):].strip()
    if not name:
        raise ValueError(f"{text!r}: missing package name before {rest.split()[0]!r}")
    if not _PACKAGE_NAME.fullmatch(name):
        raise ValueError(f"{text!r}: invalid package name {name!r} (letters, digits and "
                         "'+', '.', '-', '_', starting with a letter, digit or '_')")
    if not rest:
        return name, None
    op_match = _OPERATOR_PART.match(rest)
    if op_match is None:
        raise ValueError(f"{text!r}: expected an operator ({', '.join(OPERATORS)}) after "
                         f"{name!r}, got {rest.split()[0]!r}")
    op = op_match.group()
    if op not in OPERATORS:
        hint = _OPERATOR_HINTS.get(op)
        advice = f"; write {hint!r}" if hint else f"; use one of {', '.join(OPERATORS)}"
        raise ValueError(f"{text!r}: unknown operator {op!r}{advice}")
    version_part = rest[op_match.end():].strip()
    if not version_part:
        raise ValueError(f"{text!r}: missing version after {op!r}")
    version, *extra = version_part.split()
    if not (is_valid_version(Family.APT, version) or is_valid_version(Family.DNF, version)):
        raise ValueError(f"{text!r}: {version!r} is not a valid package version")
    if extra:
        raise ValueError(f"{text!r}: unexpected {' '.join(extra)!r} after version {version!r}")
    return name, Constraint(op, version)
