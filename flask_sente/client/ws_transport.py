"""The WebSocket transport: connections over websocket-client, each read on its own thread.

It knows frames, not Sente: it carries out the protocol's WebSocket commands
(:mod:`.transport`) and reports *opened*, *failed before opening* (and whether a server
refused), each *message* and *closed* to its listener, which decides what they mean.
``ws_constructor`` may supply any object with websocket-client's ``recv_data``, ``send``,
``send_binary``, ``send_close``, ``abort`` and ``shutdown`` methods (``sente.test_client()``
supplies one over an in-process socket).
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping
from http.cookiejar import CookieJar
from typing import Any

import websocket

from .cookies import cookie_header
from .threads import ThreadSet
from .transport import (
    CloseWebSocket,
    Command,
    CutWebSocket,
    OpenWebSocket,
    SendFrame,
    TransportListener,
    WsClose,
)

__all__ = ["WsTransport", "default_ws_constructor", "is_refusal"]

log = logging.getLogger("flask_sente.client.ws_transport")

#: Seconds allowed for the TCP connect and upgrade unless ``ws_opts`` says ``timeout``.
DEFAULT_CONNECT_TIMEOUT = 10.0

WsConstructor = Callable[..., Any]


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


class WsTransport:
    """Opens, writes, closes and cuts the WebSocket connections the protocol asks for."""

    kind = "ws"

    def __init__(
        self,
        listener: TransportListener,
        *,
        threads: ThreadSet,
        constructor: WsConstructor | None = None,
        ws_opts: Mapping[str, Any] | None = None,
        cookies: CookieJar | None = None,
        name: str = "flask_sente.client-ws",
    ) -> None:
        self._listener = listener
        self._threads = threads
        self._constructor = constructor or default_ws_constructor
        self._opts = dict(ws_opts or {})
        self._cookies = cookies
        self._name = name
        self._lock = threading.Lock()
        self._conns: dict[int, _Connection] = {}

    def perform(self, command: Command) -> None:
        if isinstance(command, OpenWebSocket):
            self._open(command)
            return
        with self._lock:
            conn = self._conns.get(command.link)
        if isinstance(command, SendFrame):
            if conn is None:
                raise websocket.WebSocketConnectionClosedException("the WebSocket is not open")
            conn.send(command.data)
        elif conn is None:
            return
        elif isinstance(command, CloseWebSocket):
            conn.close(command.code, command.reason, linger=command.linger)
        elif isinstance(command, CutWebSocket):
            conn.cut(silently=command.silently)

    def close(self, timeout: float) -> None:
        """Let lingering closes finish within ``timeout``, then cut every connection."""
        with self._lock:
            conns = list(self._conns.values())
        deadline = time.monotonic() + timeout
        for conn in conns:
            conn.finished.wait(max(0.0, deadline - time.monotonic()))
        for conn in conns:
            conn.abort()

    def _open(self, command: OpenWebSocket) -> None:
        opts = dict(self._opts)
        header = [
            *(opts.pop("header", None) or []),
            *(f"{k}: {v}" for k, v in command.headers.items()),
        ]
        cookies = cookie_header(self._cookies, command.url)  # read at each connect: it may change
        if cookies:
            opts["cookie"] = "; ".join(filter(None, [opts.get("cookie"), cookies]))
        conn = _Connection(
            command.link, command.url, self._constructor, header, opts, self._listener, self._ended
        )
        with self._lock:
            self._conns[command.link] = conn
        self._threads.spawn(self._name, conn.run)

    def _ended(self, conn: _Connection) -> None:
        with self._lock:
            if self._conns.get(conn.link) is conn:
                del self._conns[conn.link]


class _Connection:
    """One connection attempt and, once open, its reader."""

    def __init__(
        self,
        link: int,
        url: str,
        constructor: WsConstructor,
        header: list[str],
        opts: Mapping[str, Any],
        listener: TransportListener,
        on_end: Callable[[_Connection], None],
    ) -> None:
        self.link = link
        self._url = url
        self._constructor = constructor
        self._header = header
        self._opts = opts
        self._listener = listener
        self._on_end = on_end
        self._lock = threading.Lock()
        self._ws: Any = None
        self._closing = False  # a close or a cut was asked for
        self._silent = False  # the listener hears nothing more, writes vanish
        self._dropped = False  # nothing more is read; the listener hears the close
        self.finished = threading.Event()

    def send(self, data: str | bytes) -> None:
        """Write one message; raises when the socket is gone. A silenced socket eats it."""
        with self._lock:
            ws = self._ws
        if self._silent:
            return
        if ws is None:
            raise websocket.WebSocketConnectionClosedException("the WebSocket is not open")
        if isinstance(data, bytes):
            ws.send_binary(data)
        else:
            ws.send(data)

    def close(self, code: int, reason: str, *, linger: bool) -> None:
        """Send a close frame; cut the socket at once unless ``linger``."""
        with self._lock:
            self._closing = True
            ws = self._ws
        if ws is not None:
            try:
                ws.send_close(code, reason.encode())
            except Exception:
                log.debug("close frame not sent", exc_info=True)
        if not linger or ws is None:
            self.abort()

    def cut(self, *, silently: bool) -> None:
        """Cut the socket, no close frame: ``silently``, as a broken network the listener does
        not know about (``break_connection(close_ws=False)``); else as a failing network
        would, the listener hearing the close (``simulated_bad_conn_rate``)."""
        if silently:
            self._silent = True
        else:
            self._dropped = True
        self.abort()

    def abort(self) -> None:
        """Wake the reader by shutting the socket down (no close frame)."""
        with self._lock:
            self._closing = True
            ws = self._ws
        if ws is not None:
            _abort(ws)

    def run(self) -> None:
        try:
            self._connect_and_read()
        finally:
            self.finished.set()
            self._on_end(self)

    def _connect_and_read(self) -> None:
        try:
            ws = self._constructor(self._url, header=self._header, **self._opts)
        except Exception as exc:
            if not self._closing and not self._silent:
                self._listener.ws_failed(self.link, exc, refused=is_refusal(exc))
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
        self._listener.ws_opened(self.link)
        close, error = self._read(ws)
        try:
            ws.shutdown()
        finally:
            with self._lock:
                self._ws = None
        if not self._silent:
            self._listener.ws_closed(self.link, close, error)

    def _read(self, ws: Any) -> tuple[WsClose, BaseException | None]:
        while True:
            try:
                opcode, data = ws.recv_data(control_frame=True)
            except Exception as exc:
                return WsClose(1006, "", False), exc
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return _parse_close(data), None
            if opcode not in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                continue
            if self._silent or self._dropped:
                continue
            if opcode == websocket.ABNF.OPCODE_TEXT and isinstance(data, bytes | bytearray):
                data = bytes(data).decode("utf-8")
            try:
                self._listener.ws_received(self.link, data)
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
