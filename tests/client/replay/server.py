"""A server on 127.0.0.1 that answers a client with the bytes a real Sente server sent.

Every byte it writes comes from a transcript (through :class:`~.script.Script`): the ``101``
and its handshake frame, replies, pushes, close frames, long-poll answers, F11's bare chunk
terminator. It finds each client message among the recorded ones (equal after the script's
normalising), writes the recorded answer, and logs what the client sent, with every mismatch:
a message the real client never sent, or headers that differ from the real client's beyond
``platform_headers`` (the platform's own). ``pages`` serves a browser test its page.
Timer-driven messages come on this server's clock, with the recorded bytes: the long-poll
timeout after ``lp_timeout_ms``, the keepalive ping when a test calls :meth:`~ReplayServer.ping`.

F11's terminator fails the poll of a Node or Python client at once, but a browser waits for
more bytes while the connection stays open (Chromium: until its request times out);
``close_after_raw`` takes the other form F11 allows, the terminator then the end of the
connection, which fails a browser's request at once too.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wsproto.utilities import generate_accept_token

from tests.client.replay import wire
from tests.client.replay.script import Exchange, Script, frame_key, header, target_of
from tests.client.replay.wire import Peer, header_set, read_frame, show, ws_frame
from tests.transcripts import Record

#: Headers of the Python client's platform (requests, websocket-client), not Sente's.
PYTHON_PLATFORM = frozenset({"user-agent"})
#: Seconds a request without a recorded answer is held, waiting for the client to give up.
HOLD = 30.0


@dataclass
class Seen:
    """One thing a client did: an HTTP request, a frame, or closing its connection."""

    t: float
    conn: int
    lane: str
    record: Record
    exchange: Exchange | None = None
    #: What the server wrote back (the recorded answer), in order.
    answered: list[Record] = field(default_factory=list)


class ReplayServer:
    """Answers like the recorded server; see the module docstring."""

    def __init__(
        self,
        script: Script,
        *,
        lp_timeout_ms: int = 3000,
        platform_headers: Iterable[str] = PYTHON_PLATFORM,
        pages: Mapping[str, tuple[str, bytes]] | None = None,
        close_after_raw: bool = False,
    ) -> None:
        self.script = script
        self.lp_timeout = lp_timeout_ms / 1000
        self.platform = frozenset(platform_headers)
        self.pages = dict(pages or {})
        self.close_after_raw = close_after_raw
        self.seen: list[Seen] = []
        self.mismatches: list[str] = []
        self.cond = threading.Condition()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._peers: list[Peer] = []
        self._threads: list[threading.Thread] = []
        self._ws: Peer | None = None
        self._poll_answers: list[Record] = []
        self._wakers: set[socket.socket] = set()
        self._used: set[int] = set()
        self._stopping = False
        self._t0 = time.monotonic()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base + "/chsk"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ReplayServer:
        self._spawn(self._accept, "replay-accept")
        return self

    def stop(self) -> None:
        with self.cond:
            self._stopping = True
            peers = list(self._peers)
            self._wake()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        for peer in peers:
            peer.shutdown()
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, fn: Callable[..., None], name: str, *args: Any) -> None:
        thread = threading.Thread(target=fn, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        n = 0
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            n += 1
            peer = Peer(sock, n)
            with self.cond:
                if self._stopping:
                    sock.close()
                    return
                self._peers.append(peer)
            self._spawn(self._serve, f"replay-conn-{n}", peer)

    # ------------------------------------------------------------------ for tests

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait (bounded) until ``predicate()`` holds; fail with what was seen otherwise."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not (value := predicate()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"not seen within {timeout} s: {predicate}\n{self.describe()}"
                    )
                self.cond.wait(left)
            return value

    def lane(self, name: str, kind: str | None = None) -> list[Seen]:
        with self.cond:
            return [s for s in self.seen if s.lane == name and kind in (None, s.record.kind)]

    def describe(self) -> str:
        """What the client sent, one line each, and every mismatch: for failure messages."""
        with self.cond:
            lines = [f"{s.t:7.3f} conn={s.conn} {s.lane:6} {show(s.record)}" for s in self.seen]
            return "\n".join([*lines, *(f"MISMATCH {m}" for m in self.mismatches)])

    def ping(self) -> None:
        """The server's keepalive ping (the recorded frame) to the open WebSocket."""
        assert self.script.ping is not None, "the transcript has no server ping"
        with self.cond:
            peer = self._ws
        assert peer is not None, "no WebSocket is open"
        self._write(peer, self.script.ping, None, None)

    def helper(self, scenario: str) -> list[bytes]:
        """Send the recording driver's own plain HTTP requests of ``scenario`` (not Sente's
        client) exactly as recorded; their responses, whole."""
        out = []
        for exchange in self.script.scenario_exchanges(scenario):
            if exchange.lane != "helper":
                continue
            request = exchange.request
            head = request.head.replace(f":{self.script.port}\r\n", f":{self.port}\r\n")
            out.append(wire.http_exchange(self.port, head.encode("latin-1") + request.body))
        return out

    # ------------------------------------------------------------------ serving

    def _note(self, items: list[Any], item: Any) -> None:
        """Append to a log the tests wait on."""
        with self.cond:
            items.append(item)
            self.cond.notify_all()

    def _log(self, peer: Peer, record: Record, lane: str) -> Seen:
        seen = Seen(round(time.monotonic() - self._t0, 3), peer.n, lane, record)
        self._note(self.seen, seen)
        return seen

    def _mismatch(self, text: str) -> None:
        self._note(self.mismatches, text)

    def _pick(self, record: Record) -> Exchange | None:
        """The recorded exchange of this message: the first one not replayed yet."""
        found = self.script.find(self.script.key(record))
        with self.cond:
            fresh = [e for e in found if id(e) not in self._used]
            chosen = (fresh or found or [None])[0]
            if chosen is not None:
                self._used.add(id(chosen))
        return chosen

    def _serve(self, peer: Peer) -> None:
        try:
            while True:
                raw = peer.read_until(b"\r\n\r\n")
                if raw is None:
                    self._log(peer, Record(0, peer.n, "C", "fin"), "fin")
                    return
                head = raw.decode("latin-1")
                body = peer.read_exact(int(header(head, "content-length") or 0)) or b""
                if not self._request(peer, Record(0, peer.n, "C", "http", head=head, body=body)):
                    return
        finally:
            peer.close()

    def _request(self, peer: Peer, record: Record) -> bool:
        """Answer one HTTP request; False when the connection is done."""
        page = self.pages.get(target_of(record.head)[1])
        if page is not None:  # the test's own page, not Sente's traffic: not logged
            peer.write(wire.ok_response(*page))
            return True
        lane = self.script.lane(record)
        seen = self._log(peer, record, lane)
        is_poll = lane == "poll" and not self.script.is_handshake_poll(record)
        if is_poll:  # any recorded poll: the answer depends on what happens meanwhile
            exchange = next(iter(self.script.find(self.script.key(record))), None)
        else:
            exchange = self._pick(record)
        seen.exchange = exchange
        if exchange is None:
            self._mismatch(f"conn={peer.n} a request the real client never sent: {show(record)}")
            peer.write(b"HTTP/1.1 500 Not in the transcript\r\ncontent-length: 0\r\n\r\n")
            return True
        if lane != "helper":
            self._check_headers(record, exchange.request)
        if is_poll:
            return self._poll(peer, seen)
        if lane == "ws":
            self._answer(peer, seen, exchange, None)
            self._websocket(peer)
            return False
        self._answer(peer, seen, exchange, None)
        if not exchange.answer:
            return self._hold(peer, seen)
        return True

    def _check_headers(self, actual: Record, recorded: Record) -> None:
        got, want = header_set(actual.head, self.platform), header_set(recorded.head, self.platform)
        if got != want:
            self._mismatch(
                f"headers of {actual.start_line!r}: extra {sorted(got - want)}, "
                f"missing {sorted(want - got)}"
            )

    def _answer(self, peer: Peer, seen: Seen, exchange: Exchange, cb: str | None) -> None:
        recorded_cb = None
        if exchange.request.kind == "ws":
            request = exchange.request
            recorded_cb = frame_key(self.script.packer, request.opcode, request.body)[2]
        for record in exchange.answer:
            self._write(peer, record, recorded_cb, cb, request=seen.record)
            self._note(seen.answered, record)
        for record in exchange.consequences:
            if record.kind == "ws":
                with self.cond:
                    target = self._ws
                if target is None:
                    self._mismatch(f"no WebSocket open for the push {show(record)}")
                else:
                    self._write(target, record, None, None)
            else:
                with self.cond:
                    self._poll_answers.append(record)
                    self._wake()

    def _write(
        self,
        peer: Peer,
        record: Record,
        recorded_cb: str | None,
        cb: str | None,
        request: Record | None = None,
    ) -> None:
        if record.kind == "ws":
            body = record.body
            if recorded_cb and cb:
                body = body.replace(recorded_cb.encode(), cb.encode())
            peer.close_sent |= record.opcode == "close"
            peer.write(ws_frame(record.opcode, body))
        elif record.kind == "raw":
            peer.write(record.body)
            if self.close_after_raw:
                peer.shutdown()
        else:
            head = record.head
            key = header(request.head, "sec-websocket-key") if request else None
            if key is not None:  # the 101: the accept token of this client's key
                token = generate_accept_token(key.encode()).decode()
                head = head.replace(
                    f": {header(head, 'sec-websocket-accept')}\r\n", f": {token}\r\n"
                )
            peer.write(head.encode("latin-1") + record.body)

    # ------------------------------------------------------------------ waiting

    def _wake(self) -> None:
        """Wake every waiting long-poll (the caller holds ``cond``)."""
        for waker in self._wakers:
            with contextlib.suppress(OSError):
                waker.send(b"!")

    def _wait_readable(self, peer: Peer, deadline: float, ready: Callable[[], Any]) -> Any:
        """Wait until ``ready()`` (checked under ``cond``) gives something, the client sends
        or closes (None), the server stops (None) or ``deadline`` passes (False)."""
        wake_r, wake_w = socket.socketpair()
        with self.cond:
            self._wakers.add(wake_w)
        try:
            while True:
                with self.cond:
                    if self._stopping:
                        return None
                    if value := ready():
                        return value
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                readable, _, _ = select.select([peer.sock, wake_r], [], [], left)
                if peer.sock in readable:
                    return None
                if wake_r in readable:
                    wake_r.recv(64)
        finally:
            with self.cond:
                self._wakers.discard(wake_w)
            wake_r.close()
            wake_w.close()

    def _poll(self, peer: Peer, seen: Seen) -> bool:
        """A long-poll: answered by what the next recorded trigger sends it, or timed out
        with the recorded timeout answer."""

        def queued() -> Record | None:
            return self._poll_answers.pop(0) if self._poll_answers else None

        got = self._wait_readable(peer, time.monotonic() + self.lp_timeout, queued)
        if got is None:
            return True  # the client closed (or wrote): the read loop sees which
        answer = self.script.timeout if got is False else got
        assert answer is not None, "the transcript has no long-poll timeout"
        self._write(peer, answer, None, None)
        self._note(seen.answered, answer)
        return True

    def _hold(self, peer: Peer, seen: Seen) -> bool:
        """A request the real server never answered (F7): wait for the client to give up."""
        got = self._wait_readable(peer, time.monotonic() + HOLD, lambda: None)
        if got is False:
            self._mismatch(f"the client never gave up on {show(seen.record)}")
            return False
        return True

    # ------------------------------------------------------------------ WebSocket

    def _websocket(self, peer: Peer) -> None:
        with self.cond:
            self._ws = peer
        try:
            while (frame := read_frame(peer)) is not None:
                seen = self._log(peer, frame, "ws")
                exchange = self._pick(frame)
                seen.exchange = exchange
                if exchange is None:
                    self._mismatch(
                        f"conn={peer.n} a frame the real client never sent {show(frame)}"
                    )
                else:
                    cb = frame_key(self.script.packer, frame.opcode, frame.body)[2]
                    self._answer(peer, seen, exchange, cb)
                if frame.opcode == "close":
                    if not peer.close_sent:
                        self._mismatch(f"conn={peer.n} no recorded answer to {show(frame)}")
                    return
            self._log(peer, Record(0, peer.n, "C", "fin"), "fin")
        finally:
            with self.cond:
                if self._ws is peer:
                    self._ws = None
