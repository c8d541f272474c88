"""Testing an application's event handlers without a network: ``sente.test_client()``.

The test client opens a real channel socket through the app: the upgrade request goes
through Flask's test client (so its cookies and session, and a login done through a normal
route, carry over), the extension runs its checks and ``user_id_fn`` as for any request, and
the WebSocket then runs over an in-process socket pair on the server's event loop. Nothing is
imitated: the route, the registry, batching, the router and your handlers all run as in
production.

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
import threading
import uuid
from typing import TYPE_CHECKING, Any

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, Request, TextMessage

from .errors import ChannelClosed, ReplyTimeout, SenteError
from .protocol import (
    MessageKind,
    as_event,
    classify_server_message,
    event_data,
    new_cb_uuid,
    normalize_event,
    pack,
    unpack,
)
from .transports.sockets import TEST_SOCKET_KEY

if TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient

    from .server import ChannelServer

__all__ = ["ReceivedEvent", "SenteTestClient"]


class ReceivedEvent:
    """An event the server pushed to the test client."""

    __slots__ = ("event",)

    def __init__(self, event: list[Any]) -> None:
        self.event = event

    @property
    def id(self) -> str:
        return str(self.event[0])

    @property
    def data(self) -> Any:
        return event_data(self.event)

    def __repr__(self) -> str:
        return f"ReceivedEvent({self.event!r})"


class SenteTestClient:
    """One channel socket to the app, in-process. Use it as a context manager."""

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
        self._server = server
        self._flask_client = flask_client or app.test_client()
        self._packer = self._server.packer
        self.client_id = client_id or str(uuid.uuid4())
        self._params = dict(params or {})
        if uid is not None:
            self._params.setdefault("uid", str(uid))
        self._csrf_token = csrf_token
        self._events: queue.Queue[ReceivedEvent] = queue.Queue()
        self._received: list[ReceivedEvent] = []
        self._replies: dict[str, queue.Queue[Any]] = {}
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._ws: WSConnection | None = None
        self._reader: threading.Thread | None = None
        self.uid: Any = None
        self.handshake_data: Any = None
        self.status_code: int | None = None
        #: The server's close frame (code and reason), once it closed the channel socket.
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._ended = threading.Event()

    # ------------------------------------------------------------------ lifecycle

    def connect(self) -> SenteTestClient:
        """Open the channel socket; raises :class:`ChannelClosed` when the server refuses."""
        ours, theirs = socket.socketpair()
        ws = WSConnection(ConnectionType.CLIENT)
        request = ws.send(Request(host="localhost", target=self._server.options.path))
        key = next(
            line.split(b":", 1)[1].strip().decode()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        query = {**self._params, "client-id": self.client_id}
        if self._csrf_token is not None:
            query["csrf-token"] = self._csrf_token
        response = self._flask_client.get(
            self._server.options.path,
            query_string=query,
            headers={
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": key,
                "Sec-WebSocket-Version": "13",
            },
            environ_overrides={TEST_SOCKET_KEY: theirs},
        )
        self.status_code = response.status_code
        if response.status_code != 101:
            ours.close()
            theirs.close()
            raise ChannelClosed(
                f"the server refused the channel socket: {response.status_code} "
                f"{response.get_data(as_text=True)!r}"
            )
        theirs.close()
        ours.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = ours.recv(4096)
            if not chunk:
                raise ChannelClosed("the server closed the channel socket during the upgrade")
            head += chunk
        ws.receive_data(head)
        early = list(ws.events())  # frames that came with the 101 response
        if not any(isinstance(e, AcceptConnection) for e in early):
            raise ChannelClosed("the server did not accept the WebSocket upgrade")
        ours.settimeout(None)
        self._sock, self._ws = ours, ws
        handshake = queue.Queue[Any](maxsize=1)
        self._reader = threading.Thread(
            target=self._read, args=(handshake, early), name="flask_sente-test-client", daemon=True
        )
        self._reader.start()
        try:
            self.uid, self.handshake_data = handshake.get(timeout=10)
        except queue.Empty:
            self.disconnect()
            raise ChannelClosed("no handshake from the server within 10 s") from None
        return self

    def disconnect(self) -> None:
        """Close the channel socket (a normal close, 1000)."""
        sock, ws = self._sock, self._ws
        if sock is None or ws is None:
            return
        with self._lock, contextlib.suppress(Exception):
            sock.sendall(ws.send(CloseConnection(code=1000, reason="test client done")))
        if self._reader is not None:
            self._reader.join(5)
        with contextlib.suppress(OSError):
            sock.close()
        self._sock = None

    def wait_closed(self, timeout: float = 5.0) -> int | None:
        """Wait until the channel socket has ended; returns the server's close code."""
        if not self._ended.wait(timeout):
            raise ReplyTimeout(f"the channel socket is still open after {timeout} s")
        return self.close_code

    def __enter__(self) -> SenteTestClient:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    # ------------------------------------------------------------------ sending

    def send(self, event: Any) -> None:
        """Send an event that wants no reply."""
        self._write(pack(self._packer, normalize_event(event), None))

    def request(self, event: Any, timeout: float = 5.0) -> Any:
        """Send an event and wait for the handler's reply."""
        cb = new_cb_uuid()
        waiter: queue.Queue[Any] = queue.Queue(maxsize=1)
        with self._lock:
            self._replies[cb] = waiter
        self._write(pack(self._packer, normalize_event(event), cb))
        try:
            return waiter.get(timeout=timeout)
        except queue.Empty:
            raise ReplyTimeout(f"no reply to {event!r} within {timeout} s") from None
        finally:
            with self._lock:
                self._replies.pop(cb, None)

    def _write(self, packed: str | bytes) -> None:
        sock, ws = self._sock, self._ws
        if sock is None or ws is None:
            raise ChannelClosed("the test client is not connected; call connect() first")
        message = Message(data=packed) if isinstance(packed, bytes) else TextMessage(data=packed)
        with self._lock:
            sock.sendall(ws.send(message))

    # ------------------------------------------------------------------ receiving

    def next_event(self, timeout: float = 5.0) -> ReceivedEvent:
        """The next pushed event; raises :class:`ReplyTimeout` when none comes in time."""
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            raise ReplyTimeout(f"no event pushed within {timeout} s") from None

    def received(self) -> list[ReceivedEvent]:
        """Every event pushed so far, oldest first (including those ``next_event`` returned)."""
        with self._lock:
            return list(self._received)

    def _read(self, handshake: queue.Queue[Any], early: list[Any]) -> None:
        sock, ws = self._sock, self._ws
        assert sock is not None and ws is not None
        parts: list[Any] = []
        pending = [e for e in early if not isinstance(e, AcceptConnection)]
        try:
            while True:
                if not pending:
                    data = sock.recv(65536)
                    if not data:
                        return
                    ws.receive_data(data)
                    pending = list(ws.events())
                events, pending = pending, []
                for event in events:
                    if isinstance(event, CloseConnection):
                        self.close_code, self.close_reason = event.code, event.reason
                        with self._lock, contextlib.suppress(Exception):
                            sock.sendall(ws.send(event.response()))
                        return
                    if isinstance(event, Message):
                        parts.append(event.data)
                        if event.message_finished:
                            whole = parts[0] if len(parts) == 1 else type(parts[0])().join(parts)
                            parts = []
                            self._on_message(whole, handshake)
        except (OSError, SenteError):
            return
        finally:
            self._ended.set()

    def _on_message(self, whole: str | bytes, handshake: queue.Queue[Any]) -> None:
        value, cb = unpack(self._packer, whole)
        message = classify_server_message(value, cb)
        if message.kind is MessageKind.HANDSHAKE:
            with contextlib.suppress(queue.Full):
                handshake.put_nowait(message.handshake)
        elif message.kind is MessageKind.PING:
            self._write(pack(self._packer, normalize_event(["chsk/ws-pong"]), None))
        elif message.kind is MessageKind.REPLY:
            with self._lock:
                waiter = self._replies.get(str(cb))
            if waiter is not None:
                with contextlib.suppress(queue.Full):
                    waiter.put_nowait(value)
        elif message.kind is MessageKind.PUSH:
            for ev in value:
                received = ReceivedEvent(as_event(ev))
                with self._lock:
                    self._received.append(received)
                self._events.put(received)
