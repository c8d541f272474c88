"""Raw TCP connections for replaying recorded traffic: bytes out, timestamped bytes in.

A :class:`Wire` is one client connection to a server on 127.0.0.1. A reader thread takes
every byte as it arrives and notes when, so a replay can tell when an answer came even if it
reads it later. Reading parses what a Sente client reads: an HTTP response (head and
``Content-Length`` body), a WebSocket frame, a fixed run of bytes, or the server's FIN.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from dataclasses import dataclass

OPCODES = {0x0: "cont", 0x1: "text", 0x2: "binary", 0x8: "close", 0x9: "ping", 0xA: "pong"}
OPCODE_OF = {name: code for code, name in OPCODES.items()}


class WireTimeout(AssertionError):
    """Nothing (or not enough) arrived in time."""


@dataclass(frozen=True)
class HttpAnswer:
    head: str
    body: bytes
    at: float

    @property
    def start_line(self) -> str:
        return self.head.split("\r\n", 1)[0]

    @property
    def headers(self) -> list[tuple[str, str]]:
        pairs = (line.split(":", 1) for line in self.head.split("\r\n")[1:] if line)
        return [(name, value.strip()) for name, value in pairs]

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)


@dataclass(frozen=True)
class Frame:
    opcode: str
    fin: bool
    masked: bool
    payload: bytes
    at: float


def encode_frame(opcode: str, payload: bytes, *, fin: bool = True) -> bytes:
    """A client frame: masked, as RFC 6455 requires of clients."""
    first = (0x80 if fin else 0) | OPCODE_OF[opcode]
    n = len(payload)
    if n < 126:
        head = bytes([first, 0x80 | n])
    elif n < 1 << 16:
        head = bytes([first, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([first, 0x80 | 127]) + n.to_bytes(8, "big")
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class Wire:
    """One TCP connection; ``read_*`` wait at most until their deadline (monotonic s)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.settimeout(None)
        self._buffer = bytearray()
        #: (offset in the stream, arrival time) of every chunk received
        self._marks: list[tuple[int, float]] = []
        self._consumed = 0
        self._cond = threading.Condition()
        #: When the server's FIN (or a reset) came, if it came.
        self.eof_at: float | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            now = time.monotonic()
            with self._cond:
                if chunk:
                    self._marks.append((self._consumed + len(self._buffer), now))
                    self._buffer += chunk
                else:
                    self.eof_at = now
                self._cond.notify_all()
            if not chunk:
                return

    # ------------------------------------------------------------------ writing

    def send(self, data: bytes) -> float:
        """Write ``data``; returns when the writing began (no answer can come before)."""
        began = time.monotonic()
        self.sock.sendall(data)
        return began

    def finish(self) -> float:
        """Send our FIN (we will write no more); returns when."""
        began = time.monotonic()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)
        return began

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._reader.join(5)

    # ------------------------------------------------------------------ reading

    def _wait_for(self, n: int, deadline: float) -> None:
        """Wait until ``n`` unread bytes are there; WireTimeout when they cannot be."""
        with self._cond:
            while len(self._buffer) < n:
                remaining = deadline - time.monotonic()
                if self.eof_at is not None or remaining <= 0:
                    got = bytes(self._buffer[:200])
                    why = "the server closed the connection" if self.eof_at else "timed out"
                    raise WireTimeout(f"{why} with {len(self._buffer)} of {n} bytes: {got!r}")
                self._cond.wait(remaining)

    def _take(self, n: int) -> tuple[bytes, float]:
        """The next ``n`` bytes (already there) and when the first of them arrived."""
        with self._cond:
            at = self._chunk_time(self._consumed)
            data = bytes(self._buffer[:n])
            del self._buffer[:n]
            self._consumed += n
            # keep the mark of the chunk the next unread byte is in, and those after it
            current = max(
                (i for i, m in enumerate(self._marks) if m[0] <= self._consumed), default=0
            )
            del self._marks[:current]
            return data, at

    def _chunk_time(self, offset: int) -> float:
        """When the chunk holding stream byte ``offset`` arrived."""
        return max((t for start, t in self._marks if start <= offset), default=time.monotonic())

    def _peek(self) -> bytes:
        with self._cond:
            return bytes(self._buffer)

    def read_bytes(self, n: int, deadline: float) -> tuple[bytes, float]:
        self._wait_for(n, deadline)
        return self._take(n)

    def read_http(self, deadline: float) -> HttpAnswer:
        while True:
            end = self._peek().find(b"\r\n\r\n")
            if end >= 0:
                break
            self._wait_for(len(self._peek()) + 1, deadline)
        raw_head, at = self._take(end + 4)
        head = raw_head.decode("latin-1")
        answer = HttpAnswer(head, b"", at)
        length = answer.header("content-length")
        if answer.start_line.split(" ")[1] == "101" or length is None:
            return answer
        body, _ = self.read_bytes(int(length), deadline)
        return HttpAnswer(head, body, at)

    def read_frame(self, deadline: float) -> Frame:
        self._wait_for(2, deadline)
        head = self._peek()
        n, offset = head[1] & 0x7F, 2
        if n == 126:
            self._wait_for(4, deadline)
            n, offset = int.from_bytes(self._peek()[2:4], "big"), 4
        elif n == 127:
            self._wait_for(10, deadline)
            n, offset = int.from_bytes(self._peek()[2:10], "big"), 10
        masked = bool(head[1] & 0x80)
        total = offset + (4 if masked else 0) + n
        data, at = self.read_bytes(total, deadline)
        payload = data[total - n :]
        if masked:
            key = data[offset : offset + 4]
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        return Frame(OPCODES.get(data[0] & 0x0F, "?"), bool(data[0] & 0x80), masked, payload, at)

    def wait_closed(self, deadline: float) -> bool:
        """Whether the server's FIN came by ``deadline``; reads nothing."""
        with self._cond:
            while self.eof_at is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def read_eof(self, deadline: float) -> tuple[bytes, float]:
        """Wait for the server's FIN; returns whatever came before it, and when it came."""
        if not self.wait_closed(deadline):
            raise WireTimeout(f"the server kept the connection open: {self.unread()!r}")
        rest = self.unread()
        self._take(len(rest))
        assert self.eof_at is not None
        return rest, self.eof_at

    def unread(self) -> bytes:
        """What arrived and was never read."""
        return self._peek()
