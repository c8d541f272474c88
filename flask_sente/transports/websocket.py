"""The server side of one WebSocket: framing with wsproto, owned by a single thread.

The request thread that accepted the upgrade keeps the socket for the connection's life.
It waits on the socket and on a wake-up pipe at once, so it both reads frames and writes
queued pushes and replies; no second thread per socket, and no two threads ever write to
the same socket. Other threads only queue data and wake it.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Message,
    Ping,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

logger = logging.getLogger("flask_sente.transports.websocket")

NORMAL_CLOSURE = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
MESSAGE_TOO_BIG = 1009

_CLOSE_HANDSHAKE_TIMEOUT_S = 2.0
_WRITE_TIMEOUT_S = 10.0
_RECV_BYTES = 65536


def socket_from_environ(environ: dict[str, Any]) -> tuple[socket.socket | None, str]:
    """The client socket a WSGI server exposes, and which server it is."""
    for key, mode in (("gunicorn.socket", "gunicorn"), ("werkzeug.socket", "werkzeug")):
        sock = environ.get(key)
        if sock is not None:
            return sock, mode
    return None, "unknown"


def is_websocket_request(environ: dict[str, Any]) -> bool:
    upgrade = environ.get("HTTP_UPGRADE", "")
    return upgrade.lower() == "websocket"


def _request_bytes(environ: dict[str, Any]) -> bytes:
    """The upgrade request as it came in, rebuilt for wsproto from the WSGI environ."""
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
    if "?" not in target and environ.get("QUERY_STRING"):
        target += "?" + environ["QUERY_STRING"]
    lines = [f"GET {target} HTTP/1.1"]
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            lines.append(f"{key[5:].replace('_', '-').title()}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass(frozen=True, slots=True)
class CloseInfo:
    code: int | None
    reason: str
    initiated_by_server: bool


class WsConnection:
    """One accepted WebSocket. ``deliver`` and ``close`` may be called from any thread."""

    kind = "ws"

    def __init__(self, sock: socket.socket, *, max_message_size: int) -> None:
        self._sock = sock
        self._ws = WSConnection(ConnectionType.SERVER)
        self._max_message_size = max_message_size
        self._out: deque[str | bytes] = deque()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._woken = False
        self._close_request: tuple[int, str] | None = None
        self._finished = False
        self.last_activity = time.monotonic()

    # ------------------------------------------------------------------ any thread

    def deliver(self, data: str | bytes) -> bool:
        """Queue one packed message; False when the connection is closing or closed."""
        with self._lock:
            if self._finished or self._close_request is not None:
                return False
            self._out.append(data)
            self._wake_locked()
        return True

    def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Ask the owning thread to close with ``code``; returns at once."""
        with self._lock:
            if self._finished or self._close_request is not None:
                return
            self._close_request = (code, reason)
            self._wake_locked()

    @property
    def is_open(self) -> bool:
        return not self._finished and self._close_request is None

    def _wake_locked(self) -> None:
        if not self._woken:
            self._woken = True
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")

    # ------------------------------------------------------------------ owning thread

    def accept(self, environ: dict[str, Any]) -> bool:
        """Complete the upgrade handshake (101). False when the request is not a valid upgrade."""
        try:
            self._ws.receive_data(_request_bytes(environ))
            request = next((e for e in self._ws.events() if isinstance(e, Request)), None)
            if request is None:
                return False
            self._sock.settimeout(_WRITE_TIMEOUT_S)
            self._sock.sendall(self._ws.send(AcceptConnection()))
        except (RemoteProtocolError, LocalProtocolError, OSError) as exc:
            logger.info("WebSocket upgrade failed: %s", exc)
            return False
        return True

    def run(
        self,
        on_message: Callable[[str | bytes], None],
        *,
        kalive_s: float | None,
        ping_timeout_s: float | None,
        ping_message: str | bytes,
    ) -> CloseInfo:
        """Serve the connection until it closes; returns how it closed."""
        selector = selectors.DefaultSelector()
        selector.register(self._sock, selectors.EVENT_READ)
        selector.register(self._wake_r, selectors.EVENT_READ)
        ping_sent_at: float | None = None
        close_deadline: float | None = None
        parts: list[str | bytes] = []
        size = 0
        info = CloseInfo(None, "", False)
        try:
            while True:
                now = time.monotonic()
                for key, _ in selector.select(
                    self._timeout(now, kalive_s, ping_timeout_s, ping_sent_at, close_deadline)
                ):
                    if key.fileobj is self._wake_r:
                        self._drain_wake()
                        continue
                    data = self._sock.recv(_RECV_BYTES)
                    if not data:
                        return CloseInfo(None, "peer went away", False)
                    self._ws.receive_data(data)
                    for event in self._ws.events():
                        if isinstance(event, Message):
                            size += len(event.data)
                            if size > self._max_message_size:
                                logger.warning(
                                    "closing WebSocket: message over max_message_size (%d bytes)",
                                    self._max_message_size,
                                )
                                self.close(MESSAGE_TOO_BIG, "message too big")
                                parts, size = [], 0
                                break
                            parts.append(event.data)
                            if event.message_finished:
                                message = _join(parts, isinstance(event, TextMessage))
                                parts, size = [], 0
                                self.last_activity = time.monotonic()
                                ping_sent_at = None
                                on_message(message)
                        elif isinstance(event, Ping):
                            self._send_raw(self._ws.send(event.response()))
                        elif isinstance(event, CloseConnection):
                            initiated = self._ws.state is ConnectionState.CLOSED
                            if self._ws.state is ConnectionState.REMOTE_CLOSING:
                                self._send_raw(self._ws.send(event.response()))
                            return CloseInfo(event.code, event.reason or "", initiated)
                self._flush()
                now = time.monotonic()
                with self._lock:
                    close_request = self._close_request
                if close_request is not None and close_deadline is None:
                    info = CloseInfo(close_request[0], close_request[1], True)
                    self._send_raw(self._ws.send(CloseConnection(*close_request)))
                    close_deadline = now + _CLOSE_HANDSHAKE_TIMEOUT_S
                if close_deadline is not None:
                    if now >= close_deadline:
                        logger.debug("peer did not finish the close handshake; dropping it")
                        return info
                    continue
                if kalive_s is None:
                    continue
                if ping_sent_at is not None:
                    if ping_timeout_s is not None and now - ping_sent_at >= ping_timeout_s:
                        logger.info("WebSocket silent after a ping; closing it as broken")
                        self.close(GOING_AWAY, "ping timeout")
                elif now - self.last_activity >= kalive_s:
                    self.deliver(ping_message)
                    ping_sent_at = now
        except (RemoteProtocolError, LocalProtocolError) as exc:
            logger.info("WebSocket protocol error: %s", exc)
            return CloseInfo(PROTOCOL_ERROR, str(exc), True)
        except OSError as exc:
            return CloseInfo(None, f"socket error: {exc}", False)
        finally:
            self._finish(selector)

    def _timeout(
        self,
        now: float,
        kalive_s: float | None,
        ping_timeout_s: float | None,
        ping_sent_at: float | None,
        close_deadline: float | None,
    ) -> float | None:
        if close_deadline is not None:
            return max(0.0, close_deadline - now)
        if kalive_s is None:
            return None
        if ping_sent_at is not None:
            limit = ping_timeout_s if ping_timeout_s is not None else kalive_s
            return max(0.0, ping_sent_at + limit - now)
        return max(0.0, self.last_activity + kalive_s - now)

    def _drain_wake(self) -> None:
        with self._lock:
            self._woken = False
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _flush(self) -> None:
        while True:
            with self._lock:
                if not self._out:
                    return
                batch = list(self._out)
                self._out.clear()
            if self._ws.state is not ConnectionState.OPEN:
                return
            out = b"".join(
                self._ws.send(Message(data=d) if isinstance(d, bytes) else TextMessage(data=d))
                for d in batch
            )
            self._send_raw(out)
            self.last_activity = time.monotonic()

    def _send_raw(self, data: bytes) -> None:
        if data:
            self._sock.sendall(data)

    def _finish(self, selector: selectors.BaseSelector) -> None:
        with self._lock:
            self._finished = True
            self._out.clear()
        selector.close()
        for s in (self._wake_r, self._wake_w):
            s.close()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()


def _join(parts: list[Any], text: bool) -> str | bytes:
    if len(parts) == 1:
        return parts[0]
    return "".join(parts) if text else b"".join(parts)
