"""One server-side WebSocket as a state machine: bytes in, messages and bytes out.

``WsSession`` wraps wsproto and adds what a channel socket needs: an outbound queue any
thread may fill, the message size limit, keepalive pings and the bounded close handshake.
It never touches a socket. A driver owns the socket and feeds it: the event loop
(:mod:`.loop`, many sockets on one thread) or a thread of its own (:mod:`.threaded`, for
gevent and for servers whose sockets cannot be taken over).
"""

from __future__ import annotations

import io
import logging
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
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011
TRY_AGAIN_LATER = 1013

CLOSE_HANDSHAKE_TIMEOUT_S = 2.0


def is_websocket_request(environ: dict[str, Any]) -> bool:
    return str(environ.get("HTTP_UPGRADE", "")).lower() == "websocket"


def request_bytes(environ: dict[str, Any]) -> bytes:
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


class WsSession:
    """A WebSocket's protocol state. ``deliver`` and ``close`` may be called from any thread;
    everything else only from the driver that owns the socket."""

    kind = "ws"

    def __init__(
        self,
        *,
        max_message_size: int,
        kalive_s: float | None,
        ping_timeout_s: float | None,
        ping_message: str | bytes,
        on_message: Callable[[str | bytes], None] = lambda message: None,
        max_queued_messages: int = 1000,
        max_queued_bytes: int = 8 * 1024 * 1024,
        drop_oldest: bool = False,
        on_dropped: Callable[[int], None] = lambda count: None,
        label: str = "a WebSocket",
    ) -> None:
        #: Names the connection in the log (whose it is).
        self.label = label
        self._ws = WSConnection(ConnectionType.SERVER)
        self._max_message_size = max_message_size
        self._kalive_s = kalive_s
        self._ping_timeout_s = ping_timeout_s
        self._ping_message = ping_message
        self.on_message = on_message
        self._max_queued = max_queued_messages
        self._max_queued_bytes = max_queued_bytes
        self._drop_oldest = drop_oldest
        self._on_dropped = on_dropped
        self._queued_bytes = 0
        self.wake: Callable[[], None] = lambda: None
        self._lock = threading.Lock()
        self._out: deque[str | bytes] = deque()
        self._close_request: tuple[int, str] | None = None
        self._close_deadline: float | None = None
        self._parts: io.StringIO | io.BytesIO | None = None
        self._size = 0
        self._ping_sent_at: float | None = None
        self.last_activity = time.monotonic()
        #: When the client's last whole message came in.
        self._heard_at = self.last_activity
        self.close_info: CloseInfo | None = None

    # ------------------------------------------------------------------ any thread

    def deliver(self, data: str | bytes) -> bool:
        """Queue one packed message; False when the connection is closing or closed.

        Over ``max_queued_messages`` / ``max_queued_bytes`` the client is too slow: it is
        closed (1008, ``slow consumer``), or with ``drop_oldest`` it loses its oldest
        queued messages, each counted through ``on_dropped``."""
        dropped = 0
        with self._lock:
            if self.close_info is not None or self._close_request is not None:
                return False
            self._out.append(data)
            self._queued_bytes += len(data)
            while self._out and (
                len(self._out) > self._max_queued or self._queued_bytes > self._max_queued_bytes
            ):
                if not self._drop_oldest:
                    self._close_request = (POLICY_VIOLATION, "slow consumer")
                    logger.warning(
                        "closing a WebSocket whose client does not keep up (slow consumer)"
                    )
                    break
                self._queued_bytes -= len(self._out.popleft())
                dropped += 1
            accepted = self._close_request is None
        if dropped:
            self._on_dropped(dropped)
        self.wake()
        return accepted

    def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the close handshake with ``code``; returns at once."""
        with self._lock:
            if self.close_info is not None or self._close_request is not None:
                return
            self._close_request = (code, reason)
        self.wake()

    # ------------------------------------------------------------------ the driver

    def accept(self, environ: dict[str, Any]) -> bytes | None:
        """The 101 response to send, or None when the request is not a valid upgrade."""
        try:
            self._ws.receive_data(request_bytes(environ))
            if not any(isinstance(e, Request) for e in self._ws.events()):
                return None
            return self._ws.send(AcceptConnection())
        except (RemoteProtocolError, LocalProtocolError, ValueError) as exc:
            # ValueError: wsproto decodes header values as ASCII
            logger.info("WebSocket upgrade refused: %s", exc)
            return None

    def receive(self, data: bytes) -> bytes:
        """Feed bytes from the socket; returns bytes to write back (pongs, close replies)."""
        out = b""
        try:
            self._ws.receive_data(data)
            for event in self._ws.events():
                if isinstance(event, Message):
                    self._on_frame(event)
                elif isinstance(event, Ping):
                    out += self._ws.send(event.response())
                elif isinstance(event, CloseConnection):
                    state = self._ws.state
                    if state is ConnectionState.REMOTE_CLOSING:
                        out += self._ws.send(event.response())
                    elif state is ConnectionState.OPEN:
                        # wsproto reports a malformed frame as a close it wants us to send
                        logger.info("closing a WebSocket on a protocol error: %s", event.reason)
                        out += self._ws.send(CloseConnection(event.code, event.reason))
                    initiated = state is not ConnectionState.REMOTE_CLOSING
                    self._finish(CloseInfo(event.code, event.reason or "", initiated))
                    break
        except (RemoteProtocolError, LocalProtocolError) as exc:
            logger.info("WebSocket protocol error: %s", exc)
            self._finish(CloseInfo(PROTOCOL_ERROR, str(exc), True))
        return out

    def _on_frame(self, event: Message) -> None:
        self._size += len(event.data)
        if self._size > self._max_message_size:
            logger.warning(
                "closing a WebSocket: message over max_message_size (%d bytes)",
                self._max_message_size,
            )
            self._parts = None
            self._size = 0
            self.close(MESSAGE_TOO_BIG, "message too big")
            return
        if self._close_request is not None:
            return
        # one growing buffer per message, not one object per fragment: a client sending a
        # message in thousands of tiny fragments costs what the message costs
        if self._parts is None:
            self._parts = io.StringIO() if isinstance(event, TextMessage) else io.BytesIO()
        self._parts.write(event.data)
        if not event.message_finished:
            return
        message = self._parts.getvalue()
        self._parts = None
        self._size = 0
        self.last_activity = self._heard_at = time.monotonic()
        self.on_message(message)

    def peer_gone(self, reason: str = "peer went away") -> None:
        """The socket reached EOF or failed."""
        self._finish(CloseInfo(None, reason, False))

    def output(self, now: float) -> bytes:
        """Bytes to write now: queued messages, then a close frame when one was asked for."""
        with self._lock:
            batch = list(self._out)
            self._out.clear()
            self._queued_bytes = 0
            close_request = self._close_request
        out = b""
        if batch and self._ws.state is ConnectionState.OPEN:
            out = b"".join(
                self._ws.send(Message(data=d) if isinstance(d, bytes) else TextMessage(data=d))
                for d in batch
            )
            self.last_activity = now
        if close_request is not None and self._close_deadline is None and self.close_info is None:
            self._close_deadline = now + CLOSE_HANDSHAKE_TIMEOUT_S
            if self._ws.state is ConnectionState.OPEN:
                out += self._ws.send(CloseConnection(*close_request))
        return out

    def tick(self, now: float) -> None:
        """Keepalive and close-handshake deadlines; may queue a ping or start closing.

        As Sente's server: a ping goes out once the connection was idle for ``kalive_s``;
        after it nothing more happens for ``ping_timeout_s`` (no second ping), and then a
        client that sent nothing since the ping is taken for gone and closed."""
        if self.close_info is not None:
            return
        if self._close_deadline is not None:
            if now >= self._close_deadline:
                code, reason = self._close_request or (None, "")
                self._finish(CloseInfo(code, reason, True))
            return
        if self._kalive_s is None:
            return
        if self._ping_sent_at is not None:
            wait_s = self._ping_timeout_s if self._ping_timeout_s is not None else self._kalive_s
            if now - self._ping_sent_at < wait_s:
                return
            answered = self._heard_at >= self._ping_sent_at
            self._ping_sent_at = None
            if not answered and self._ping_timeout_s is not None:
                logger.info("WebSocket silent after a ping; closing it as broken")
                self.close(GOING_AWAY, "ping timeout")
                return
        if now - self.last_activity >= self._kalive_s:
            self._ping_sent_at = now
            self.deliver(self._ping_message)

    def deadline(self) -> float | None:
        """When :meth:`tick` next has something to do."""
        if self.close_info is not None:
            return None
        if self._close_deadline is not None:
            return self._close_deadline
        if self._kalive_s is None:
            return None
        if self._ping_sent_at is not None:
            limit = self._ping_timeout_s if self._ping_timeout_s is not None else self._kalive_s
            return self._ping_sent_at + limit
        return self.last_activity + self._kalive_s

    def _finish(self, info: CloseInfo) -> None:
        with self._lock:
            if self.close_info is None:
                self.close_info = info
            self._out.clear()
