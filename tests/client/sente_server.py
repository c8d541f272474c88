"""A scripted stand-in for the real Sente 1.22 server, for what no transcript records.

What the real client sends, and what the real server answers to it, is proven by replaying
the transcripts (``tests/client/replay``, ``test_replay.py``). This server covers the rest:
any uid, any event data, failures and restarts, refused upgrades, recovery. It behaves as
the real server of ``captured-sente-1.22.txt`` (edn packer, CSRF token ``test-csrf-token``,
uid = the ``uid`` param else the client-id, the ``test/*`` handlers), and every fixed message
it writes is the recorded one, taken from the transcripts (:data:`RECORDED`): the ``101`` and
Ajax response heads, the handshake data, ``[:chsk/timeout nil]``, ``[:chsk/dummy-cb-200 nil]``,
the keepalive ping, the ``"pong"`` reply and the close frame of ``[:chsk/close]``. Messages
carrying the test's own data are packed by the edn packer. Standard library HTTP plus wsproto
for WebSocket frames; every client message is recorded, as wire text, for the tests to inspect.

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
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.client.replay.recorded import RECORDED
from tests.client.sente_http import (
    CSRF,
    EDN,
    HANDSHAKE_DATA,
    Received,
    SenteHandler,
    SenteHTTPServer,
    WsPeer,
    keywordize,
    wire,
)

__all__ = ["CSRF", "HANDSHAKE_DATA", "Received", "ScriptedSente"]


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
        self._httpd: SenteHTTPServer | None = None
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

        class Handler(SenteHandler):
            sente = server

        self.stopping = False
        httpd = SenteHTTPServer(("127.0.0.1", self.requested_port), Handler)
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
        batch = wire(keywordize(events))
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
        return str(EDN.pack([keywordize(events), None, f"{epoch or self.epoch}:{n}"]))

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
            peer.close(*RECORDED.close)

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
