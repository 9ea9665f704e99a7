"""Config templates: `{{ name }}` placeholders filled from site values at boot.

Deliberately tiny (no Jinja on python3-minimal): only `{{ name }}` with optional inner
whitespace is a placeholder; everything else, `$uri` or a Go-style `{{ $labels.x }}` included,
passes through untouched, so real config files need no escaping.

Where a value comes from, first match wins:
  1. the secret file `<secrets dir>/<name>` (default /run/secrets; one trailing newline
     stripped), mounted at run time so that a secret never enters an image layer;
  2. the environment variable `MONOIMAGE_SITE_<NAME>` (name upper-cased);
  3. the table's `site` default.
"""

import errno
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_WORD = _LETTERS | frozenset("0123456789")
SITE_ENV_PREFIX = "MONOIMAGE_SITE_"
DEFAULT_SECRETS_DIR = "/run/secrets"


class MissingValue(Exception):
    """A placeholder has no value from any source."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _placeholders(text: str) -> "Iterator[tuple[int, int, str]]":
    """(start, end, name) of every placeholder, left to right: what the regular expression
    `\\{\\{\\s*([A-Za-z_][A-Za-z0-9_]*)\\s*\\}\\}` finds (no `re`: it imports `enum`, and
    the two cost PID 1 1.5 MiB of RSS for its whole life)."""
    length = len(text)
    start = text.find("{{")
    while start >= 0:
        index = start + 2
        while index < length and text[index].isspace():
            index += 1
        name_start = index
        if index < length and text[index] in _LETTERS:
            index += 1
            while index < length and text[index] in _WORD:
                index += 1
            name_end = index
            while index < length and text[index].isspace():
                index += 1
            if text.startswith("}}", index):
                yield start, index + 2, text[name_start:name_end]
                start = text.find("{{", index + 2)
                continue
        start = text.find("{{", start + 1)


def placeholders(text: str) -> list[str]:
    """The placeholder names of `text`, in order of first use."""
    return list(dict.fromkeys(name for _, _, name in _placeholders(text)))


def render(text: str, lookup: "Callable[[str], str | None]") -> str:
    """`text` with every placeholder replaced by `lookup(name)`; MissingValue if it is None."""
    pieces: list[str] = []
    done = 0
    for start, end, name in _placeholders(text):
        value = lookup(name)
        if value is None:
            raise MissingValue(name)
        pieces += (text[done:start], value)
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


class SiteValues:
    """Looks a name up in secrets, then the environment, then the table's defaults."""

    def __init__(self, defaults: "Mapping[str, str]", environ: "Mapping[str, str]",
                 secrets_dir: str) -> None:
        self.defaults = dict(defaults)
        self.environ = environ
        self.secrets_dir = secrets_dir

    def __call__(self, name: str) -> str | None:
        secret = self.secret(name)
        if secret is not None:
            return secret
        from_env = self.environ.get(SITE_ENV_PREFIX + name.upper())
        if from_env is not None:
            return from_env
        return self.defaults.get(name)

    def secret(self, name: str) -> str | None:
        """The content of the secret file for `name`, None when there is no such file."""
        try:
            with open(os.path.join(self.secrets_dir, name), encoding="utf-8") as handle:
                content = handle.read()
        except OSError as error:
            if error.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            raise
        return content.removesuffix("\n")
