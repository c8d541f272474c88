"""One app's channel-socket server: connections, pushes, and incoming events.

:class:`ChannelServer` is what ``Sente.init_app`` builds per Flask app. It knows nothing of
Flask's request globals: the extension hands it a :class:`RequestSnapshot` (and, for a
WebSocket, the WSGI environ), and gets back what to answer.

Message flow::

    client frame / POST -> unpack -> as_event -> EventMsg -> ch_recv -> router -> handler
    Sente.send(uid, ev) -> SendBuffers (batch window) -> _deliver -> each slot of uid:
        live WebSocket: queued on the connection; live long-poll: answers it;
        neither (grace period, between polls): kept in the slot's outbox for its return
"""

from __future__ import annotations

import logging
import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .config import Options
from .errors import UnpackError
from .events import EventMsg, RequestSnapshot
from .protocol import (
    ALL_USERS_WITHOUT_UID,
    BAD_PACKAGE,
    CLOSE,
    DUMMY_CB_200,
    NIL_UID,
    PONG,
    TIMEOUT,
    UIDPORT_CLOSE,
    UIDPORT_OPEN,
    WS_PING,
    WS_PONG,
    as_event,
    assert_event,
    handshake_event,
    has_ajax_cb,
    normalize_event,
    pack,
    push_batch,
    unpack,
)
from .push import SendBuffers
from .registry import Registry, Slot
from .router import Handlers, RecvQueue, Router
from .runtime import concurrency_mode
from .scheduler import Scheduler
from .transports.longpoll import CLOSED_BY_SERVER, LongPoll, OneShot
from .transports.loop import EventLoop
from .transports.sockets import can_detach, detach, socket_from_environ
from .transports.threaded import serve_on_thread
from .transports.websocket import GOING_AWAY, WsSession

logger = logging.getLogger("flask_sente.server")

#: A plain (status, body) answer; the extension turns it into a Flask response.
Answer = tuple[int, str | bytes]
#: Builds a whole HTTP response (status line, headers, body) for a held long-poll.
RawResponse = Callable[[str | bytes], bytes]


@dataclass(frozen=True, slots=True)
class Handover:
    """A connection to move to the event loop once Flask has finished its response.

    The extension calls :meth:`run` from the WSGI response, after ``after_request``
    hooks ran, with a builder of raw HTTP responses that carry the headers they added.
    """

    server_sock: socket.socket
    mode: str
    start: Callable[[socket.socket, RawResponse], None]

    def run(self, raw_response: RawResponse) -> None:
        self.start(detach(self.server_sock), raw_response)


_BINARY_FLAGS = ("true", "1")
_BUSY = "server busy: every thread that may hold a connection is in use; retry shortly"


class ChannelServer:
    """Connections, presence, pushes and the receive queue of one Flask app."""

    def __init__(
        self,
        options: Options,
        handlers: Handlers[EventMsg],
        *,
        run_in_app_context: Callable[[Callable[[], Any]], Any],
    ) -> None:
        self.options = options
        self.packer = options.packer
        self._handlers = handlers
        self._run_in_app_context = run_in_app_context
        self.scheduler = Scheduler()
        self.registry = Registry(
            self.scheduler,
            grace_s={
                "ws": options.ms_allow_reconnect_before_close_ws / 1000,
                "ajax": options.ms_allow_reconnect_before_close_ajax / 1000,
            },
            on_uid_open=lambda uid, slot: self._emit_internal([UIDPORT_OPEN, uid], slot),
            on_uid_close=lambda uid, slot: self._emit_internal([UIDPORT_CLOSE, uid], slot),
            on_dropped=self._dropped_with_slot,
        )
        self.buffers = SendBuffers(
            self.scheduler,
            windows_s={
                "ws": options.send_buf_ms_ws / 1000,
                "ajax": options.send_buf_ms_ajax / 1000,
            },
            deliver=self._deliver,
        )
        self.ch_recv: RecvQueue[EventMsg] = RecvQueue(options.recv_buf_or_n)
        self._router: Router[EventMsg] | None = None
        self._auto_router = True
        self._router_lock = threading.Lock()
        self.undelivered = 0
        self._closed = False
        self._loop: EventLoop | None = None
        self._held = 0
        self._held_lock = threading.Lock()
        self.mode = options.connection_mode
        if self.mode == "auto":
            self.mode = "thread" if concurrency_mode() == "gevent" else "loop"
        if self.mode == "loop":
            where = "one event-loop thread (requests return to the pool at once)"
        else:
            where = "greenlets" if concurrency_mode() == "gevent" else "their request threads"
        logger.info("WebSockets and long-polls run on %s", where)

    # ------------------------------------------------------------------ packing

    def _pack(self, value: Any, cb: Any = None) -> str | bytes:
        return pack(self.packer, value, cb, legacy=self.options.write_legacy_pack_format)

    # ------------------------------------------------------------------ routing

    def start_router(
        self,
        handler: Callable[[EventMsg], Any],
        *,
        error_handler: Callable[[EventMsg, BaseException], Any] | None = None,
        trace_evs: bool = False,
        simple_auto_threading: bool = False,
        workers: int | None = None,
    ) -> Callable[[], None]:
        """Run ``handler`` on every message of ``ch_recv``; returns ``stop()``."""
        if self._router is not None:
            self._router.stop()
        n = workers or (self.options.handler_workers if simple_auto_threading else 1)
        router = Router(
            self.ch_recv,
            handler,
            error_handler=error_handler,
            workers=n,
            key=lambda msg: msg.client_id,
            wrap=self._run_in_app_context,
            trace_evs=trace_evs,
        )
        self._router = router

        def stop() -> None:
            router.stop()
            if self._router is router:
                self._router = None

        return stop

    def use_custom_router(self) -> None:
        """The application reads ``ch_recv`` itself: do not start the handler router."""
        self._auto_router = False
        if self._router is not None:
            self._router.stop()
            self._router = None

    def _ensure_router(self) -> None:
        if self._router is not None or not self._auto_router:
            return
        with self._router_lock:
            if self._router is None and self._auto_router and not self._closed:
                self.start_router(
                    self._handlers.dispatch,
                    error_handler=lambda msg, exc: self._on_handler_error(msg, exc),
                    workers=self.options.handler_workers,
                )

    def _on_handler_error(self, msg: EventMsg, exc: BaseException) -> None:
        handler = self._handlers.error_handler
        if handler is None:
            logger.error("handler for %r failed", msg.id, exc_info=exc)
        else:
            handler(msg, exc)

    def _emit(
        self,
        event: list[Any],
        *,
        uid: Any,
        client_id: str | None,
        request: RequestSnapshot | None,
        reply: Callable[[Any], bool] | None,
    ) -> None:
        self._ensure_router()
        self.ch_recv.put(
            EventMsg(
                event=event,
                uid=uid,
                client_id=client_id,
                request=request,
                reply=reply,
                send=self.send,
                connected_uids=self.registry.connected_uids(),
            )
        )

    def _emit_internal(self, event: list[Any], slot: Slot) -> None:
        self._emit(event, uid=slot.uid, client_id=slot.client_id, request=None, reply=None)

    def _read_package(
        self, package: str | bytes, uid: Any, client_id: str | None, req: RequestSnapshot
    ) -> tuple[list[Any], Any] | None:
        try:
            value, cb = unpack(self.packer, package)
        except UnpackError as exc:
            logger.info("bad package from client %s: %s", client_id, exc)
            self._emit(
                [BAD_PACKAGE, package], uid=uid, client_id=client_id, request=req, reply=None
            )
            return None
        return as_event(value), cb

    # ------------------------------------------------------------------ pushing

    def send(self, uid: Any, event: Any, flush: bool = False) -> None:
        """Push ``event`` to every connection of ``uid``; batched unless ``flush``."""
        if uid is None:
            raise ValueError(
                'sending to a None uid is not supported (as in Sente); use "sente/all-users-'
                'without-uid" to reach clients without a uid'
            )
        ev = normalize_event(assert_event(event))
        if uid == ALL_USERS_WITHOUT_UID:
            uid = NIL_UID
        if ev[0] == CLOSE:
            self.close_uid(uid)
            return
        if not self.registry.has_uid(uid):
            self._undeliverable(uid, 1, "the uid has no connection")
            return
        self.buffers.add(uid, ev, flush=flush)

    def broadcast(self, event: Any, flush: bool = False) -> None:
        """Push ``event`` to every connected uid."""
        for uid in self.registry.connected_uids()["any"]:
            self.send(uid, event, flush=flush)

    def close_uid(self, uid: Any) -> None:
        """Close every connection of ``uid`` (what ``["chsk/close"]`` does)."""
        for kind in ("ws", "ajax"):
            for slot in self.registry.slots(kind, uid):
                conn = slot.conn
                if conn is not None:
                    conn.close()

    def _deliver(self, kind: str, uid: Any, events: list[Any]) -> None:
        slots = self.registry.slots(kind, uid)
        if not slots:
            return
        lock = self.registry.lock
        if kind == "ws":
            packed = self._pack(push_batch(events))
            for slot in slots:
                with lock:
                    conn = slot.conn
                    if conn is None or not conn.deliver(packed):
                        slot.outbox.extend(events)
        else:
            for slot in slots:
                with lock:
                    pending = slot.outbox + events
                    conn = slot.conn
                    if conn is not None and conn.offer(pending):
                        slot.outbox = []
                    else:
                        slot.outbox = pending

    def _undeliverable(self, uid: Any, count: int, why: str) -> None:
        self.undelivered += count
        logger.warning("push to uid %r not delivered (%d event(s)): %s", uid, count, why)

    def _dropped_with_slot(self, slot: Slot, count: int) -> None:
        self._undeliverable(
            slot.uid,
            count,
            f"client {slot.client_id} ({slot.kind}) did not come back within the close grace",
        )

    # ------------------------------------------------------------------ connections

    def _can_hand_over(self, environ: dict[str, Any]) -> bool:
        sock, mode = socket_from_environ(environ)
        in_loop = self.mode == "loop" or mode == "test"  # the test client never blocks
        return sock is not None and in_loop and can_detach(sock)

    def _hold(self) -> bool:
        """Count one more request holding its thread; False when at ``max_held_requests``."""
        limit = self.options.max_held_requests
        with self._held_lock:
            if limit is not None and self._held >= limit:
                logger.warning(
                    "refusing a connection with 503: %d requests already hold their threads "
                    "(max_held_requests)",
                    limit,
                )
                return False
            self._held += 1
            return True

    def _release(self) -> None:
        with self._held_lock:
            self._held -= 1

    @property
    def loop(self) -> EventLoop:
        with self._router_lock:
            if self._loop is None:
                self._loop = EventLoop()
            return self._loop

    # ------------------------------------------------------------------ WebSocket

    def serve_websocket(
        self, req: RequestSnapshot, environ: dict[str, Any], uid: Any, handshake_data: Any
    ) -> Answer | Handover | str:
        """Serve one WebSocket. Returns an HTTP answer when the upgrade fails; a
        :class:`Handover` in loop mode; else, once the connection is over on this thread,
        the WSGI server mode (``"gunicorn"``, ``"werkzeug"``)."""
        server_sock, mode = socket_from_environ(environ)
        if server_sock is None:
            return 501, (
                "this WSGI server does not hand over its sockets, so WebSockets cannot be "
                "served; run under gunicorn or the Werkzeug server, or use Ajax"
            )
        options = self.options
        session = WsSession(
            max_message_size=options.max_message_size,
            kalive_s=options.ws_kalive_s,
            ping_timeout_s=(
                None if options.ws_ping_timeout_ms is None else options.ws_ping_timeout_ms / 1000
            ),
            ping_message=self._pack(WS_PING),
        )
        accepted = session.accept(environ)
        if accepted is None:
            return 400, "bad WebSocket upgrade request"
        client_id = req.client_id or ""
        rate = options.simulated_bad_conn_rate

        def on_message(data: str | bytes) -> None:
            if rate and random.random() < rate:
                session.close(GOING_AWAY, "simulated bad connection")
                return
            self._on_ws_message(data, session, uid, client_id, req)

        session.on_message = on_message
        session.deliver(self._pack(handshake_event(uid, handshake_data)))

        def hand_outbox(slot: Slot, previous: Any) -> None:
            if slot.outbox:
                session.deliver(self._pack(push_batch(slot.outbox)))
                slot.outbox = []

        if self._can_hand_over(environ):
            slot, conn_id = self.registry.connect(
                "ws", uid, client_id, session, on_installed=hand_outbox
            )

            def start(sock: socket.socket, raw_response: RawResponse) -> None:
                self.loop.add_websocket(
                    sock,
                    session,
                    on_closed=lambda info: self.registry.disconnect(slot, conn_id),
                    initial=accepted,
                )

            return Handover(server_sock, mode, start)
        if not self._hold():
            return 503, _BUSY
        try:
            server_sock.sendall(accepted)
            slot, conn_id = self.registry.connect(
                "ws", uid, client_id, session, on_installed=hand_outbox
            )
            try:
                serve_on_thread(session, server_sock)
            finally:
                self.registry.disconnect(slot, conn_id)
        except OSError:
            pass
        finally:
            self._release()
        return mode

    def _on_ws_message(
        self, data: str | bytes, session: WsSession, uid: Any, client_id: str, req: RequestSnapshot
    ) -> None:
        read = self._read_package(data, uid, client_id, req)
        if read is None:
            return
        event, cb = read
        reply: Callable[[Any], bool] | None = None
        if event[0] == WS_PING:
            if cb is not None:
                session.deliver(self._pack(PONG, cb))
        elif event[0] != WS_PONG and cb is not None:

            def reply(value: Any, cb: Any = cb) -> bool:
                return session.deliver(self._pack(value, cb))

        self._emit(event, uid=uid, client_id=client_id, request=req, reply=reply)

    # ------------------------------------------------------------------ Ajax

    def ajax_get(
        self,
        req: RequestSnapshot,
        uid: Any,
        handshake_data: Callable[[], Any],
        environ: dict[str, Any],
    ) -> Answer | Handover:
        """A handshake, or a long-poll answered by pushes or ``chsk/timeout``.

        In loop mode a waiting long-poll goes to the event loop (a :class:`Handover`)."""
        client_id = req.client_id or ""
        if req.param("handshake?") or self.registry.slot("ajax", uid, client_id) is None:
            self.registry.handshake("ajax", uid, client_id)
            return 200, self._pack(handshake_event(uid, handshake_data()))
        rate = self.options.simulated_bad_conn_rate
        if rate and random.random() < rate:
            return 503, "simulated bad connection"
        held_here = self.mode != "loop" or not self._can_hand_over(environ)
        if held_here and not self._hold():
            return 503, _BUSY
        poll = LongPoll()

        def hand_outbox(slot: Slot, previous: Any) -> None:
            if isinstance(previous, LongPoll):
                previous.offer(TIMEOUT)
            if slot.outbox:
                poll.offer(slot.outbox)
                slot.outbox = []

        slot, conn_id = self.registry.connect(
            "ajax", uid, client_id, poll, on_installed=hand_outbox
        )
        timeout_s = self.options.lp_timeout_ms / 1000
        if not poll.done and self._can_hand_over(environ):

            def start(sock: socket.socket, raw_response: RawResponse) -> None:
                self.loop.add_long_poll(
                    sock,
                    poll,
                    timeout_s=timeout_s,
                    timeout_value=TIMEOUT,
                    respond=lambda value: raw_response(self._poll_body(value)),
                    on_done=lambda value, written: self._poll_done(slot, conn_id, value, written),
                )

            server_sock, mode = socket_from_environ(environ)
            assert server_sock is not None
            return Handover(server_sock, mode, start)
        try:
            result = poll.wait(timeout_s, on_timeout=TIMEOUT)
        finally:
            self.registry.disconnect(slot, conn_id)
            if held_here:
                self._release()
        return 200, self._poll_body(result)

    def _poll_body(self, value: Any) -> str | bytes:
        if value is CLOSED_BY_SERVER:
            return ""
        if isinstance(value, str):
            return self._pack(value)
        return self._pack(push_batch(value))

    def _poll_done(self, slot: Slot, conn_id: int, value: Any, written: bool) -> None:
        """A taken-over long-poll ended; events that did not reach the socket wait again."""
        self.registry.disconnect(slot, conn_id)
        if not written and isinstance(value, list):
            with self.registry.lock:
                slot.outbox[:0] = value

    def ajax_post(self, req: RequestSnapshot, uid: Any, body: bytes) -> Answer:
        """An event sent over Ajax; answered at once, or with the handler's first reply."""
        binary = (req.param("binary?") or "").lower() in _BINARY_FLAGS
        package: str | bytes | None = body if binary else req.param("ppstr")
        if package is None:
            return (
                400,
                "missing ppstr: an Ajax POST carries the packed event in the ppstr form field",
            )
        read = self._read_package(package, uid, req.client_id, req)
        if read is None:
            return 400, "bad package: it could not be unpacked with this server's packer"
        event, cb = read
        if not has_ajax_cb(cb):
            self._emit(event, uid=uid, client_id=req.client_id, request=req, reply=None)
            return 200, self._pack(DUMMY_CB_200)
        waiter = OneShot()
        self._emit(event, uid=uid, client_id=req.client_id, request=req, reply=waiter.offer)
        return 200, self._pack(waiter.wait(self.options.lp_timeout_ms / 1000, on_timeout=TIMEOUT))

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close every connection and stop the threads (bounded waits)."""
        if self._closed:
            return
        self._closed = True
        self.buffers.flush_all()
        for kind in ("ws", "ajax"):
            for slot in self.registry.all_slots(kind):
                if slot.conn is not None:
                    slot.conn.close(GOING_AWAY, "server shutting down")
        if self._router is not None:
            self._router.stop()
            self._router = None
        if self._loop is not None:
            self._loop.close()
        self.ch_recv.close()
        self.scheduler.close()
