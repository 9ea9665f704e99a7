"""The stand-in control plane's parts that need no broker: when its image is built again, what
the AMQP check says to a port that does not speak AMQP, and `boot --control-plane` refusing
what it cannot do before any work. The real broker (RabbitMQ in its own container, a login
with the generated user) runs in tests/test_boot_edge_compute.py."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from monoimage.image import LABEL_RECIPE_DIGEST
from monoimage.pipeline.amqp_check import (
    CLOSE,
    START,
    AmqpError,
    amqp_login,
    close_reason,
    method_frame,
)
from monoimage.pipeline.control_plane import image_state, standin_recipe_path
from monoimage.recipe.load import load_recipe

REPO = Path(__file__).resolve().parent.parent
RECIPES = REPO / "recipes"
MONOIMAGE = (sys.executable, "-c", "from monoimage.cli import main; main()")


def test_the_standin_image_is_reused_only_when_built_from_this_recipe():
    recipe = load_recipe(standin_recipe_path(RECIPES / "edge-compute.yaml"))
    assert image_state(None, recipe) == "missing"
    assert image_state({LABEL_RECIPE_DIGEST: recipe.digest}, recipe) == "reuse"
    assert image_state({LABEL_RECIPE_DIGEST: "sha256:" + "0" * 64}, recipe) == "stale"
    assert image_state({}, recipe) == "stale"   # an image of that tag monoimage did not build


def test_the_standin_recipe_is_rabbitmq_from_debian_alone():
    recipe = load_recipe(RECIPES / "control-plane-standin.yaml")
    assert [s.name for s in recipe.services] == ["rabbitmq"]
    assert [str(p) for p in recipe.ports] == ["5672/tcp"]
    assert recipe.runtime.grants == ()      # no host integration: its own network


@pytest.fixture
def server() -> Iterator[tuple[int, list[bytes]]]:
    """A loopback TCP server that answers each connection with the next canned reply."""
    replies: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(8)
                if replies:
                    conn.sendall(replies.pop(0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port, replies
    listener.close()


def test_a_port_that_is_not_amqp_does_not_pass(server):
    port, replies = server
    replies.append(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    with pytest.raises(AmqpError, match="not an AMQP 0-9-1 broker"):
        amqp_login("127.0.0.1", port, "u", "p", "v", timeout=5)
    replies.append(b"")          # accepts, then closes without a word
    with pytest.raises(AmqpError, match="closed the connection after the protocol header"):
        amqp_login("127.0.0.1", port, "u", "p", "v", timeout=5)


def test_a_broker_that_refuses_is_quoted():
    refusal = method_frame(CLOSE, struct.pack(">H", 403) + bytes([14]) + b"ACCESS_REFUSED"
                           + struct.pack(">HH", 10, 11))
    assert close_reason(refusal[7:-1]) == "403 ACCESS_REFUSED"
    start = method_frame(START, b"\x00\x09")
    assert start[:3] == b"\x01\x00\x00" and start[-1] == 0xCE


def test_nothing_listening_is_one_line():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(AmqpError, match=f"127.0.0.1:{port}: "):
        amqp_login("127.0.0.1", port, "u", "p", "v", timeout=2)


@pytest.mark.parametrize(("args", "says"), [
    (["--recipe", str(RECIPES / "edge-lite.yaml")],
     "monoimage: --control-plane standin: edge-lite has no site value 'transport_url'"),
    (["--recipe", str(RECIPES / "edge-compute.yaml"), "--site", "transport_url=rabbit://x"],
     "monoimage: --control-plane standin gives transport_url: do not give --site"),
])
def test_boot_with_a_standin_refuses_before_any_work(args, says):
    done = subprocess.run([*MONOIMAGE, "boot", "localhost/never-built:x", *args,
                           "--control-plane", "standin"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 2
    assert done.stderr.splitlines()[0].startswith(says), done.stderr
