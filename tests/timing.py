"""Harness timeouts for slow machines: every test deadline is `scaled(seconds)`.

`MONOIMAGE_TEST_TIME_FACTOR` (default 1) multiplies each timeout a test waits for a program,
a container or a port; a loaded CI host sets 2 or 3. It never shortens a wait below what the
test needs, and no test asserts how long something took: they wait for events.
"""

from __future__ import annotations

import math
import os

FACTOR_VARIABLE = "MONOIMAGE_TEST_TIME_FACTOR"


def time_factor() -> float:
    """The factor from the environment; a value that is not a positive number is an error."""
    text = os.environ.get(FACTOR_VARIABLE, "").strip() or "1"
    try:
        factor = float(text)
    except ValueError:
        factor = 0.0
    if not (factor > 0 and math.isfinite(factor)):
        raise ValueError(f"{FACTOR_VARIABLE}={text!r}: expected a positive number, e.g. 2")
    return factor


def scaled(seconds: float) -> float:
    """`seconds` times MONOIMAGE_TEST_TIME_FACTOR: how long a test may wait for something."""
    return seconds * time_factor()
