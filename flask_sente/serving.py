"""The three entry points of the channel-socket route, once a request passed its checks.

- :func:`serve_websocket`: accept the upgrade, queue the handshake, make the connection the
  client's outlet, then hand the socket to the event loop (or serve it on this thread).
- :func:`ajax_get`: answer a handshake, or hold a long-poll until the client's mailbox has
  events for it or ``lp_timeout_ms`` passes.
- :func:`ajax_post`: unpack an event and answer at once, or with the handler's first reply.

Each returns a plain ``(status, body)`` answer, a :class:`Handover` (the connection moves to
the event loop once Flask has finished its response), or the WSGI server's mode name when the
connection was served to its end on this thread.

What a held long-poll or POST answers, however it ends, is :mod:`flask_sente.answers`.
"""

from __future__ import annotations

import logging
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .answers import (
    Answer,
    PollBatch,
    end_unreadably,
    packing_reply,
    poll_answer,
    post_answer,
)
from .events import RequestSnapshot
from .protocol import (
    DUMMY_CB_200,
    PONG,
    TIMEOUT,
    WS_PING,
    WS_PONG,
    handshake_event,
    has_ajax_cb,
)
from .transports.longpoll import LongPoll, OneShot
from .transports.sockets import can_detach, detach, socket_from_environ
from .transports.threaded import serve_on_thread
from .transports.websocket import GOING_AWAY, WsSession

if TYPE_CHECKING:
    from .server import ChannelServer

logger = logging.getLogger("flask_sente.serving")

#: Builds a whole HTTP response (status line, headers, body) for a held request.
RawResponse = Callable[[int, str | bytes], bytes]

LAST_SEQ_PARAM = "fs-last-seq"
_BINARY_FLAGS = ("true", "1")
_QUICK_REPLY_S = 0.05
_BUSY = "server busy: every thread that may hold a connection is in use; retry shortly"


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


# ---------------------------------------------------------------------------- shared


def _can_hand_over(server: ChannelServer, environ: dict[str, Any]) -> bool:
    sock, mode = socket_from_environ(environ)
    in_loop = server.mode == "loop" or mode == "test"  # the test client never blocks
    return sock is not None and in_loop and can_detach(sock)


def _hold(server: ChannelServer) -> bool:
    """Count one more request holding its thread; False when at ``max_held_requests``."""
    limit = server.options.max_held_requests
    with server.held_lock:
        if limit is not None and server.held >= limit:
            logger.warning(
                "refusing a connection with 503: %d requests already hold their threads "
                "(max_held_requests)",
                limit,
            )
            return False
        server.held += 1
        return True


def _release(server: ChannelServer) -> None:
    with server.held_lock:
        server.held -= 1


def _held_by_loop(
    server: ChannelServer,
    environ: dict[str, Any],
    waiting: LongPoll,
    answer: Callable[[Any], Answer | bytes],
    *,
    on_done: Callable[[Any, bool], None] = lambda value, written: None,
    answer_after_fin: bool,
) -> Handover:
    """Hand a request waiting for a value (a long-poll, a POST's reply) to the event loop,
    which writes ``answer(value)`` (an HTTP answer, or raw bytes), the value being
    ``chsk/timeout`` after ``lp_timeout_ms``. ``answer_after_fin``: see
    :meth:`~flask_sente.transports.loop.EventLoop.add_long_poll`."""

    def start(sock: socket.socket, raw_response: RawResponse) -> None:
        def respond(value: Any) -> bytes:
            answered = answer(value)
            return answered if isinstance(answered, bytes) else raw_response(*answered)

        server.loop.add_long_poll(
            sock,
            waiting,
            timeout_s=server.options.lp_timeout_ms / 1000,
            timeout_value=TIMEOUT,
            respond=respond,
            on_done=on_done,
            answer_after_fin=answer_after_fin,
        )

    server_sock, mode = socket_from_environ(environ)
    assert server_sock is not None
    return Handover(server_sock, mode, start)


def _too_many(server: ChannelServer, uid: Any, client_id: str) -> Answer | None:
    limit = server.options.max_connections_per_uid
    if limit is None or server.registry.live_connections(uid, other_than=client_id) < limit:
        return None
    logger.warning("refusing a connection for uid %r: it has %d already", uid, limit)
    return 429, f"too many connections for this user (max_connections_per_uid is {limit})"


# ---------------------------------------------------------------------------- WebSocket


def serve_websocket(
    server: ChannelServer,
    req: RequestSnapshot,
    environ: dict[str, Any],
    uid: Any,
    handshake_data: Any,
) -> Answer | Handover | str:
    server_sock, mode = socket_from_environ(environ)
    if server_sock is None:
        return 501, (
            "this WSGI server does not hand over its sockets, so WebSockets cannot be "
            "served; run under gunicorn or the Werkzeug server, or use Ajax"
        )
    client_id = req.client_id or ""
    refusal = _too_many(server, uid, client_id)
    if refusal is not None:
        return refusal
    options = server.options
    session = WsSession(
        max_message_size=options.max_message_size,
        kalive_s=options.ws_kalive_s,
        ping_timeout_s=(
            None if options.ws_ping_timeout_ms is None else options.ws_ping_timeout_ms / 1000
        ),
        ping_message=server._pack(WS_PING),
        max_queued_messages=options.max_queued_messages,
        max_queued_bytes=options.max_queued_bytes,
        drop_oldest=options.slow_consumer == "drop_oldest",
        on_dropped=lambda count: server._undeliverable(
            uid, [], f"slow consumer: {count} queued message(s) dropped for client {client_id}"
        ),
        label=f"the WebSocket of uid {uid!r}, client {client_id}",
    )
    accepted = session.accept(environ)
    if accepted is None:
        return 400, "bad WebSocket upgrade request"
    rate = options.simulated_bad_conn_rate

    def on_message(data: str | bytes) -> None:
        if rate and random.random() < rate:
            session.close(GOING_AWAY, "simulated bad connection")
            return
        _on_ws_message(server, data, session, uid, client_id, req)

    session.on_message = on_message
    session.deliver(server._pack(handshake_event(uid, handshake_data)))

    def open_connection() -> Callable[[], None]:
        slot, conn_id = server.registry.connect("ws", uid, client_id, session, request=req)
        outlet, _ = server.delivery.open(
            uid,
            client_id,
            "ws",
            lambda packed, last, events: session.deliver(packed),
            last_seq=req.param(LAST_SEQ_PARAM),
        )

        def closed() -> None:
            server.delivery.close(outlet)
            server.registry.disconnect(slot, conn_id)

        return closed

    if _can_hand_over(server, environ):
        closed = open_connection()

        def start(sock: socket.socket, raw_response: RawResponse) -> None:
            server.loop.add_websocket(
                sock, session, on_closed=lambda info: closed(), initial=accepted
            )

        return Handover(server_sock, mode, start)
    if not _hold(server):
        return 503, _BUSY
    try:
        server_sock.sendall(accepted)
        closed = open_connection()
        try:
            serve_on_thread(session, server_sock)
        finally:
            closed()
    except OSError:
        pass
    finally:
        _release(server)
    return mode


def _on_ws_message(
    server: ChannelServer,
    data: str | bytes,
    session: WsSession,
    uid: Any,
    client_id: str,
    req: RequestSnapshot,
) -> None:
    read = server.read_package(data, uid, client_id, req)
    if read is None:
        return
    event, cb = read
    reply: Callable[[Any], bool] | None = None
    if event[0] == WS_PING:
        if cb is not None:
            session.deliver(server._pack(PONG, cb))
    elif event[0] != WS_PONG and cb is not None:

        def reply(value: Any, cb: Any = cb) -> bool:
            return session.deliver(server._pack(value, cb))

    server.emit(event, uid=uid, client_id=client_id, request=req, reply=reply)


# ---------------------------------------------------------------------------- Ajax


def ajax_get(
    server: ChannelServer,
    req: RequestSnapshot,
    uid: Any,
    handshake_data: Callable[[], Any],
    environ: dict[str, Any],
) -> Answer | Handover | str:
    client_id = req.client_id or ""
    known = server.registry.slot("ajax", uid, client_id) is not None or server.bus.knows(
        uid, client_id
    )  # the bus knows the clients that handshook with any worker
    if req.param("handshake?") or not known:
        server.registry.handshake("ajax", uid, client_id)
        server.delivery.ensure_mailbox(uid, client_id)
        return 200, server._pack(handshake_event(uid, handshake_data()))
    rate = server.options.simulated_bad_conn_rate
    if rate and random.random() < rate:
        return 503, "simulated bad connection"
    refusal = _too_many(server, uid, client_id)
    if refusal is not None:
        return refusal
    held_here = not _can_hand_over(server, environ)
    if held_here and not _hold(server):
        return 503, _BUSY
    poll = LongPoll(f"the long-poll of uid {uid!r}, client {client_id}")
    previous_poll = server.registry.slot("ajax", uid, client_id)
    if previous_poll is not None and isinstance(previous_poll.conn, LongPoll):
        previous_poll.conn.offer(TIMEOUT)  # a client polls once at a time: end the old poll
    slot, conn_id = server.registry.connect("ajax", uid, client_id, poll, request=req)
    outlet, _ = server.delivery.open(
        uid,
        client_id,
        "ajax",
        lambda packed, last, events: poll.offer(PollBatch(packed, last, events)),
        last_seq=req.param(LAST_SEQ_PARAM),
    )

    def done(value: Any, written: bool) -> None:
        server.delivery.close(outlet)
        if not written and isinstance(value, PollBatch) and not outlet.reporting:
            # a reporting client gets these again from its mailbox; a Sente client cannot
            server._undeliverable(uid, value.events, f"client {client_id} left before its answer")
        server.registry.disconnect(slot, conn_id)

    timeout_s = server.options.lp_timeout_ms / 1000
    if not held_here and not poll.done:
        # a client whose FIN comes first is gone (as http-kit sees it): its pushes wait in
        # its mailbox for its next poll rather than go out on a connection nobody reads
        return _held_by_loop(
            server,
            environ,
            poll,
            lambda value: poll_answer(value, server._pack),
            on_done=done,
            answer_after_fin=False,
        )
    try:
        result = poll.wait(timeout_s, on_timeout=TIMEOUT)
        try:
            answer = poll_answer(result, server._pack)
        except Exception:
            done(result, False)  # what it carried is reported undelivered; Flask answers 500
            raise
        done(result, True)
    finally:
        if held_here:
            _release(server)
    return end_unreadably(environ) if isinstance(answer, bytes) else answer


def ajax_post(
    server: ChannelServer,
    req: RequestSnapshot,
    uid: Any,
    body: bytes,
    environ: dict[str, Any],
) -> Answer | Handover:
    """An event sent over Ajax: answered at once, or with the handler's first reply (or
    ``chsk/timeout``). A POST waiting for its reply holds no thread in loop mode."""
    binary = (req.param("binary?") or "").lower() in _BINARY_FLAGS
    package: str | bytes | None = body if binary else req.param("ppstr")
    if package is None:
        return 400, "missing ppstr: an Ajax POST carries the packed event in the ppstr form field"
    read = server.read_package(package, uid, req.client_id, req)
    if read is None:
        return 400, "bad package: it could not be unpacked with this server's packer"
    event, cb = read
    if not has_ajax_cb(cb):
        server.emit(event, uid=uid, client_id=req.client_id, request=req, reply=None)
        return 200, server._pack(DUMMY_CB_200)
    timeout_s = server.options.lp_timeout_ms / 1000
    if _can_hand_over(server, environ):
        waiter = LongPoll(f"the Ajax POST of uid {uid!r}, client {req.client_id}")
        reply = packing_reply(waiter, server._pack)
        server.emit(event, uid=uid, client_id=req.client_id, request=req, reply=reply)
        # most handlers reply at once: answer on this thread and keep the HTTP connection;
        # only a slow reply moves to the loop (which closes the connection after it)
        if waiter.settled_within(_QUICK_REPLY_S):
            return post_answer(waiter.value, server._pack)
        # a reply is for this client alone: one that stopped writing may still read it
        return _held_by_loop(
            server,
            environ,
            waiter,
            lambda value: post_answer(value, server._pack),
            answer_after_fin=True,
        )
    if not _hold(server):
        return 503, _BUSY
    try:
        oneshot = OneShot()
        reply = packing_reply(oneshot, server._pack)
        server.emit(event, uid=uid, client_id=req.client_id, request=req, reply=reply)
        return post_answer(oneshot.wait(timeout_s, on_timeout=TIMEOUT), server._pack)
    finally:
        _release(server)
