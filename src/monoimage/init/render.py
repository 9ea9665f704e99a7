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
import re
from collections.abc import Callable, Mapping

PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
SITE_ENV_PREFIX = "MONOIMAGE_SITE_"
DEFAULT_SECRETS_DIR = "/run/secrets"


class MissingValue(Exception):
    """A placeholder has no value from any source."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def placeholders(text: str) -> list[str]:
    """The placeholder names of `text`, in order of first use."""
    return list(dict.fromkeys(PLACEHOLDER_RE.findall(text)))


def render(text: str, lookup: Callable[[str], str | None]) -> str:
    """`text` with every placeholder replaced by `lookup(name)`; MissingValue if it is None."""
    def substitute(match: re.Match[str]) -> str:
        value = lookup(match.group(1))
        if value is None:
            raise MissingValue(match.group(1))
        return value
    return PLACEHOLDER_RE.sub(substitute, text)


class SiteValues:
    """Looks a name up in secrets, then the environment, then the table's defaults."""

    def __init__(self, defaults: Mapping[str, str], environ: Mapping[str, str],
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
