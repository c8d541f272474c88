"""The three entry points of the channel-socket route, once a request passed its checks.

- :func:`serve_websocket`: accept the upgrade, queue the handshake, and have the server's
  driver hold the connection (it becomes the client's outlet until it closes).
- :func:`ajax_get`: answer a handshake, or hold a long-poll until the client's mailbox has
  events for it or ``lp_timeout_ms`` passes.
- :func:`ajax_post`: unpack an event and answer at once, or with the handler's first reply.

Each returns an :data:`~flask_sente.transports.drivers.Outcome`: a plain ``(status, body)``
answer, a ``Handover`` (the connection moves to the event loop once Flask has finished its
response) or ``Served`` (the request was served to its end on its own thread). How a
connection is held is the driver's business (:mod:`flask_sente.transports.drivers`); what a
held long-poll or POST answers, however it ends, is :mod:`flask_sente.answers`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .answers import Answer, PollBatch, packing_reply, poll_answer, post_answer
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
from .transports.drivers import Outcome
from .transports.longpoll import LongPoll
from .transports.websocket import GOING_AWAY, CloseInfo, WsSession

if TYPE_CHECKING:
    from .server import ChannelServer

logger = logging.getLogger("flask_sente.serving")

LAST_SEQ_PARAM = "fs-last-seq"
_BINARY_FLAGS = ("true", "1")
#: How long a POST's thread waits for a reply before the loop holds the request instead.
_QUICK_REPLY_S = 0.05
_BUSY = "server busy: every thread that may hold a connection is in use; retry shortly"


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
) -> Outcome:
    if not server.driver.has_socket(environ):
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
        ping_message=server.pack(WS_PING),
        max_queued_messages=options.max_queued_messages,
        max_queued_bytes=options.max_queued_bytes,
        drop_oldest=options.slow_consumer == "drop_oldest",
        on_dropped=lambda count: server.report_undelivered(
            uid, [], f"slow consumer: {count} queued message(s) dropped for client {client_id}"
        ),
        label=f"the WebSocket of uid {uid!r}, client {client_id}",
    )
    accepted = session.accept(environ, time.monotonic())
    if accepted is None:
        return 400, "bad WebSocket upgrade request"
    hold = server.driver.hold(environ)
    if hold is None:
        return 503, _BUSY
    rate = options.simulated_bad_conn_rate

    def on_message(data: str | bytes, inline: bool) -> None:
        if rate and random.random() < rate:
            session.close(GOING_AWAY, "simulated bad connection")
            return
        _on_ws_message(server, data, session, uid, client_id, req, inline)

    def open_connection() -> Callable[[CloseInfo], None]:
        slot, conn_id = server.registry.connect("ws", uid, client_id, session, request=req)
        outlet, _ = server.delivery.open(
            uid,
            client_id,
            "ws",
            lambda packed, last, events: session.deliver(packed),
            last_seq=req.param(LAST_SEQ_PARAM),
        )

        def closed(info: CloseInfo) -> None:
            server.delivery.close(outlet)
            server.registry.disconnect(slot, conn_id)

        return closed

    with hold:
        session.deliver(server.pack(handshake_event(uid, handshake_data)))
        return hold.websocket(
            session, initial=accepted, open=open_connection, on_message=on_message
        )


def _on_ws_message(
    server: ChannelServer,
    data: str | bytes,
    session: WsSession,
    uid: Any,
    client_id: str,
    req: RequestSnapshot,
    inline: bool,
) -> None:
    read = server.read_package(data, uid, client_id, req)
    if read is None:
        return
    event, cb = read
    reply: Callable[[Any], bool] | None = None
    if event[0] == WS_PING:
        if cb is not None:
            session.deliver(server.pack(PONG, cb))
    elif event[0] != WS_PONG and cb is not None:

        def reply(value: Any, cb: Any = cb) -> bool:
            return session.deliver(server.pack(value, cb))

    server.emit(event, uid=uid, client_id=client_id, request=req, reply=reply, inline=inline)


# ---------------------------------------------------------------------------- Ajax


def ajax_get(
    server: ChannelServer,
    req: RequestSnapshot,
    uid: Any,
    handshake_data: Callable[[], Any],
    environ: dict[str, Any],
) -> Outcome:
    client_id = req.client_id or ""
    known = server.registry.slot("ajax", uid, client_id) is not None or server.bus.knows(
        uid, client_id
    )  # the bus knows the clients that handshook with any worker
    if req.param("handshake?") or not known:
        server.registry.handshake("ajax", uid, client_id)
        server.delivery.ensure_mailbox(uid, client_id)
        return 200, server.pack(handshake_event(uid, handshake_data()))
    rate = server.options.simulated_bad_conn_rate
    if rate and random.random() < rate:
        return 503, "simulated bad connection"
    refusal = _too_many(server, uid, client_id)
    if refusal is not None:
        return refusal
    hold = server.driver.hold(environ)
    if hold is None:
        return 503, _BUSY
    with hold:
        deadline = time.monotonic() + server.options.lp_timeout_ms / 1000
        poll = LongPoll(f"the long-poll of uid {uid!r}, client {client_id}")
        previous_poll = server.registry.slot("ajax", uid, client_id)
        if previous_poll is not None and isinstance(previous_poll.conn, LongPoll):
            previous_poll.conn.offer(TIMEOUT)  # a client polls once at a time: end the old poll
        slot, conn_id = server.registry.connect("ajax", uid, client_id, poll, request=req)
        outlet, _ = server.delivery.open(
            uid,
            client_id,
            "ajax",
            lambda packed, last, events: poll.hold(PollBatch(packed, last, events)),
            last_seq=req.param(LAST_SEQ_PARAM),
            release=poll.release,
        )

        def done(value: Any, written: bool) -> None:
            server.delivery.close(outlet)
            if not written and isinstance(value, PollBatch) and not outlet.reporting:
                # a reporting client gets these again from its mailbox; a Sente client cannot
                server.report_undelivered(
                    uid, value.events, f"client {client_id} left before its answer"
                )
            server.registry.disconnect(slot, conn_id)

        # a client whose FIN comes first is gone (as http-kit sees it): its pushes wait in
        # its mailbox for its next poll rather than go out on a connection nobody reads
        return hold.until(
            poll,
            respond=lambda value: poll_answer(value, server.pack),
            deadline=deadline,
            timeout_value=TIMEOUT,
            on_done=done,
            answer_after_fin=False,
        )


def ajax_post(
    server: ChannelServer,
    req: RequestSnapshot,
    uid: Any,
    body: bytes,
    environ: dict[str, Any],
) -> Outcome:
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
        return 200, server.pack(DUMMY_CB_200)
    hold = server.driver.hold(environ)
    if hold is None:
        return 503, _BUSY
    with hold:
        deadline = time.monotonic() + server.options.lp_timeout_ms / 1000
        waiter = LongPoll(f"the Ajax POST of uid {uid!r}, client {req.client_id}")
        reply = packing_reply(waiter, server.pack)
        server.emit(event, uid=uid, client_id=req.client_id, request=req, reply=reply, inline=True)
        # most handlers reply at once: answered on this thread, keeping the HTTP connection;
        # only a slow reply is left to the loop (which closes the connection after it)
        waiter.settled_within(_QUICK_REPLY_S)
        # a reply is for this client alone: one that stopped writing may still read it
        return hold.until(
            waiter,
            respond=lambda value: post_answer(value, server.pack),
            deadline=deadline,
            timeout_value=TIMEOUT,
            answer_after_fin=True,
        )
