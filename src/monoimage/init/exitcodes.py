"""Exit codes of monoimage-init, distinct so that a host (podman, systemd) can tell why.

`run` (PID 1):
    0   stopped because it was asked to (SIGTERM/SIGINT), or every service finished on its own
        without a critical failure. A service that had to be SIGKILLed after its stop timeout
        does not change this: the stop was still requested.
    2   the service table (or a flag) is invalid; nothing was started.
    3   the configure phase failed (runtime directory, template, one-shot command, account);
        the message names the service, the step and the command's output. Restarting the
        container will not help until the configuration changes.
    4   a critical service failed (crash loop past max_restarts within its window, a failed exit
        under restart policy never/on-failure, not ready within its timeout under policy never,
        or a dependency that failed); everything was stopped. Restarting may help.
    70  a bug in monoimage-init itself (traceback printed); services were killed.

`check`: 0 the table is valid, 2 it is not.
`status`: 0 answered, 1 init is not reachable on its socket.
`health`: 0 every service is ready (or finished successfully), 1 otherwise or init is not
    reachable (what HEALTHCHECK expects: Docker and Podman treat 1 as unhealthy).
"""

OK = 0
UNHEALTHY = 1
UNREACHABLE = 1
BAD_TABLE = 2
CONFIGURE_FAILED = 3
CRITICAL_FAILED = 4
INTERNAL_ERROR = 70
