"""The HTTP and WebSocket side of :class:`~tests.client.sente_server.ScriptedSente`.

One thread per connection (``ThreadingHTTPServer``); WebSocket frames through wsproto. The
handler reads and answers requests; what to answer comes from the ``ScriptedSente`` it
serves (its ``sente`` attribute), and fixed messages from the recorded real server.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

from flask_sente.packers import EdnPacker
from flask_sente.protocol import WS_PING, Keyword, handshake_event, has_ajax_cb, pack, unpack
from tests.client.replay.recorded import RECORDED

CSRF = "test-csrf-token"
NO_CLIENT_ID = (
    "Client's Ring request doesn't have a client id. Does your server have the necessary "
    "keyword Ring middleware (`wrap-params` & `wrap-keyword-params`)?"
)
EDN = EdnPacker()
HANDSHAKE_DATA = RECORDED.handshake_data


def wire(value: Any, cb: Any = None) -> str:
    return str(pack(EDN, value, cb))


def keywordize(events: list[Any]) -> list[Any]:
    """Events as the server pushes them: their ids keywords."""
    return [[Keyword(e[0]), *e[1:]] for e in events]


@dataclass
class Received:
    """One client message as the server saw it."""

    transport: str  # "ws" | "ajax-post"
    client_id: str
    uid: str
    wire: str
    event: Any
    cb: Any


@dataclass
class WsPeer:
    sock: socket.socket
    client_id: str
    uid: str
    conn: Connection = field(default_factory=lambda: Connection(ConnectionType.SERVER))
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_activity: float = field(default_factory=time.monotonic)
    closed: threading.Event = field(default_factory=threading.Event)
    reporting: bool = False

    def send_text(self, text: str) -> None:
        with self.lock:
            if self.conn.state is not ConnectionState.OPEN:
                return
            data = self.conn.send(TextMessage(data=text))
            with contextlib.suppress(OSError):
                self.sock.sendall(data)

    def close(self, code: int = 1000, reason: str = "") -> None:
        with self.lock:
            if self.conn.state is not ConnectionState.OPEN:
                return
            data = self.conn.send(CloseConnection(code=code, reason=reason))
            with contextlib.suppress(OSError):
                self.sock.sendall(data)


class SenteHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    #: The ScriptedSente served (typed loosely: that module imports this one).
    sente: Any

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sente.cond:
            self.sente._socks.add(request)
        t = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="scripted-sente-conn",
            daemon=True,
        )
        t.start()

    def shutdown_request(self, request: Any) -> None:
        with self.sente.cond:
            self.sente._socks.discard(request)
        super().shutdown_request(request)


class SenteHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    #: The ScriptedSente served (typed loosely: that module imports this one).
    sente: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def version_string(self) -> str:
        return "http-kit"

    def _reply(self, status: int, body: str, content_type: str | None = None) -> None:
        data = body.encode()
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _edn(self, body: str) -> None:
        self.sente.record_sent(body)
        self.wfile.write(RECORDED.ajax_response(body.encode()))
        self.wfile.flush()

    def _params(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.path).query, True).items()}

    def _csrf_ok(self, params: dict[str, str]) -> bool:
        token = (
            params.get("csrf-token")
            or self.headers.get("x-csrf-token")
            or self.headers.get("x-xsrf-token")
        )
        return token == CSRF

    def do_GET(self) -> None:
        sente = self.sente
        params = self._params()
        with sente.cond:
            sente.http_log.append(("GET", self.path, dict(self.headers.items()), b""))
            sente.cond.notify_all()
        path = urlsplit(self.path).path
        if path == "/push":
            sente.push(params["uid"], [["test/oob-push", params.get("data")]])
            self._reply(200, "ok")
            return
        if path != "/chsk":
            self._reply(404, "not found")
            return
        client_id = params.get("client-id")
        if not client_id:
            self._reply(500, NO_CLIENT_ID, "text/plain; charset=utf-8")
            return
        if not self._csrf_ok(params):
            self._reply(403, "Bad CSRF token")
            return
        uid = params.get("uid") or client_id
        if self.headers.get("Upgrade", "").lower() == "websocket":
            if sente.refuse_upgrades:
                self._reply(403, "WebSocket upgrades are refused here")
                return
            self._websocket(client_id, uid)
            return
        with sente.cond:
            known = client_id in sente.ajax_known
            sente.ajax_known.add(client_id)
        if "handshake?" in params or not known:
            self._edn(wire(handshake_event(uid, HANDSHAKE_DATA)))
            return
        if sente.recovery and "fs-last-seq" in params:
            body = self._numbered_poll(uid, params["fs-last-seq"])
        else:
            body = self._long_poll(uid)
        if body is None:  # the server is stopping: drop the connection, as a crash would
            self.close_connection = True
            return
        self._edn(body)

    def _wait_for(self, uid: str, ready: Callable[[], bool]) -> str | bool | None:
        """Wait, holding ``sente.cond``, until ``ready()`` or a hand-made answer: True when
        ready, else the wire to answer (timeout, the hand-made answer), or None on stop."""
        sente = self.sente
        deadline = time.monotonic() + sente.lp_timeout
        while not (ready() or sente.raw_answers.get(uid)):
            left = deadline - time.monotonic()
            if sente.stopping:
                break
            if left <= 0:
                return RECORDED.timeout
            sente.cond.wait(left)
        if sente.stopping:
            return None
        if sente.raw_answers.get(uid):
            return sente.raw_answers[uid].pop(0)
        return True

    def _long_poll(self, uid: str) -> str | None:
        sente = self.sente
        with sente.cond:
            waited = self._wait_for(uid, lambda: bool(sente.ajax_pending.get(uid)))
            if waited is not True:
                return waited if isinstance(waited, str) else None
        time.sleep(0.1)  # send-buf-ms-ajax
        with sente.cond:
            events = sente.ajax_pending.pop(uid, [])
        return wire(keywordize(events))

    def _numbered_poll(self, uid: str, reported: str) -> str | None:
        """A reporting long-poll: what the mailbox holds after the report, at once or when
        it comes; None when the server stops or the answer is to be lost in transit."""
        sente = self.sente
        with sente.cond:
            start = sente._start_seq(uid, reported)
            waited = self._wait_for(uid, lambda: len(sente.mailbox.get(uid, [])) > start)
            if waited is not True:
                return waited if isinstance(waited, str) else None
            box = sente.mailbox[uid]
            sente.delivered[uid] = max(sente.delivered.get(uid, 0), len(box))
            if sente.drop_answers > 0:
                sente.drop_answers -= 1
                return None
            return sente.numbered(box[start:], len(box))

    def do_POST(self) -> None:
        sente = self.sente
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        with sente.cond:
            sente.http_log.append(("POST", self.path, dict(self.headers.items()), body))
            sente.cond.notify_all()
        form = {k: v[0] for k, v in parse_qs(body.decode(), True).items()}
        if not self._csrf_ok(form):
            self._reply(403, "Bad CSRF token")
            return
        client_id = form.get("client-id", "")
        params = self._params()
        uid = params.get("uid") or client_id
        event, cb = unpack(EDN, form["ppstr"])
        sente.record(Received("ajax-post", client_id, uid, form["ppstr"], event, cb))
        if not has_ajax_cb(cb):
            self._edn(RECORDED.dummy)
            sente.handle_event(uid, event, None)
            return
        box: list[Any] = []
        got = threading.Event()

        def reply(value: Any) -> None:
            if not got.is_set():
                box.append(value)
                got.set()

        sente.handle_event(uid, event, reply)
        self._edn(wire(box[0]) if got.wait(sente.lp_timeout) else RECORDED.timeout)

    # ------------------------------------------------------------------ WebSocket

    def _websocket(self, client_id: str, uid: str) -> None:
        sente = self.sente
        reported = self._params().get("fs-last-seq")
        key = self.headers["Sec-WebSocket-Key"].encode()
        self.wfile.write(RECORDED.upgrade(key))
        self.wfile.flush()
        self.close_connection = True
        peer = WsPeer(self.connection, client_id, uid)
        peer.reporting = sente.recovery and reported is not None
        hs = wire(handshake_event(uid, HANDSHAKE_DATA))
        with sente.push_lock:
            with sente.cond:
                sente.ws_peers.append(peer)
                sente.ws_upgrades += 1
                backlog, n = [], 0
                if peer.reporting:
                    box = sente.mailbox.get(uid, [])
                    backlog, n = box[sente._start_seq(uid, reported) :], len(box)
                    sente.delivered[uid] = n
            peer.send_text(hs)
            sente.record_sent(hs)
            if backlog:
                text = sente.numbered(backlog, n)
                peer.send_text(text)
                sente.record_sent(text)
        if sente.ws_kalive_ms:
            threading.Thread(
                target=self._kalive, args=(peer,), name="scripted-sente-kalive", daemon=True
            ).start()
        try:
            self._ws_read(peer)
        finally:
            peer.closed.set()
            with sente.cond:
                if peer in sente.ws_peers:
                    sente.ws_peers.remove(peer)
                sente.cond.notify_all()

    def _ws_read(self, peer: WsPeer) -> None:
        sente = self.sente
        while True:
            try:
                data = self.rfile.read1(65536)
            except OSError:
                return
            if not data:
                return
            peer.last_activity = time.monotonic()
            with peer.lock:
                peer.conn.receive_data(data)
                events = list(peer.conn.events())
            for ev in events:
                if isinstance(ev, CloseConnection):
                    with peer.lock:
                        if peer.conn.state is ConnectionState.REMOTE_CLOSING:
                            with contextlib.suppress(OSError):
                                peer.sock.sendall(peer.conn.send(ev.response()))
                    sente.record(
                        Received("ws-close", peer.client_id, peer.uid, "", ev.code, ev.reason)
                    )
                    return
                if isinstance(ev, Ping):
                    with peer.lock:
                        peer.sock.sendall(peer.conn.send(ev.response()))
                elif isinstance(ev, TextMessage | BytesMessage):
                    self._ws_message(peer, str(ev.data))

    def _ws_message(self, peer: WsPeer, text: str) -> None:
        sente = self.sente
        try:
            event, cb = unpack(EDN, text)
        except Exception:
            sente.record(Received("ws", peer.client_id, peer.uid, text, None, None))
            return
        sente.record(Received("ws", peer.client_id, peer.uid, text, event, cb))
        if not isinstance(event, list):
            return
        if event and event[0] == WS_PING:
            if cb is not None:
                out = RECORDED.pong(cb)
                peer.send_text(out)
                sente.record_sent(out)
            return

        def reply(value: Any) -> None:
            out = wire(value, cb)
            peer.send_text(out)
            sente.record_sent(out)

        sente.handle_event(peer.uid, event, reply if cb is not None else None)

    def _kalive(self, peer: WsPeer) -> None:
        """Sente's server keepalive (spec 4.5): ping after idleness, close if no answer."""
        sente = self.sente
        assert sente.ws_kalive_ms
        k = sente.ws_kalive_ms / 2000
        pinged = False
        last_check = time.monotonic()
        while not peer.closed.wait(k if not pinged else sente.ws_ping_timeout):
            active = peer.last_activity > last_check
            last_check = time.monotonic()
            if active:
                pinged = False
                continue
            if pinged:
                with contextlib.suppress(OSError):
                    peer.sock.shutdown(socket.SHUT_RDWR)
                return
            ping = RECORDED.ping
            peer.send_text(ping)
            sente.record_sent(ping)
            pinged = True
