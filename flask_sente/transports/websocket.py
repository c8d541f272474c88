"""One server-side WebSocket as a state machine: bytes in, messages and bytes out.

``WsSession`` wraps wsproto and adds what a channel socket needs: an outbound queue any
thread may fill, the message size limit, keepalive pings and the bounded close handshake.
It never touches a socket and never reads the clock: every call that depends on time takes
``now``. A driver owns the socket and feeds it (:mod:`flask_sente.transports.drivers`): the
event loop (many sockets on one thread), a thread of its own, or a greenlet under gevent.
"""

from __future__ import annotations

import enum
import io
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wsproto import ConnectionType
from wsproto.connection import Connection, ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Request,
)
from wsproto.handshake import H11Handshake
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from .frames import BINARY_FRAME, TEXT_FRAME, frame, frame_at, unmask

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


def _upgrade_request(environ: dict[str, Any]) -> tuple[str, list[tuple[bytes, bytes]]]:
    """The upgrade request's target and headers, rebuilt from the WSGI environ."""
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
    if "?" not in target and environ.get("QUERY_STRING"):
        target += "?" + environ["QUERY_STRING"]
    headers = [
        (key[5:].replace("_", "-").encode("latin-1"), value.encode("latin-1"))
        for key, value in environ.items()
        if key.startswith("HTTP_")
    ]
    return target, headers


@dataclass(frozen=True, slots=True)
class CloseInfo:
    code: int | None
    reason: str
    initiated_by_server: bool


class WsState(enum.Enum):
    """Where a session is in its life."""

    #: Not accepted yet.
    CONNECTING = "connecting"
    #: Messages flow both ways.
    OPEN = "open"
    #: Our close frame is out; waiting (bounded) for the client's.
    CLOSING = "closing"
    #: Over: :attr:`WsSession.close_info` says how.
    CLOSED = "closed"


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
        max_queued_messages: int = 1000,
        max_queued_bytes: int = 8 * 1024 * 1024,
        drop_oldest: bool = False,
        on_dropped: Callable[[int], None] = lambda count: None,
        label: str = "a WebSocket",
    ) -> None:
        #: Names the connection in the log (whose it is).
        self.label = label
        self.state = WsState.CONNECTING
        self.close_info: CloseInfo | None = None
        #: Called (from any thread) when there is something new to write.
        self.wake: Callable[[], None] = _nothing
        self._ws: Connection | None = None
        self._max_message_size = max_message_size
        self._kalive_s = kalive_s
        self._ping_timeout_s = ping_timeout_s
        self._ping_message = ping_message
        self._max_queued = max_queued_messages
        self._max_queued_bytes = max_queued_bytes
        self._drop_oldest = drop_oldest
        self._on_dropped = on_dropped
        self._lock = threading.Lock()
        self._out: deque[str | bytes] = deque()
        self._queued_bytes = 0
        #: Set (under the lock) once no more messages are taken: closing or closed.
        self._refusing = False
        self._close_request: tuple[int, str] | None = None
        self._close_deadline: float | None = None
        #: Frames owed to the client whatever else is queued: pongs, close replies.
        self._replies = b""
        #: Bytes read that do not make a whole frame yet.
        self._inbuf = b""
        #: Bytes of the frame being given to wsproto that are still to come.
        self._owed = 0
        #: A message in fragments is under way (wsproto assembles those).
        self._fragmented = False
        self._parts: io.StringIO | io.BytesIO | None = None
        self._size = 0
        self._ping_sent_at: float | None = None
        self._last_activity = 0.0
        #: When the client's last whole message came in.
        self._heard_at = 0.0

    # ------------------------------------------------------------------ any thread

    def deliver(self, data: str | bytes) -> bool:
        """Queue one packed message; False when the connection is closing or closed.

        Over ``max_queued_messages`` / ``max_queued_bytes`` the client is too slow: it is
        closed (1008, ``slow consumer``), or with ``drop_oldest`` it loses its oldest
        queued messages, each counted through ``on_dropped``."""
        dropped = 0
        with self._lock:
            if self._refusing:
                return False
            out = self._out
            out.append(data)
            self._queued_bytes += len(data)
            while out and (
                len(out) > self._max_queued or self._queued_bytes > self._max_queued_bytes
            ):
                if not self._drop_oldest:
                    self._close_request = (POLICY_VIOLATION, "slow consumer")
                    self._refusing = True
                    logger.warning(
                        "closing a WebSocket whose client does not keep up (slow consumer)"
                    )
                    break
                self._queued_bytes -= len(out.popleft())
                dropped += 1
            accepted = not self._refusing
        if dropped:
            self._on_dropped(dropped)
        self.wake()
        return accepted

    def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the close handshake with ``code``; returns at once."""
        with self._lock:
            if self._refusing:
                return
            self._refusing = True
            self._close_request = (code, reason)
        self.wake()

    # ------------------------------------------------------------------ the driver

    def accept(self, environ: dict[str, Any], now: float) -> bytes | None:
        """The 101 response to send, or None when the request is not a valid upgrade."""
        handshake = H11Handshake(ConnectionType.SERVER)
        try:
            target, headers = _upgrade_request(environ)
            handshake.initiate_upgrade_connection(headers, target)
            if not any(isinstance(e, Request) for e in handshake.events()):
                return None
            response = handshake.send(AcceptConnection())
        except (RemoteProtocolError, LocalProtocolError, ValueError) as exc:
            # ValueError: wsproto decodes header values as ASCII
            logger.info("WebSocket upgrade refused: %s", exc)
            return None
        self._ws = handshake.connection  # the handshake's HTTP state is not kept
        self.state = WsState.OPEN
        self._last_activity = self._heard_at = now
        return response

    def receive(self, data: bytes, now: float) -> list[str | bytes]:
        """Feed bytes from the socket; returns the whole messages they completed. What the
        protocol owes the client (pongs, a close reply) comes out of :meth:`output`.

        A whole, masked text or binary frame is read here (:mod:`.frames`); every other
        frame goes to wsproto, whole, from its first byte."""
        if self._ws is None or self.state is WsState.CLOSED:
            return []
        messages: list[str | bytes] = []
        try:
            self._read(self._inbuf + data if self._inbuf else data, messages)
        except (RemoteProtocolError, LocalProtocolError) as exc:
            logger.info("WebSocket protocol error: %s", exc)
            self._finish(CloseInfo(PROTOCOL_ERROR, str(exc), True))
        if messages:
            self._last_activity = self._heard_at = now
        return messages

    def _read(self, buf: bytes, messages: list[str | bytes]) -> None:
        pos, end = 0, len(buf)
        while pos < end and self.state is not WsState.CLOSED:
            if self._owed:
                n = min(self._owed, end - pos)
                self._to_wsproto(buf[pos : pos + n], messages)
                self._owed -= n
                pos += n
                continue
            found = frame_at(buf, pos)
            if found is None:
                break
            first, header, length, plain = found
            if (
                plain
                and first in (TEXT_FRAME, BINARY_FRAME)
                and not self._fragmented
                and self._close_request is None
                and length <= self._max_message_size
            ):
                if end - pos < header + length:
                    break  # bounded: max_message_size
                start = pos + header
                payload = unmask(buf[start - 4 : start], buf[start : start + length])
                if first == BINARY_FRAME:
                    messages.append(payload)
                    pos = start + length
                    continue
                try:
                    messages.append(payload.decode("utf-8"))
                    pos = start + length
                    continue
                except UnicodeDecodeError:
                    pass  # wsproto closes it with the code and reason RFC 6455 asks for
            if (first & 0x0F) in (0, 1, 2):  # a data frame: does a fragmented message go on?
                self._fragmented = not (first & 0x80)
            self._owed = header + length
        self._inbuf = buf[pos:] if pos < end else b""

    def _to_wsproto(self, data: bytes, messages: list[str | bytes]) -> None:
        ws = self._ws
        assert ws is not None
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, Message):
                whole = self._on_frame(event)
                if whole is not None:
                    messages.append(whole)
            elif isinstance(event, Ping):
                self._replies += ws.send(event.response())
            elif isinstance(event, CloseConnection):
                self._on_close_frame(ws, event)
                break

    def _on_close_frame(self, ws: Connection, event: CloseConnection) -> None:
        state = ws.state
        if state is ConnectionState.REMOTE_CLOSING:
            self._replies += ws.send(event.response())
        elif state is ConnectionState.OPEN:
            # wsproto reports a malformed frame as a close it wants us to send
            logger.info("closing a WebSocket on a protocol error: %s", event.reason)
            self._replies += ws.send(CloseConnection(event.code, event.reason))
        initiated = state is not ConnectionState.REMOTE_CLOSING
        self._finish(CloseInfo(event.code, event.reason or "", initiated))

    def _on_frame(self, event: Message) -> str | bytes | None:
        """One frame of a message: the whole message once its last frame came, else None."""
        self._size += len(event.data)
        if self._size > self._max_message_size:
            logger.warning(
                "closing a WebSocket: message over max_message_size (%d bytes)",
                self._max_message_size,
            )
            self._parts = None
            self._size = 0
            self.close(MESSAGE_TOO_BIG, "message too big")
            return None
        if self._close_request is not None:
            return None
        if event.message_finished and self._parts is None:
            self._size = 0
            return event.data
        # one growing buffer per message, not one object per fragment: a client sending a
        # message in thousands of tiny fragments costs what the message costs
        if self._parts is None:
            self._parts = io.BytesIO() if isinstance(event, BytesMessage) else io.StringIO()
        self._parts.write(event.data)
        if not event.message_finished:
            return None
        message = self._parts.getvalue()
        self._parts = None
        self._size = 0
        return message

    def peer_gone(self, reason: str = "peer went away") -> None:
        """The socket reached EOF or failed."""
        self._finish(CloseInfo(None, reason, False))

    def output(self, now: float) -> bytes:
        """Bytes to write now: frames owed, queued messages, then a close frame when one
        was asked for."""
        if not (self._replies or self._out or self._close_request):
            return b""  # nothing queued (read unlocked: a message queued now wakes us again)
        out, self._replies = self._replies, b""
        with self._lock:
            batch = list(self._out) if self._out else None
            if batch is not None:
                self._out.clear()
                self._queued_bytes = 0
            close_request = self._close_request
        ws = self._ws
        if ws is None or self.state is not WsState.OPEN:
            return out
        if batch is not None:
            parts = [out]
            for message in batch:
                parts += frame(message)
            out = b"".join(parts)
            self._last_activity = now
        if close_request is not None:
            self.state = WsState.CLOSING
            self._close_deadline = now + CLOSE_HANDSHAKE_TIMEOUT_S
            out += ws.send(CloseConnection(*close_request))
        return out

    def tick(self, now: float) -> None:
        """Keepalive and close-handshake deadlines; may queue a ping or start closing.

        As Sente's server: a ping goes out once the connection was idle for ``kalive_s``;
        after it nothing more happens for ``ping_timeout_s`` (no second ping), and then a
        client that sent nothing since the ping is taken for gone and closed."""
        if self.state is WsState.CLOSING:
            assert self._close_deadline is not None
            if now >= self._close_deadline:
                code, reason = self._close_request or (None, "")
                self._finish(CloseInfo(code, reason, True))
            return
        if self.state is not WsState.OPEN or self._kalive_s is None:
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
        if now - self._last_activity >= self._kalive_s:
            self._ping_sent_at = now
            self.deliver(self._ping_message)

    def deadline(self) -> float | None:
        """When :meth:`tick` next has something to do."""
        if self.state is WsState.CLOSING:
            return self._close_deadline
        if self.state is not WsState.OPEN or self._kalive_s is None:
            return None
        if self._ping_sent_at is not None:
            limit = self._ping_timeout_s if self._ping_timeout_s is not None else self._kalive_s
            return self._ping_sent_at + limit
        return self._last_activity + self._kalive_s

    def _finish(self, info: CloseInfo) -> None:
        with self._lock:
            self._refusing = True
            self._out.clear()
            self._queued_bytes = 0
        if self.close_info is None:
            self.close_info = info
        self.state = WsState.CLOSED


def _nothing() -> None:
    return None
