"""What to do when a service's main process ends: restart it (after how long), call it done,
or give up. Pure, so the crash-loop arithmetic is tested without processes.

Backoff doubles with every exit still inside the window (backoff_initial, 2x, 4x, ... capped
at backoff_max), so a service that ran fine for a whole window starts over at backoff_initial.
A service that exits more than max_restarts times within `window` seconds is failed.
"""

from .table import Restart

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple
else:
    from .tuples import NamedTuple

RESTART = "restart"
DONE = "done"
FAILED = "failed"


class Decision(NamedTuple):
    action: str                 # RESTART | DONE | FAILED
    delay: float                # seconds before the restart (RESTART only)
    recent_exits: tuple[float, ...]
    reason: str


def after_exit(restart: Restart, failed: bool, recent_exits: tuple[float, ...],
               now: float) -> Decision:
    """Decide after an exit at monotonic time `now`; `failed` is a non-zero exit, a signal
    death or a readiness timeout; `recent_exits` are the earlier exit times kept so far."""
    recent = tuple(t for t in recent_exits if now - t < restart.window) + (now,)
    if restart.policy == "never" or (restart.policy == "on-failure" and not failed):
        if failed:
            return Decision(FAILED, 0.0, recent, "restart policy is never")
        return Decision(DONE, 0.0, recent, f"restart policy is {restart.policy}")
    if len(recent) > restart.max_restarts:
        return Decision(FAILED, 0.0, recent,
                        f"exited {len(recent)} times within {restart.window:g} s "
                        f"(max_restarts {restart.max_restarts})")
    delay = min(restart.backoff_initial * 2 ** (len(recent) - 1), restart.backoff_max)
    return Decision(RESTART, delay, recent, f"restart policy is {restart.policy}")
