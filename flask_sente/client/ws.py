"""One WebSocket connection: connect, read frames on its own thread, send, close.

This layer knows frames, not Sente: it reports *opened*, *failed before opening*,
*message* and *closed* to a listener (the WebSocket channel socket), which decides what
they mean. It is built on websocket-client; ``ws_constructor`` may supply any object with
websocket-client's ``recv_data``/``send``/``send_close``/``abort``/``shutdown`` methods.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import websocket

from .runtime import ThreadSet

__all__ = ["WsClose", "WsConnection", "WsListener", "default_ws_constructor", "is_refusal"]

log = logging.getLogger("flask_sente.client.ws")

#: Seconds allowed for the TCP connect and upgrade unless ``ws_opts`` says ``timeout``.
DEFAULT_CONNECT_TIMEOUT = 10.0

WsConstructor = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class WsClose:
    """How a connection ended; ``clean`` means a close frame was received (``wasClean``)."""

    code: int
    reason: str
    clean: bool


class WsListener(Protocol):
    def ws_opened(self, conn: WsConnection) -> None: ...
    def ws_failed(self, conn: WsConnection, exc: BaseException) -> None: ...
    def ws_message(self, conn: WsConnection, data: str | bytes) -> None: ...
    def ws_closed(self, conn: WsConnection, close: WsClose, exc: BaseException | None) -> None: ...


class _SenteWebSocket(websocket.WebSocket):
    """websocket-client's socket, answering a peer's close frame at most once.

    websocket-client echoes every close frame it reads; after our own close frame that echo
    would be a second close frame, and a write error on a half-closed socket.
    """

    _close_sent = False

    def send_close(self, status: int = websocket.STATUS_NORMAL, reason: str | bytes = b"") -> None:
        if self._close_sent:
            return
        self._close_sent = True
        try:
            super().send_close(status, reason)
        except (OSError, websocket.WebSocketException):
            log.debug("could not send a close frame; the socket is already gone")


def default_ws_constructor(url: str, *, header: list[str], **opts: Any) -> Any:
    """Open a websocket-client connection to ``url`` (blocking: TCP connect and upgrade).

    Like Sente's JVM and Node clients it sends no ``Origin`` header unless told to, with
    ``ws_opts={"origin": ...}`` or an ``Origin`` in ``headers`` (websocket-client would
    otherwise make one up from the URL).
    """
    opts.setdefault("timeout", DEFAULT_CONNECT_TIMEOUT)
    opts.setdefault("suppress_origin", opts.get("origin") is None)
    return websocket.create_connection(url, header=header, class_=_SenteWebSocket, **opts)


def is_refusal(exc: BaseException) -> bool:
    """Whether a failed connect reached a server that would not upgrade.

    HTTP errors, a bad handshake, or a peer that hangs up or stalls mid-upgrade are
    refusals (a proxy that does not speak WebSocket): ``type="auto"`` then falls back to
    Ajax. A refused TCP connect or an unknown host is not: the server may just be down.
    """
    return not isinstance(exc, OSError | websocket.WebSocketAddressException)


class WsConnection:
    """One connection attempt and, once open, its reader thread."""

    def __init__(
        self,
        url: str,
        *,
        listener: WsListener,
        threads: ThreadSet,
        constructor: WsConstructor | None = None,
        headers: Mapping[str, str] | None = None,
        opts: Mapping[str, Any] | None = None,
        name: str = "flask_sente.client-ws",
    ) -> None:
        self.url = url
        self._listener = listener
        self._threads = threads
        self._constructor = constructor or default_ws_constructor
        self._opts = dict(opts or {})
        extra = [f"{k}: {v}" for k, v in (headers or {}).items()]
        self._header = [*(self._opts.pop("header", None) or []), *extra]
        self._name = name
        self._lock = threading.Lock()
        self._ws: Any = None
        self._closing = False
        self._detached = False
        self._dropped = False
        self._finished = threading.Event()
        self.last_comms = time.monotonic()

    def start(self) -> None:
        self._threads.spawn(self._name, self._run)

    @property
    def detached(self) -> bool:
        return self._detached

    def send(self, data: str | bytes) -> None:
        """Send one message; raises when the socket is gone. A detached socket eats it."""
        with self._lock:
            ws = self._ws
        if self._detached:
            return
        if ws is None:
            raise websocket.WebSocketConnectionClosedException("the WebSocket is not open")
        if isinstance(data, bytes):
            ws.send_binary(data)
        else:
            ws.send(data)
        self.last_comms = time.monotonic()

    def close(self, code: int = 1000, reason: str = "CLOSE_NORMAL", *, wait: float = 0.0) -> None:
        """Send a close frame; give the peer ``wait`` seconds to answer, then cut the socket."""
        with self._lock:
            self._closing = True
            ws = self._ws
        if ws is not None:
            try:
                ws.send_close(code, reason.encode())
            except Exception:
                log.debug("close frame not sent", exc_info=True)
            if wait > 0:
                self._finished.wait(wait)
        self.abort()

    def abort(self) -> None:
        """Wake the reader by shutting the socket down (no close frame)."""
        with self._lock:
            self._closing = True
            ws = self._ws
        if ws is not None:
            _abort(ws)

    def detach(self) -> None:
        """Go silent: the listener hears nothing more, sends vanish, the socket is cut.

        This is ``break_connection(close_ws=False)``: a connection that is broken but does
        not know it, which only the keepalive ping can discover.
        """
        self._detached = True
        self.abort()

    def drop(self) -> None:
        """Cut the socket as a failing network would: no close frame, nothing more read
        from it; the listener hears the close (``simulated_bad_conn_rate``)."""
        self._dropped = True
        self.abort()

    def _run(self) -> None:
        try:
            self._connect_and_read()
        finally:
            self._finished.set()

    def _connect_and_read(self) -> None:
        try:
            ws = self._constructor(self.url, header=self._header, **self._opts)
        except Exception as exc:
            if not self._closing and not self._detached:
                self._listener.ws_failed(self, exc)
            return
        with self._lock:
            self._ws = ws
            cancelled = self._closing
        if cancelled:
            _abort(ws)
            ws.shutdown()
            with self._lock:
                self._ws = None
            return
        if hasattr(ws, "settimeout"):
            ws.settimeout(None)
        self.last_comms = time.monotonic()
        self._listener.ws_opened(self)
        close, error = self._read(ws)
        try:
            ws.shutdown()
        finally:
            with self._lock:
                self._ws = None
        if not self._detached:
            self._listener.ws_closed(self, close, error)

    def _read(self, ws: Any) -> tuple[WsClose, BaseException | None]:
        while True:
            try:
                opcode, data = ws.recv_data(control_frame=True)
            except Exception as exc:
                return WsClose(1006, "", False), exc
            self.last_comms = time.monotonic()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return _parse_close(data), None
            if opcode not in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                continue
            if self._detached or self._dropped:
                continue
            if opcode == websocket.ABNF.OPCODE_TEXT and isinstance(data, bytes | bytearray):
                data = bytes(data).decode("utf-8")
            try:
                self._listener.ws_message(self, data)
            except Exception:
                log.exception("could not handle a WebSocket message %r", data[:200])


def _abort(ws: Any) -> None:
    """Shut the socket down so a blocked ``recv`` returns at once.

    websocket-client's own ``abort`` does nothing once a close frame has been sent, which
    is exactly when a silent peer would leave the reader blocked; so go to the socket.
    """
    sock = getattr(ws, "sock", None)
    try:
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        else:
            ws.abort()
    except Exception:
        log.debug("socket already closed", exc_info=True)


def _parse_close(payload: bytes | str) -> WsClose:
    raw = payload.encode() if isinstance(payload, str) else bytes(payload or b"")
    if len(raw) < 2:
        return WsClose(1005, "", True)
    (code,) = struct.unpack("!H", raw[:2])
    return WsClose(code, raw[2:].decode("utf-8", "replace"), True)
