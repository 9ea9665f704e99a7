"""The control channel into a VM: QEMU's guest agent (Debian's `qemu-guest-agent` in the guest)
over a virtio-serial port, without sshd, a guest network or any code of ours in the guest.

`GuestAgent.run(argv)` runs a program in the guest (`guest-exec`, arguments as a list, never a
shell string), under the guest's coreutils `timeout`, and returns a `Completed` as the
build-host runner does. Output is captured by the agent (base64 in its answer).
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monoimage.errors import UserError
from monoimage.tools.run import Completed

POLL = 0.2


class AgentError(UserError):
    """The guest agent did not answer, or answered with an error."""


class GuestAgent:
    """A connection to the guest agent's socket; `wait()` before the first `run()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock: socket.socket | None = None
        self._buffer = b""

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def wait(self, deadline: float, alive: Any = lambda: True) -> None:
        """Until the agent answers a `guest-sync` (the guest has booted to its agent), or
        `deadline` (time.monotonic) passes: an AgentError then. `alive()` False stops early."""
        while time.monotonic() < deadline:
            if not alive():
                raise AgentError("the VM ended before its guest agent answered")
            try:
                self._connect()
                token = secrets.randbelow(1 << 30)
                self._send({"execute": "guest-sync", "arguments": {"id": token}})
                if self._read_until(lambda a, token=token: a.get("return") == token,
                                    min(deadline, time.monotonic() + 3)):
                    return
            except OSError:
                self.close()
            time.sleep(POLL)
        raise AgentError("the VM's guest agent did not answer in time")

    def run(self, argv: Sequence[str], timeout: float = 60.0) -> Completed:
        """Run `argv` in the guest to its end (killed after `timeout` s by the guest's
        `timeout`, exit 124 then); stdout and stderr captured."""
        limit = max(1, int(timeout))
        args = ["--kill-after=5", f"{limit}", *argv]
        pid = self.call("guest-exec", {"path": "/usr/bin/timeout", "arg": args,
                                       "capture-output": True})["pid"]
        deadline = time.monotonic() + limit + 15
        while time.monotonic() < deadline:
            status = self.call("guest-exec-status", {"pid": pid})
            if status.get("exited"):
                code = status.get("exitcode", -status.get("signal", 1))
                return Completed(tuple(argv), int(code), _data(status, "out-data"),
                                 _data(status, "err-data"))
            time.sleep(POLL)
        raise AgentError(f"in the VM, {' '.join(argv[:3])}: no end within {timeout:g} s")

    def call(self, command: str, arguments: dict[str, Any] | None = None,
             timeout: float = 30.0) -> Any:
        """One agent command; its `return` value, or an AgentError with the agent's words."""
        message: dict[str, Any] = {"execute": command}
        if arguments is not None:
            message["arguments"] = arguments
        try:
            self._send(message)
            answer = self._read_until(lambda a: "return" in a or "error" in a,
                                      time.monotonic() + timeout)
        except OSError as error:
            raise AgentError(f"guest agent {command}: {error}") from None
        if answer is None:
            raise AgentError(f"guest agent {command}: no answer within {timeout:g} s")
        if "error" in answer:
            raise AgentError(f"guest agent {command}: {answer['error'].get('desc')}")
        return answer["return"]

    def _connect(self) -> None:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(str(self.path))
            self._sock, self._buffer = sock, b""

    def _send(self, message: dict[str, Any]) -> None:
        self._connect()
        assert self._sock is not None
        self._sock.sendall(json.dumps(message).encode() + b"\n")

    def _read_until(self, wanted: Any, deadline: float) -> dict[str, Any] | None:
        assert self._sock is not None
        while True:
            while b"\n" in self._buffer:
                line, _, self._buffer = self._buffer.partition(b"\n")
                try:
                    answer = json.loads(line.strip(b"\xff").decode(errors="replace") or "{}")
                except ValueError:
                    continue  # an answer to a command of an earlier connection, cut short
                if isinstance(answer, dict) and wanted(answer):
                    return answer
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(1 << 16)
            except TimeoutError:
                return None
            if not chunk:
                raise ConnectionResetError("the guest agent's socket closed")
            self._buffer += chunk


def _data(status: dict[str, Any], key: str) -> bytes:
    return base64.b64decode(status.get(key, "")) if status.get(key) else b""
