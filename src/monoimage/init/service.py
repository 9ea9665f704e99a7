"""The run-time state of one supervised service, as the main loop and the status protocol see
it. Mutable on purpose: this is the imperative shell around the table's frozen `Service`."""

import os

from .accounts import Account
from .control import Record
from .logs import OutputStream
from .probes import Attempt
from .table import Service

WAITING = "waiting"      # for its dependencies to be ready
STARTING = "starting"    # process started, readiness probe not passed yet
READY = "ready"
BACKOFF = "backoff"      # exited, restart scheduled
STOPPING = "stopping"    # stop signal sent
STOPPED = "stopped"
DONE = "done"            # exited successfully, not to be restarted
FAILED = "failed"
SKIPPED = "skipped"        # its condition does not hold on this host: never started
SATISFIES_DEPENDENTS = (READY, DONE, SKIPPED)
FINISHED = (DONE, FAILED, SKIPPED)


def unmet_condition(spec: Service) -> str | None:
    """The first path of the service's condition that does not exist here, or None."""
    return next((path for path in spec.condition if not os.path.exists(path)), None)


class ServiceRun:
    """One service: its process, its state, its probe, its restart history."""

    def __init__(self, spec: Service, account: Account, env: dict[str, str]) -> None:
        self.spec = spec
        self.account = account
        self.env = env
        self.dependents: list[ServiceRun] = []
        self.state = WAITING
        self.pid: int | None = None        # of its main process, while it runs
        self.starts = 0
        self.recent_exits: tuple[float, ...] = ()
        self.started_at = 0.0               # monotonic, of the current process
        self.ready_since: float | None = None  # epoch seconds
        self.ready_after_ms: int | None = None
        self.restart_at = 0.0
        self.probe_deadline = 0.0
        self.next_probe_at = 0.0
        self.attempt: Attempt | None = None
        self.output: list[OutputStream] = []   # the current process's stdout and stderr
        self.not_ready = False              # killed because its probe timed out
        self.stop_deadline: float | None = None
        self.last_exit: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def restarts(self) -> int:
        return max(0, self.starts - 1)

    def signal_group(self, signum: int) -> None:
        """Send `signum` to the service's process group (its session: it and its children)."""
        if self.pid is not None:
            kill_group(self.pid, signum)

    def status_record(self) -> Record:
        """This service's `service` record of the status protocol."""
        pid = self.pid
        return ("service", [
            ("name", self.name), ("state", self.state), ("pid", pid),
            ("restarts", self.restarts), ("ready_since", self.ready_since),
            ("ready_after_ms", self.ready_after_ms),
            ("rss_kib", None if pid is None else rss_kib(pid)),
            ("critical", self.spec.critical), ("last_exit", self.last_exit),
        ])


def kill_group(pgid: int, signum: int) -> None:
    """killpg that ignores a group already gone."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def rss_kib(pid: int) -> int | None:
    """VmRSS of `pid` in KiB from /proc, None when unknown."""
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:   # bytes: no codec to load
            for line in handle:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None

