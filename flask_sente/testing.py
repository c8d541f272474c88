"""Testing an application's event handlers without a network: ``sente.test_client()``.

The test client is the production Python client (:class:`~flask_sente.client.Client`, its
protocol and its WebSocket transport), whose WebSocket runs over an in-process socket pair
instead of a TCP connection. The upgrade request goes through Flask's test client (so its
cookies and session, and a login done through a normal route, carry over), the extension
runs its checks and ``user_id_fn`` as for any request, and the server's event loop takes the
socket over. Nothing is imitated: the route, the registry, batching, the router and your
handlers on one side, and the client's protocol on the other, all run as in production.

::

    def test_chat(app):
        web = app.test_client()
        web.post("/login", data={"user": "alice"})
        with sente.test_client(web) as chsk:
            assert chsk.request(["chat/send", {"text": "hi"}], timeout=2) == {"ok": True}
            assert chsk.next_event(timeout=2).id == "chat/msg"
"""

from __future__ import annotations

import contextlib
import queue
import socket
import struct
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import websocket
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Request,
    TextMessage,
)

from .client import Client, ClientEventMsg
from .errors import ChannelClosed, ReplyTimeout
from .transports.sockets import TEST_SOCKET_KEY

if TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient

    from .server import ChannelServer

__all__ = ["ReceivedEvent", "SenteTestClient"]

#: Seconds ``connect()`` waits for the handshake.
CONNECT_TIMEOUT = 10.0

#: What ``next_event`` returns: the client's event message (``id``, ``data``, ``event``).
ReceivedEvent = ClientEventMsg


class SenteTestClient:
    """One channel socket to the app, in-process. Use it as a context manager.

    ``client`` is the :class:`~flask_sente.client.Client` underneath, for what this class
    does not wrap (its ``state``, callbacks with ``send``...). It does not reconnect: a
    channel socket the server closes stays closed.
    """

    def __init__(
        self,
        server: ChannelServer,
        app: Flask,
        flask_client: FlaskClient | None = None,
        *,
        uid: Any = None,
        client_id: str | None = None,
        params: dict[str, str] | None = None,
        csrf_token: str | None = None,
    ) -> None:
        params = dict(params or {})
        if uid is not None:
            params.setdefault("uid", str(uid))
        self._flask_client = flask_client or app.test_client()
        self._pushed: queue.Queue[ClientEventMsg] = queue.Queue()
        self._received: list[ClientEventMsg] = []
        self._lock = threading.Lock()
        self._refusal: tuple[int, str] | None = None
        self.client = Client(
            "http://localhost" + server.options.path,
            type="ws",
            packer=server.packer,
            csrf_token=csrf_token,
            params=params,
            client_id=client_id,
            reconnect=False,
            ws_constructor=self._upgrade,
        )
        self.client.on_default(self._record)
        self.client_id = self.client.client_id
        self.uid: Any = None
        self.handshake_data: Any = None
        self.status_code: int | None = None

    # ------------------------------------------------------------------ lifecycle

    def connect(self) -> SenteTestClient:
        """Open the channel socket and wait for the handshake; raises
        :class:`~flask_sente.errors.ChannelClosed` when the server refuses."""
        client = self.client
        client.connect()
        state = client.state
        state.wait_for(_open_or_ended, CONNECT_TIMEOUT)
        if not state.get("open?"):
            client.disconnect()
            if self._refusal is not None:
                status, body = self._refusal
                raise ChannelClosed(f"the server refused the channel socket: {status} {body!r}")
            why = state.get("last-ws-error") or state.get("last-close")
            raise ChannelClosed(f"no handshake from the server within {CONNECT_TIMEOUT} s ({why})")
        self.uid, self.handshake_data = state["uid"], state["handshake-data"]
        return self

    def disconnect(self) -> None:
        """Close the channel socket (a normal close, 1000)."""
        self.client.disconnect()

    def wait_closed(self, timeout: float = 5.0) -> int | None:
        """Wait until the channel socket has ended; returns the server's close code."""
        if not self.client.state.wait_for(_ended, timeout):
            raise ReplyTimeout(f"the channel socket is still open after {timeout} s")
        return self.close_code

    @property
    def close_code(self) -> int | None:
        """The code of the close frame that ended the channel socket (None: no close frame)."""
        close = self._close_frame()
        return None if close is None else close["code"]

    @property
    def close_reason(self) -> str | None:
        """The reason of the close frame that ended the channel socket."""
        close = self._close_frame()
        return None if close is None else close["reason"]

    def _close_frame(self) -> Mapping[str, Any] | None:
        close = self.client.state.get("last-ws-close")
        return close if close is not None and close["clean?"] else None

    def __enter__(self) -> SenteTestClient:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    # ------------------------------------------------------------------ sending

    def send(self, event: Any) -> None:
        """Send an event that wants no reply."""
        if not self.client.send(event):
            raise ChannelClosed("the test client is not connected; call connect() first")

    def request(self, event: Any, timeout: float = 5.0) -> Any:
        """Send an event and wait for the handler's reply."""
        return self.client.request(event, timeout)

    # ------------------------------------------------------------------ receiving

    def next_event(self, timeout: float = 5.0) -> ClientEventMsg:
        """The next pushed event; raises :class:`ReplyTimeout` when none comes in time."""
        try:
            return self._pushed.get(timeout=timeout)
        except queue.Empty:
            raise ReplyTimeout(f"no event pushed within {timeout} s") from None

    def received(self) -> list[ClientEventMsg]:
        """Every event pushed so far, oldest first (including those ``next_event`` returned)."""
        with self._lock:
            return list(self._received)

    def _record(self, msg: ClientEventMsg) -> None:
        if msg.id.startswith("chsk/"):  # the client's own: handshake, state, pings
            return
        with self._lock:
            self._received.append(msg)
        self._pushed.put(msg)

    # ------------------------------------------------------------------ the upgrade

    def _upgrade(self, url: str, *, header: list[str], **opts: Any) -> _InProcessWebSocket:
        """The client's ``ws_constructor``: the upgrade through Flask's test client, the
        WebSocket over one end of a socket pair whose other end the server takes over."""
        ours, theirs = socket.socketpair()
        ws = WSConnection(ConnectionType.CLIENT)
        request = ws.send(Request(host="localhost", target="/"))
        key = next(
            line.split(b":", 1)[1].strip().decode()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        extra = dict(line.split(": ", 1) for line in header)
        target = urlsplit(url)
        response = self._flask_client.get(
            f"{target.path}?{target.query}",
            headers={
                **extra,
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": key,
                "Sec-WebSocket-Version": "13",
            },
            environ_overrides={TEST_SOCKET_KEY: theirs},
        )
        theirs.close()
        self.status_code = response.status_code
        if response.status_code != 101:
            ours.close()
            self._refusal = (response.status_code, response.get_data(as_text=True))
            raise websocket.WebSocketBadStatusException(
                f"the server refused the upgrade: {response.status_code}", response.status_code
            )
        return _InProcessWebSocket(ours, ws)


def _bytes(part: str | bytes) -> bytes:
    return part.encode() if isinstance(part, str) else part


def _ended(state: Mapping[str, Any]) -> bool:
    """The channel socket has closed (and stays closed: the test client does not reconnect)."""
    return not state.get("open?") and "last-ws-close" in state


def _open_or_ended(state: Any) -> bool:
    """Open, or never to be: the upgrade failed, or the socket closed before a handshake."""
    return bool(state.get("open?")) or "last-ws-error" in state or "last-ws-close" in state


class _InProcessWebSocket:
    """The client side of an in-process WebSocket, framed by wsproto, with the methods of a
    websocket-client socket that the client's WebSocket transport uses."""

    def __init__(self, sock: socket.socket, ws: WSConnection) -> None:
        self.sock = sock
        self._ws = ws
        self._write_lock = threading.Lock()
        self._events: list[Any] = []
        self._parts: list[str | bytes] = []
        sock.settimeout(CONNECT_TIMEOUT)
        while not any(isinstance(e, AcceptConnection) for e in self._events):
            chunk = sock.recv(65536)
            if not chunk:
                raise websocket.WebSocketConnectionClosedException("closed during the upgrade")
            ws.receive_data(chunk)
            self._events += list(ws.events())
        self._events = [e for e in self._events if not isinstance(e, AcceptConnection)]
        sock.settimeout(None)

    def settimeout(self, timeout: float | None) -> None:
        self.sock.settimeout(timeout)

    def recv_data(self, control_frame: bool = True) -> tuple[int, str | bytes]:
        """The next whole message, or the close frame, as websocket-client returns them."""
        while True:
            while self._events:
                event = self._events.pop(0)
                if isinstance(event, Message):
                    self._parts.append(event.data)
                    if event.message_finished:
                        parts, self._parts = self._parts, []
                        if isinstance(event, TextMessage):
                            return websocket.ABNF.OPCODE_TEXT, "".join(map(str, parts))
                        return websocket.ABNF.OPCODE_BINARY, b"".join(map(_bytes, parts))
                elif isinstance(event, Ping):
                    self._write(event.response())
                elif isinstance(event, CloseConnection):
                    if self._ws.state is ConnectionState.REMOTE_CLOSING:
                        self._write(event.response())
                    payload = struct.pack("!H", event.code) + (event.reason or "").encode()
                    return websocket.ABNF.OPCODE_CLOSE, payload
            data = self.sock.recv(65536)
            if not data:
                raise websocket.WebSocketConnectionClosedException("the socket was closed")
            self._ws.receive_data(data)
            self._events += list(self._ws.events())

    def send(self, data: str) -> None:
        self._write(TextMessage(data=data))

    def send_binary(self, data: bytes) -> None:
        self._write(BytesMessage(data=data))

    def send_close(self, status: int = 1000, reason: bytes = b"") -> None:
        if self._ws.state is ConnectionState.OPEN:
            self._write(CloseConnection(code=status, reason=reason.decode()))

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def shutdown(self) -> None:
        self.sock.close()

    def _write(self, event: Any) -> None:
        with self._write_lock:
            self.sock.sendall(self._ws.send(event))
