"""One app's channel-socket server: connections, pushes, and incoming events.

:class:`ChannelServer` is what ``Sente.init_app`` builds per Flask app. It knows nothing of
Flask's request globals: the extension hands it a :class:`RequestSnapshot` (and, for a
WebSocket, the WSGI environ), and gets back what to answer.

Message flow::

    client frame / POST -> unpack -> as_event -> EventMsg -> ch_recv -> router -> handler
    Sente.send(uid, ev) -> checked and packed (or refused, at the call) -> Delivery: numbered
        into each client's mailbox -> after the batching window, every live connection
        (outlet) takes what it has not sent yet, joined into one batch

The three entry points (WebSocket, long-poll GET, POST) are in :mod:`flask_sente.serving`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .batching import BatchWriter, Outgoing, reported
from .bus import make_bus
from .config import Options
from .delivery import Delivery, Outlet
from .errors import InvalidUid, UnpackError
from .events import EventMsg, RequestSnapshot
from .protocol import (
    ALL_USERS_WITHOUT_UID,
    BAD_PACKAGE,
    CLOSE,
    NIL_UID,
    UIDPORT_CLOSE,
    UIDPORT_OPEN,
    as_event,
    pack,
    unpack,
)
from .receiving import Receiving
from .registry import Registry, Slot
from .router import Handlers, RecvQueue
from .runtime import Pacer, concurrency_mode
from .scheduler import Scheduler
from .transports.drivers import Driver
from .transports.loop import EventLoop
from .transports.websocket import GOING_AWAY, INTERNAL_ERROR

logger = logging.getLogger("flask_sente.server")

#: ``on_undelivered(uid, events, reason)``: told of every push that cannot be delivered.
UndeliveredHook = Callable[[Any, list[Any], str], None]


class ChannelServer:
    """Connections, presence, pushes and the receive queue of one Flask app."""

    def __init__(
        self,
        options: Options,
        handlers: Handlers[EventMsg],
        *,
        run_in_app_context: Callable[[Callable[[], Any]], Any],
        on_undelivered: UndeliveredHook | None = None,
    ) -> None:
        self.options = options
        self.packer = options.packer
        self.scheduler = Scheduler()
        self._on_undelivered = on_undelivered
        self.bus = make_bus(
            options.message_queue,
            scheduler=self.scheduler,
            backlog=options.recovery_backlog,
            window_s=max(
                options.recovery_window_ms,
                options.ms_allow_reconnect_before_close_ws,
                options.ms_allow_reconnect_before_close_ajax,
            )
            / 1000,
            lost=self.report_undelivered,
            packer=self.packer,
            channel=options.channel,
        )
        self.registry = Registry(
            self.scheduler,
            self.bus,
            grace_s={
                "ws": options.ms_allow_reconnect_before_close_ws / 1000,
                "ajax": options.ms_allow_reconnect_before_close_ajax / 1000,
            },
            on_uid_open=lambda uid, slot: self._emit_internal([UIDPORT_OPEN, uid], slot),
            on_uid_close=lambda uid, slot: self._emit_internal([UIDPORT_CLOSE, uid], slot),
        )
        self.batches = BatchWriter(self.packer, legacy=options.write_legacy_pack_format)
        self.delivery = Delivery(
            self.bus,
            self.scheduler,
            write_batch=self.batches.write,
            windows_s={
                "ws": options.send_buf_ms_ws / 1000,
                "ajax": options.send_buf_ms_ajax / 1000,
            },
            lost=self.report_undelivered,
            on_fault=self._close_faulty,
        )
        self.receiving = Receiving(
            handlers,
            recv_buf_or_n=options.recv_buf_or_n,
            handler_workers=options.handler_workers,
            run_in_app_context=run_in_app_context,
        )
        self.ch_recv: RecvQueue[EventMsg] = self.receiving.ch_recv
        self.undelivered = 0
        self._closed = False
        gevent = concurrency_mode() == "gevent"
        self.mode = options.connection_mode
        if self.mode == "auto":
            self.mode = "thread" if gevent else "loop"
        #: Where connections are held: the event loop, or their requests' threads.
        self.driver = Driver(
            use_loop=self.mode == "loop",
            greenlets=gevent,
            max_held=options.max_held_requests,
            call_later=self._call_later,
        )
        # greenlets yield cheaply; threads only when a flush timer or the loop waits
        self._pacer = Pacer(None if gevent else self._someone_waits)
        if self.mode == "loop":
            where = "one event-loop thread (requests return to the pool at once)"
        else:
            where = "greenlets" if gevent else "their request threads"
        logger.info("WebSockets and long-polls run on %s", where)
        self.bus.start(self)

    def _someone_waits(self, now: float) -> bool:
        return self.scheduler.overdue(now) or self.driver.behind()

    def _call_later(self, delay_s: float, fn: Callable[[], None]) -> Any:
        return self.scheduler.call_later(delay_s, fn, what="a WebSocket's keepalive")

    # ------------------------------------------------------------------ packing

    def pack(self, value: Any, cb: Any = None) -> str | bytes:
        """``value`` in the server's ``[value cb]`` wrapper, written by its packer."""
        return pack(self.packer, value, cb, legacy=self.options.write_legacy_pack_format)

    # ------------------------------------------------------------------ routing

    def start_router(
        self,
        handler: Callable[[EventMsg], Any],
        *,
        error_handler: Callable[[EventMsg, BaseException], Any] | None = None,
        trace_evs: bool = False,
        simple_auto_threading: bool = False,
    ) -> Callable[[], None]:
        """Run ``handler`` on every message of ``ch_recv``; returns ``stop()``."""
        return self.receiving.start_router(
            handler,
            error_handler=error_handler,
            trace_evs=trace_evs,
            simple_auto_threading=simple_auto_threading,
        )

    def use_custom_router(self) -> None:
        """The application routes ``ch_recv`` itself: the decorator router stops for good."""
        self.receiving.use_custom_router()

    def emit(
        self,
        event: list[Any],
        *,
        uid: Any,
        client_id: str | None,
        request: RequestSnapshot | None,
        reply: Callable[[Any], bool] | None,
        inline: bool = False,
    ) -> None:
        """Hand an event to the application. ``inline``: the calling thread may run a quick
        handler itself (it is not the scheduler's, nor a pushing thread)."""
        msg = EventMsg(
            event=event,
            uid=uid,
            client_id=client_id,
            request=request,
            reply=reply,
            send=self.send,
            get_connected_uids=self.registry.connected_uids,
        )
        self.receiving.put(msg, inline=inline)

    def _emit_internal(self, event: list[Any], slot: Slot) -> None:
        """uidport-open / -close carry the request of the connection that opened or last
        held the slot, as Sente's carry its ``:ring-req``."""
        self.emit(event, uid=slot.uid, client_id=slot.client_id, request=slot.request, reply=None)

    def read_package(
        self, package: str | bytes, uid: Any, client_id: str | None, req: RequestSnapshot
    ) -> tuple[list[Any], Any] | None:
        try:
            value, cb = unpack(self.packer, package)
        except UnpackError as exc:
            logger.info("bad package from client %s: %s", client_id, exc)
            self.emit([BAD_PACKAGE, package], uid=uid, client_id=client_id, request=req, reply=None)
            return None
        return as_event(value), cb

    # ------------------------------------------------------------------ pushing

    def send(self, uid: Any, event: Any, flush: bool = False) -> None:
        """Push ``event`` to every connection of ``uid``; batched unless ``flush``.

        The event is checked and packed here: :class:`~flask_sente.errors.InvalidEvent` or
        :class:`~flask_sente.errors.PackError` reach the caller, and nothing is queued."""
        if uid is None:
            raise InvalidUid(
                'sending to a None uid is not supported (as in Sente); use "sente/all-users-'
                'without-uid" to reach clients without a uid'
            )
        self._push(uid, Outgoing.of(self.packer, event), flush)
        self._pacer.step()

    def broadcast(self, event: Any, flush: bool = False) -> None:
        """Push ``event`` to every connected uid; checked and packed once, before any."""
        item = Outgoing.of(self.packer, event)
        for uid in self.registry.connected_uids()["any"]:
            self._push(uid, item, flush)
            self._pacer.step()

    def _push(self, uid: Any, item: Outgoing, flush: bool) -> None:
        if uid == ALL_USERS_WITHOUT_UID:
            uid = NIL_UID
        if item.event[0] == CLOSE:
            self.close_uid(uid)
            self.bus.close_uid(uid)
            return
        self.delivery.push(uid, item, flush=flush)

    def close_uid(self, uid: Any) -> None:
        """Close every connection of ``uid`` (what ``["chsk/close"]`` does)."""
        for kind in ("ws", "ajax"):
            for slot in self.registry.slots(kind, uid):
                conn = slot.conn
                if conn is not None:
                    conn.close()

    def _close_faulty(self, outlet: Outlet, reason: str) -> None:
        """Delivery failed on a connection: close it with ``reason`` (1011 for a WebSocket),
        so the client reconnects and gets what is still in its mailbox."""
        slot = self.registry.slot(outlet.kind, outlet.uid, outlet.client_id)
        if slot is not None and slot.conn is not None:
            slot.conn.close(INTERNAL_ERROR, reason)

    def report_undelivered(self, uid: Any, items: list[Any], why: str) -> None:
        """Pushes to ``uid`` that cannot be delivered: counted, logged, and told to the
        ``on_undelivered`` hook."""
        events = reported(items)
        self.undelivered += len(events)
        logger.warning("push to uid %r not delivered (%d event(s)): %s", uid, len(events), why)
        if self._on_undelivered is not None:
            try:
                self._on_undelivered(uid, events, why)
            except Exception:
                logger.exception("the on_undelivered hook failed")

    @property
    def loop(self) -> EventLoop:
        """The event loop (started on first use)."""
        return self.driver.loop

    @property
    def held(self) -> int:
        """Requests holding their threads now (counted against ``max_held_requests``)."""
        return self.driver.held

    # ------------------------------------------------------------------ the bus

    def remote_push(self, uid: Any) -> None:
        """The bus: another process pushed to ``uid``."""
        self.delivery.remote_push(uid)

    def remote_close(self, uid: Any) -> None:
        """The bus: another process sent ``["chsk/close"]`` to ``uid``."""
        self.close_uid(uid)

    def presence_changed(self) -> None:
        """The bus: ``connected_uids`` changed on another process."""
        self.registry.notify_watchers()

    def uid_closed_elsewhere(self, uid: Any) -> None:
        """The bus: ``uid`` left the cluster because the process that held it died."""
        self.emit([UIDPORT_CLOSE, uid], uid=uid, client_id=None, request=None, reply=None)

    def health(self) -> dict[str, Any]:
        """This process's view: the bus, its connections, what could not be delivered."""
        return {
            **self.bus.health(),
            "connections": len(self.delivery.live_outlets()),
            "undelivered": self.undelivered,
            "mode": self.mode,
        }

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close every connection and stop the threads (bounded waits)."""
        if self._closed:
            return
        self._closed = True
        for kind in ("ws", "ajax"):
            for slot in self.registry.all_slots(kind):
                if slot.conn is not None:
                    slot.conn.close(GOING_AWAY, "server shutting down")
        self.receiving.close()
        self.driver.close()
        self.bus.close()
        self.scheduler.close()
