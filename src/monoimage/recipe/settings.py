"""Every recipe key that has a default, declared once: type, default, what is allowed, meaning.

The model's dataclass defaults, the parser's defaults and minimums (`fields.py` looks a key up
by its path) and the reference table in `docs/recipes.md` all read this table, so a default
cannot differ between them. A key is named as the user writes it, `[]` standing for an item of
a list: `ready.timeout`, `config.templates[].mode`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from monoimage.recipe.limits import LIMITS
from monoimage.recipe.located_yaml import KeyPath, format_path

Kind = Literal["text", "flag", "whole", "number", "choice", "mode", "texts"]
RecipeFile = Literal["image", "service"]

KIND_NAMES: dict[Kind, str] = {
    "text": "text", "flag": "true/false", "whole": "whole number", "number": "number",
    "choice": "one of", "mode": "octal mode", "texts": "list of text",
}


@dataclass(frozen=True)
class Setting:
    """One key with a default; `minimum` (numbers) or `choices` (one of) is what the parser checks."""

    key: str
    file: RecipeFile
    kind: Kind
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None  # else the limit of every duration or count (limits.py)
    choices: tuple[str, ...] = ()
    rule: str = ""  # what else is allowed, checked by the parser's own reader; for the docs

    @property
    def allowed(self) -> str:
        if self.choices:
            return ", ".join(f"`{c}`" for c in self.choices)
        bounds = []
        if self.minimum is not None:
            bounds.append(f"at least {_shown(self.minimum)}")
        if self.maximum is not None:
            bounds.append(f"at most {_shown(self.maximum)}")
        return ", ".join(bounds + ([self.rule] if self.rule else []))


def _image(key: str, kind: Kind, default: Any, help: str, **limits: Any) -> Setting:
    return Setting(key, "image", kind, default, help, **limits)


def _service(key: str, kind: Kind, default: Any, help: str, **limits: Any) -> Setting:
    return Setting(key, "service", kind, default, help, **limits)


_TABLE = (
    _image("image.tag", "text", "latest", "the build tags localhost/NAME:TAG",
           rule="letters, digits, `_ . -`; at most 128"),
    _image("distro.packager", "choice", "apt", "the distribution's package manager",
           choices=("apt", "dnf")),
    _image("distro.architecture", "text", "amd64", "the architecture packages are installed for"),
    _image("distro.variant", "choice", "minbase", "the mmdebstrap variant of the apt base",
           choices=("minbase", "essential", "required")),
    _image("distro.recommends", "flag", False, "apt also installs recommended packages"),
    _image("distro.repositories[].components", "texts", ("main",), "apt repository components"),
    _image("distro.repositories[].trusted", "flag", False,
           "a local, unsigned apt repository (apt's [trusted=yes])"),
    _image("distro.repositories[].gpgcheck", "flag", False, "dnf checks package signatures"),
    _image("layering.policy", "choice", "packages",
           "packages: layers by package, stable across rebuilds; single: one squashed layer",
           choices=("packages", "single")),
    _image("layering.max_layers", "whole", 60, "the most layers of a packages image, metadata and init included",
           minimum=2, maximum=127),
    _image("layering.updates", "choice", "layers",
           "layers: a rebuild keeps the previous image's plan; delta: the previous image's "
           "layers byte for byte plus one layer of what changed", choices=("layers", "delta")),
    _image("layering.max_deltas", "whole", 8,
           "delta layers over one base before a rebuild compacts the chain", minimum=1,
           maximum=100),
    _image("layering.max_shadowed", "number", 0.25,
           "share of the image's bytes hidden by delta layers before a rebuild compacts",
           minimum=0.0, maximum=1.0),
    _image("strip.docs", "flag", True, "remove /usr/share/doc (copyright files stay)"),
    _image("strip.man", "flag", True, "remove man and info pages"),
    _image("strip.locales", "flag", True, "remove /usr/share/locale"),
    _image("runtime.memory", "text", "1g", "the memory limit of `--profile small-host`",
           rule="a size such as `512m` or `1g`"),
    _image("runtime.pids_limit", "whole", 2048, "the process limit of `--profile small-host`",
           minimum=16, maximum=4194304),
    _image("runtime.read_only", "flag", True,
           "`--profile small-host` runs the container with a read-only root"),
    _image("runtime.network", "choice", "private",
           "host: the container shares the host's network namespace (iscsid's NETLINK_ISCSI, "
           "OVS bridges on host interfaces); its ports are then the host's, not published",
           choices=("private", "host")),
    _image("runtime.pid", "choice", "private",
           "host: the host's PID namespace (the init is then not PID 1)",
           choices=("private", "host")),
    _image("runtime.ipc", "choice", "private", "host: the host's IPC namespace",
           choices=("private", "host")),
    _image("runtime.privileged", "flag", False,
           "every capability and every host device: only where a capability list and "
           "`devices` cannot do"),
    _image("runtime.devices", "texts", (), "host devices given to the container",
           rule="paths under /dev"),
    _image("runtime.host_mounts[].read_only", "flag", True,
           "the host path is mounted read-only (`source`, `target`: absolute paths; "
           "not `/` nor a system tree such as /etc, /usr, /proc, /sys)"),
    _image("site.NAME.secret", "flag", False,
           "NAME (a `{{ NAME }}` of the templates) has no default in the image: a secret given at run time (secret file or "
           "`MONOIMAGE_SITE_NAME`), never written into a layer", rule="no `default` with it"),
    _image("site.NAME.required", "flag", False,
           "NAME has no default in the image: given at run time, like a secret but not hidden",
           rule="no `default` with it"),
    _service("description", "text", "", "one line on what the service is"),
    _service("config.templates[].mode", "mode", 0o644, "the rendered file's mode",
             rule="a quoted octal string"),
    _service("config.templates[].owner", "text", "root", "the rendered file's owner",
             rule="a user name"),
    _service("config.commands[].user", "text", "root", "who runs the configure command",
             rule="a user name"),
    _service("run.user", "text", "root", "who runs the service", rule="a user name"),
    _service("run.workdir", "text", "/", "the service's working directory",
             rule="an absolute path"),
    _service("ready.tcp.host", "text", "127.0.0.1", "the address the tcp probe connects to"),
    _service("ready.http.path", "text", "/", "the path the http probe GETs",
             rule="starts with `/`; printable ASCII, no spaces"),
    _service("ready.http.status", "whole", 200, "the status the http probe's answer must have",
             minimum=100, maximum=599),
    _service("ready.timeout", "number", 30.0, "seconds the probe may take to pass",
             minimum=0.1),
    _service("ready.interval", "number", 0.1, "seconds between two probes", minimum=0.01),
    _service("restart.policy", "choice", "on-failure", "when the init restarts the service",
             choices=("always", "on-failure", "never")),
    _service("restart.backoff.initial", "number", 0.5, "seconds before the first restart",
             minimum=0.0),
    _service("restart.backoff.max", "number", 30.0, "the longest wait between restarts",
             minimum=0.0, rule="and at least `backoff.initial`"),
    _service("restart.max_restarts", "whole", 5, "more exits than this within `window` fail the service", minimum=0),
    _service("restart.window", "number", 60.0, "seconds over which exits are counted",
             minimum=1.0),
    _service("stop.signal", "text", "SIGTERM", "the signal that stops the service",
             rule="a signal name"),
    _service("stop.timeout", "number", 10.0, "seconds before SIGKILL follows", minimum=0.1),
    _service("reload_signal", "text", "SIGHUP", "the signal that reloads the service",
             rule="a signal name"),
    _service("critical", "flag", True, "when it keeps failing, the container exits non-zero"),
    _service("runtime_dirs[].owner", "text", "root", "the directory's owner", rule="a user name"),
    _service("runtime_dirs[].mode", "mode", 0o755, "the directory's mode",
             rule="a quoted octal string"),
)

SETTINGS: dict[str, Setting] = {s.key: s for s in _TABLE}


def default(key: str) -> Any:
    """The default of the recipe key `key` (for the model's dataclass fields)."""
    return SETTINGS[key].default


def setting_at(path: KeyPath) -> Setting | None:
    """The setting of the key at `path` (`config.templates[0].mode`, `site.token.secret`), or
    None when it has none."""
    if len(path) == 3 and path[0] == "site":
        path = ("site", "NAME", path[2])
    return SETTINGS.get(re.sub(r"\[\d+\]", "[]", format_path(path)))


def reference_table() -> str:
    """The Markdown reference of every key with a default, one table per recipe file."""
    parts = []
    for file, title in (("image", "In an image recipe"),
                        ("service", "In a service recipe (`services/<name>.yaml`)")):
        rows = [f"| `{s.key}` | {KIND_NAMES[s.kind]} | {_shown(s.default, s.kind)} "
                f"| {s.allowed} | {s.help} |" for s in _TABLE if s.file == file]
        parts.append("\n".join([f"{title}:", "", "| key | type | default | allowed | meaning |",
                                "| --- | --- | --- | --- | --- |", *rows]))
    parts.append("\n".join(["Limits every recipe is held to:", "", "| what | at most |",
                            "| --- | --- |", *(f"| {what} | {bound} |" for what, bound in LIMITS)]))
    return "\n\n".join(parts) + "\n"


def _shown(value: Any, kind: Kind = "number") -> str:
    """A value as a recipe writes it."""
    if kind == "mode":
        return f'`"{value:04o}"`'
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    if isinstance(value, tuple):
        return "`[" + ", ".join(value) + "]`"
    return f"`{value}`" if value != "" else '`""`'
