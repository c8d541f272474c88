"""Raw HTTP/1.1 and WebSocket framing for the replaying server: bytes in, bytes out.

Written by hand on purpose: the server must write exactly the recorded bytes and see exactly
what a client wrote (header case, masks, fin bits, close codes), which HTTP and WebSocket
libraries normalise away.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterable
from dataclasses import replace

from tests.client.replay.script import header
from tests.transcripts import Record

OPCODES = {"cont": 0, "text": 1, "binary": 2, "close": 8, "ping": 9, "pong": 10}
NAMES = {v: k for k, v in OPCODES.items()}


class Peer:
    """One accepted connection: buffered reads, locked writes."""

    def __init__(self, sock: socket.socket, n: int) -> None:
        self.sock, self.n = sock, n
        self.buf = bytearray()
        self.write_lock = threading.Lock()
        self.close_sent = False

    def _more(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except OSError:
            return False
        self.buf += data
        return bool(data)

    def read_until(self, sep: bytes) -> bytes | None:
        while (i := self.buf.find(sep)) < 0:
            if not self._more():
                return None
        out = bytes(self.buf[: i + len(sep)])
        del self.buf[: i + len(sep)]
        return out

    def read_exact(self, n: int) -> bytes | None:
        while len(self.buf) < n:
            if not self._more():
                return None
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def write(self, data: bytes) -> None:
        with self.write_lock, contextlib.suppress(OSError):
            self.sock.sendall(data)

    def shutdown(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.shutdown()
        self.sock.close()


def ok_response(content_type: str, body: bytes) -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}"
    return head.encode() + b"\r\n\r\n" + body


def http_exchange(port: int, request: bytes) -> bytes:
    """Send raw request bytes to 127.0.0.1:``port`` on a new connection; the response."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        peer = Peer(sock, 0)
        head = peer.read_until(b"\r\n\r\n") or b""
        length = header(head.decode("latin-1"), "content-length") or "0"
        return head + (peer.read_exact(int(length)) or b"")


def ws_frame(opcode: str, payload: bytes) -> bytes:
    """A server frame: fin, unmasked, as every recorded server frame."""
    n = len(payload)
    head = bytes([0x80 | OPCODES[opcode]])
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + n.to_bytes(2, "big")
    else:
        head += bytes([127]) + n.to_bytes(8, "big")
    return head + payload


def header_set(head: str, platform: Iterable[str]) -> set[tuple[str, str]]:
    """Headers as compared: case-insensitive names, any order, without the platform's
    (``platform`` names them; ``sec-fetch-*`` names a prefix) and without what varies by run
    (the key, the Host port, content-length)."""
    skip = {*platform, "content-length"}
    out = set()
    for line in head.split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        if not sep or name in skip or any(name.startswith(p[:-1]) for p in skip if p[-1] == "*"):
            continue
        if name == "sec-websocket-key":
            value = "<key>"
        elif name == "host":
            value = value.rpartition(":")[0] + ":<port>"
        out.add((name, value))
    return out


def read_frame(peer: Peer) -> Record | None:
    """The next frame from a client, as a record; None when the connection ends."""
    head = peer.read_exact(2)
    if head is None:
        return None
    n = head[1] & 0x7F
    if n >= 126:
        size = peer.read_exact(2 if n == 126 else 8)
        if size is None:
            return None
        n = int.from_bytes(size, "big")
    masked = bool(head[1] & 0x80)
    mask = peer.read_exact(4) if masked else b""
    payload = peer.read_exact(n)
    if payload is None or mask is None:
        return None
    if masked:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    opcode = NAMES.get(head[0] & 0x0F, f"opcode-{head[0] & 0x0F}")
    fin = bool(head[0] & 0x80)
    record = Record(0, peer.n, "C", "ws", body=payload, opcode=opcode, fin=fin, masked=masked)
    if opcode == "close" and len(payload) >= 2:
        code = int.from_bytes(payload[:2], "big")
        return replace(record, close_code=code, close_reason=payload[2:].decode())
    return record


def show(record: Record) -> str:
    """One line for a failure message."""
    if record.kind == "http":
        return f"{record.start_line} {record.body[:160]!r}"
    if record.kind == "ws":
        flags = f"fin={int(record.fin)} mask={int(record.masked)}"
        return f"WS {record.opcode} {flags} {record.body[:160]!r}"
    return record.kind
