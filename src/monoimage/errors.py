"""Errors a user can cause: one clear message, exit code 2, no traceback."""


class UserError(Exception):
    """Bad input (recipe, flag, image, missing tool): the CLI prints the message and exits 2."""

    exit_code = 2


class RecipeError(UserError):
    """A recipe problem located as `FILE:LINE: key.path: what is wrong`."""

    def __init__(self, file: str, line: int, key_path: str, message: str) -> None:
        self.file = file
        self.line = line
        self.key_path = key_path
        self.message = message
        where = f"{file}:{line}: " if line else f"{file}: "
        key = f"{key_path}: " if key_path else ""
        super().__init__(f"{where}{key}{message}")


class MissingToolError(UserError):
    """A system tool monoimage drives (buildah, podman, …) is not installed."""

    def __init__(self, tool: str, package: str) -> None:
        super().__init__(f"{tool}: not found on PATH; install the Debian package '{package}' "
                         f"(scripts/setup does)")
