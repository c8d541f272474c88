"""A scripted stand-in for the real Sente 1.22 server of ``captured-sente-1.22.txt``.

It answers byte for byte as the captured http-kit server did (edn packer, CSRF token
``test-csrf-token``, uid = the ``uid`` param else the client-id, handshake data
``{:hello "world", :n 1}``, the ``test/*`` handlers), so the client can be proven against
real Sente behaviour without a JVM. Standard library HTTP plus wsproto for WebSocket
frames; every client message is recorded, as wire text, for the tests to inspect.

With ``recovery=True`` it also speaks flask_sente's push recovery (``docs/reliability.md``)
to connections that send ``fs-last-seq``: one mailbox per uid numbers every push, batches
go out as ``[[ev...] nil "<epoch>:<n>"]``, and a connect or a poll gets what came after the
number it reports. ``forget()`` starts a new epoch; ``drop_answers`` loses poll answers in
transit; ``send_raw`` and ``answer_raw`` put hand-made messages on the wire.
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
from wsproto.utilities import generate_accept_token

from flask_sente.packers import EdnPacker
from flask_sente.protocol import (
    DUMMY_CB_200,
    PONG,
    TIMEOUT,
    WS_PING,
    Keyword,
    handshake_event,
    has_ajax_cb,
    pack,
    unpack,
)

CSRF = "test-csrf-token"
HANDSHAKE_DATA = {"hello": "world", "n": 1}
NO_CLIENT_ID = (
    "Client's Ring request doesn't have a client id. Does your server have the necessary "
    "keyword Ring middleware (`wrap-params` & `wrap-keyword-params`)?"
)
EDN = EdnPacker()


def wire(value: Any, cb: Any = None) -> str:
    return str(pack(EDN, value, cb))


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


class ScriptedSente:
    """The server. ``refuse_upgrades`` answers WebSocket upgrades with 403."""

    def __init__(
        self,
        port: int = 0,
        *,
        refuse_upgrades: bool = False,
        lp_timeout_ms: int = 5000,
        ws_kalive_ms: int | None = None,
        ws_ping_timeout_ms: int = 10_000,
        recovery: bool = False,
    ) -> None:
        self.requested_port = port
        self.refuse_upgrades = refuse_upgrades
        self.lp_timeout = lp_timeout_ms / 1000
        self.ws_kalive_ms = ws_kalive_ms
        self.ws_ping_timeout = ws_ping_timeout_ms / 1000
        self.cond = threading.Condition()
        self.received: list[Received] = []
        self.sent: list[str] = []
        self.http_log: list[tuple[str, str, dict[str, str], bytes]] = []
        self.ws_peers: list[WsPeer] = []
        self.ajax_known: set[str] = set()
        self.ajax_pending: dict[str, list[Any]] = {}
        self.ws_upgrades = 0
        self.recovery = recovery
        self.epoch = "ep1"
        self.mailbox: dict[str, list[Any]] = {}
        self.delivered: dict[str, int] = {}
        self.drop_answers = 0
        self.raw_answers: dict[str, list[str]] = {}
        self.push_lock = threading.Lock()
        self.stopping = False
        self._socks: set[socket.socket] = set()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/chsk"

    def start(self) -> ScriptedSente:
        server = self

        class Handler(_Handler):
            sente = server

        self.stopping = False
        httpd = _Server(("127.0.0.1", self.requested_port), Handler)
        httpd.sente = self
        self._httpd = httpd
        self.requested_port = self.port
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="scripted-sente"
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, drop every connection at once (as a crashed server would)."""
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        with self.cond:
            socks = list(self._socks)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)
        with self.cond:
            self.ws_peers.clear()

    def __enter__(self) -> ScriptedSente:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers for tests

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def events(self, event_id: str) -> list[Received]:
        with self.cond:
            return [r for r in self.received if r.event and r.event[0] == event_id]

    def record(self, item: Received) -> None:
        with self.cond:
            self.received.append(item)
            self.cond.notify_all()

    def record_sent(self, text: str) -> None:
        with self.cond:
            self.sent.append(text)
            self.cond.notify_all()

    def last_seqs(self) -> list[str | None]:
        """The ``fs-last-seq`` of every channel socket GET (WebSocket or Ajax), in order."""
        with self.cond:
            paths = [e[1] for e in self.http_log if e[0] == "GET"]
        return [
            {k: v[0] for k, v in parse_qs(urlsplit(path).query, True).items()}.get("fs-last-seq")
            for path in paths
            if urlsplit(path).path == "/chsk"
        ]

    # ------------------------------------------------------------------ pushes

    def push(self, uid: str, events: list[Any], *, flush: bool = False) -> None:
        """``send-fn``: one batch ``[[ev...] nil]`` to every WS and (next) Ajax poll of ``uid``.

        With ``recovery``, reporting connections get it numbered, from the uid's mailbox.
        """
        batch = wire(_keywordize(events))
        if not flush:
            time.sleep(0.03)  # send-buf-ms-ws: the batching window of the real server
        with self.push_lock:
            with self.cond:
                peers = [p for p in self.ws_peers if p.uid == uid]
                self.ajax_pending.setdefault(uid, []).extend(events)
                if self.recovery:
                    box = self.mailbox.setdefault(uid, [])
                    box.extend(events)
                    numbered = self.numbered(events, len(box))
                    if any(p.reporting for p in peers):
                        self.delivered[uid] = len(box)
                self.cond.notify_all()
            for peer in peers:
                text = numbered if peer.reporting else batch
                peer.send_text(text)
                self.record_sent(text)

    def numbered(self, events: list[Any], n: int, epoch: str | None = None) -> str:
        """A numbered batch ``[[ev...] nil "<epoch>:<n>"]`` (events ``n-k+1 .. n``)."""
        return str(EDN.pack([_keywordize(events), None, f"{epoch or self.epoch}:{n}"]))

    def forget(self) -> None:
        """Lose every mailbox and number anew, as a restarted flask_sente server would."""
        with self.push_lock, self.cond:
            self.epoch = f"ep{int(self.epoch[2:]) + 1}"
            self.mailbox.clear()
            self.delivered.clear()

    def _start_seq(self, uid: str, reported: str | None) -> int:
        """Where a connection starts in ``uid``'s mailbox (caller holds ``cond``).

        After the reported number when it is of this epoch; at the start of the mailbox
        when the client reports ``-`` or another epoch (it has received none of it); after
        what earlier connections were given when it reports nothing (a Sente client).
        """
        if reported is None:
            return self.delivered.get(uid, 0)
        epoch, _, n = reported.rpartition(":")
        if epoch == self.epoch and n.isdigit() and int(n) <= len(self.mailbox.get(uid, [])):
            return int(n)
        return 0

    def send_raw(self, uid: str, text: str) -> None:
        """Write ``text`` as one frame to every WebSocket of ``uid``."""
        with self.cond:
            peers = [p for p in self.ws_peers if p.uid == uid]
        for peer in peers:
            peer.send_text(text)
            self.record_sent(text)

    def answer_raw(self, uid: str, text: str) -> None:
        """Answer ``uid``'s next long-poll with ``text``."""
        with self.cond:
            self.raw_answers.setdefault(uid, []).append(text)
            self.cond.notify_all()

    def close_uid(self, uid: str) -> None:
        with self.cond:
            peers = [p for p in self.ws_peers if p.uid == uid]
        for peer in peers:
            peer.close(1000, "")

    def handle_event(self, uid: str, event: Any, reply: Any) -> None:
        """The captured server's handler: test/echo, test/push-me, test/close-me..."""
        if not isinstance(event, list) or not event:
            return
        ev_id, data = event[0], (event[1] if len(event) > 1 else None)
        if ev_id == "test/echo" and reply:
            reply({"echo": data})
        elif ev_id == "test/reply-str" and reply:
            reply("a-string-reply")
        elif ev_id == "test/push-me":
            self.push(uid, [["test/pushed", {"got": data}]])
        elif ev_id == "test/push-3":
            self.push(uid, [["test/pushed", 0], ["test/pushed", 1], ["test/pushed", 2]])
        elif ev_id == "test/push-flush":
            self.push(uid, [["test/pushed-flushed", data]], flush=True)
        elif ev_id == "test/close-me":
            self.close_uid(uid)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    sente: ScriptedSente

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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sente: ScriptedSente

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
        self._reply(200, body, "text/html; charset=utf-8")

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
                return wire(TIMEOUT)
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
        return wire(_keywordize(events))

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
            self._edn(wire(DUMMY_CB_200))
            sente.handle_event(uid, event, None)
            return
        box: list[Any] = []
        got = threading.Event()

        def reply(value: Any) -> None:
            if not got.is_set():
                box.append(value)
                got.set()

        sente.handle_event(uid, event, reply)
        self._edn(wire(box[0] if got.wait(sente.lp_timeout) else TIMEOUT))

    # ------------------------------------------------------------------ WebSocket

    def _websocket(self, client_id: str, uid: str) -> None:
        sente = self.sente
        reported = self._params().get("fs-last-seq")
        key = self.headers["Sec-WebSocket-Key"].encode()
        self.wfile.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-Websocket-Accept: " + generate_accept_token(key) + b"\r\n\r\n"
        )
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
                out = wire(PONG, cb)
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
            ping = wire(WS_PING)
            peer.send_text(ping)
            sente.record_sent(ping)
            pinged = True


def _keywordize(events: list[Any]) -> list[Any]:
    return [[Keyword(e[0]), *e[1:]] for e in events]
