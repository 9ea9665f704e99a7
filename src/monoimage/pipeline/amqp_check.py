"""A real AMQP 0-9-1 check from the host: the protocol header, then a PLAIN login to a vhost,
as an OpenStack service's oslo.messaging does it (Connection.Start → Start-Ok → Tune → Tune-Ok
→ Open → Open-Ok), then a clean Connection.Close.

A port that merely accepts connections does not pass: the broker must speak AMQP, know the
user and its password, and let it into the vhost. The frames are built and read by the small
pure functions below the socket code.
"""

from __future__ import annotations

import socket
import struct

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_METHOD = 1
FRAME_HEARTBEAT = 8
FRAME_END = 0xCE
MAX_FRAME = 1 << 20     # the frames of a connection's start are small; more is not a broker
CONNECTION = 10
START, START_OK, TUNE, TUNE_OK, OPEN, OPEN_OK, CLOSE, CLOSE_OK = 10, 11, 30, 31, 40, 41, 50, 51


class AmqpError(Exception):
    """The broker did not let the login through; the message says where it stopped."""


def amqp_login(host: str, port: int, user: str, password: str, vhost: str,
               timeout: float = 10.0) -> str:
    """Log in to `vhost` on the broker at host:port; the broker's product and version (from
    Connection.Start), or AmqpError saying what it answered instead."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(PROTOCOL_HEADER)
            payload = _expect(sock, START, "the protocol header")
            product = _server_product(payload)
            sock.sendall(method_frame(START_OK, _table({}) + _short("PLAIN")
                                      + _long(f"\0{user}\0{password}".encode())
                                      + _short("en_US")))
            tune = _expect(sock, TUNE, f"the login of {user!r}")
            channel_max, frame_max, heartbeat = struct.unpack(">HIH", tune[4:12])
            sock.sendall(method_frame(TUNE_OK, struct.pack(">HIH", channel_max, frame_max,
                                                           heartbeat)))
            sock.sendall(method_frame(OPEN, _short(vhost) + _short("") + b"\0"))
            _expect(sock, OPEN_OK, f"opening vhost {vhost!r}")
            sock.sendall(method_frame(CLOSE, struct.pack(">H", 200) + _short("") +
                                      struct.pack(">HH", 0, 0)))
            _expect(sock, CLOSE_OK, "the close")
            return product
    except OSError as error:
        raise AmqpError(f"{host}:{port}: {error.strerror or error}") from None


def method_frame(method: int, arguments: bytes, channel: int = 0) -> bytes:
    """One method frame of the connection class."""
    payload = struct.pack(">HH", CONNECTION, method) + arguments
    return struct.pack(">BHI", FRAME_METHOD, channel, len(payload)) + payload + bytes([FRAME_END])


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """(frame type, payload) of the next frame."""
    head = _read(sock, 7)
    if head.startswith(b"AMQP"):   # the header a broker of another protocol version sends back
        version = ".".join(str(b) for b in (head + _read(sock, 1))[5:8])
        raise AmqpError(f"the broker wants AMQP {version}, not 0-9-1")
    kind, _channel, size = struct.unpack(">BHI", head)
    if kind not in (FRAME_METHOD, 2, 3, FRAME_HEARTBEAT) or size > MAX_FRAME:
        raise AmqpError(f"{head!r}: not an AMQP 0-9-1 broker")
    payload = _read(sock, size)
    if _read(sock, 1) != bytes([FRAME_END]):
        raise AmqpError("a frame without its end octet: not an AMQP 0-9-1 broker")
    return kind, payload


def close_reason(payload: bytes) -> str:
    """`CODE TEXT` of a Connection.Close payload (what a broker says when it refuses)."""
    code = struct.unpack(">H", payload[4:6])[0]
    size = payload[6]
    return f"{code} {payload[7:7 + size].decode('utf-8', 'replace')}"


def _expect(sock: socket.socket, method: int, after: str) -> bytes:
    while True:
        try:
            kind, payload = read_frame(sock)
        except AmqpError:
            raise
        except (ConnectionError, EOFError):
            raise AmqpError(f"the broker closed the connection after {after}") from None
        if kind == FRAME_HEARTBEAT:
            continue
        if kind != FRAME_METHOD or len(payload) < 4:
            raise AmqpError(f"frame type {kind} after {after}: not an AMQP 0-9-1 broker")
        klass, got = struct.unpack(">HH", payload[:4])
        if (klass, got) == (CONNECTION, CLOSE):
            raise AmqpError(f"the broker refused {after}: {close_reason(payload)}")
        if (klass, got) != (CONNECTION, method):
            raise AmqpError(f"method {klass}.{got} after {after}, not {CONNECTION}.{method}")
        return payload


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            if not data and size == 7:
                raise EOFError
            raise AmqpError("the connection ended inside a frame")
        data += chunk
    return data


def _server_product(start: bytes) -> str:
    """'RabbitMQ 3.10.8' from Connection.Start's server-properties (best effort)."""
    size = struct.unpack(">I", start[6:10])[0]
    table = start[10:10 + size]
    found: dict[str, str] = {}
    at = 0
    while at < len(table):
        name_size = table[at]
        name = table[at + 1:at + 1 + name_size].decode("utf-8", "replace")
        at += 1 + name_size
        kind = chr(table[at])
        at += 1
        if kind == "S":
            value_size = struct.unpack(">I", table[at:at + 4])[0]
            found[name] = table[at + 4:at + 4 + value_size].decode("utf-8", "replace")
            at += 4 + value_size
        elif kind == "F":
            at += 4 + struct.unpack(">I", table[at:at + 4])[0]
        elif kind == "t":
            at += 1
        else:
            break   # a kind a broker's properties do not use: enough has been read
    return " ".join(v for v in (found.get("product"), found.get("version")) if v) or "AMQP 0-9-1"


def _short(text: str) -> bytes:
    data = text.encode()
    return bytes([len(data)]) + data


def _long(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _table(entries: dict[str, str]) -> bytes:
    body = b"".join(_short(k) + b"S" + _long(v.encode()) for k, v in entries.items())
    return _long(body)
