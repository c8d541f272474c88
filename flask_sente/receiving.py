"""Incoming events: ``ch_recv`` and the router that runs the app's handlers on them.

Every event message goes to the router when one runs (the decorator router, started with
the first event when ``@on`` / ``on_default`` handlers exist, or the app's own from
``start_router``), else to ``ch_recv`` for the app to read. The router runs a quick
handler on the thread that received its event when that thread may (see
:mod:`flask_sente.lanes`), and every other one on its worker threads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from .events import EventMsg
from .router import Handlers, RecvQueue, Router

logger = logging.getLogger("flask_sente.receiving")


class Receiving:
    """The receive queue and the router of one server."""

    def __init__(
        self,
        handlers: Handlers[EventMsg],
        *,
        recv_buf_or_n: int,
        handler_workers: int,
        run_in_app_context: Callable[[Callable[[], Any]], Any],
    ) -> None:
        self._handlers = handlers
        self._handler_workers = handler_workers
        self._run_in_app_context = run_in_app_context
        self.ch_recv: RecvQueue[EventMsg] = RecvQueue(
            recv_buf_or_n, on_first_get=self._app_reads_ch_recv
        )
        #: The router that runs handlers now, if any.
        self.router: Router[EventMsg] | None = None
        #: Whether ``router`` is the decorator router, started on the first event.
        self._router_is_auto = False
        self._auto_router = True
        self._lock = threading.Lock()
        self._closed = False

    def put(self, msg: EventMsg, *, inline: bool = False) -> None:
        """Hand ``msg`` to the app. ``inline``: the calling thread may run a quick handler."""
        self._ensure_router()
        router = self.router
        if inline and router is not None:
            router.submit(msg, inline=True)
        else:
            self.ch_recv.put(msg)

    def start_router(
        self,
        handler: Callable[[EventMsg], Any],
        *,
        error_handler: Callable[[EventMsg, BaseException], Any] | None = None,
        trace_evs: bool = False,
        simple_auto_threading: bool = False,
        workers: int | None = None,
    ) -> Callable[[], None]:
        """Run ``handler`` on every message of ``ch_recv``; returns ``stop()``.

        With more than one worker, handlers already run side by side (one client's in
        order), so a quick one may also run where its event arrived; a single worker keeps
        Sente's one-at-a-time handling."""
        if self.router is not None:
            self.router.stop()
        n = workers or (self._handler_workers if simple_auto_threading else 1)
        router = Router(
            self.ch_recv,
            handler,
            error_handler=error_handler,
            workers=n,
            key=lambda msg: msg.client_id,
            wrap=self._run_in_app_context,
            trace_evs=trace_evs,
            inline_kind=_handler_kind if n > 1 else None,
        )
        self.router = router
        self._router_is_auto = False

        def stop() -> None:
            router.stop()
            if self.router is router:
                self.router = None

        return stop

    def use_custom_router(self) -> None:
        """The application routes ``ch_recv`` itself: the decorator router stops for good."""
        with self._lock:
            self._auto_router = False
            router, self.router = self.router, None
        if router is not None:
            router.stop()

    def _app_reads_ch_recv(self) -> None:
        """The application's first ``ch_recv.get()``: the decorator router, if it runs, stops
        (what it took already is still handled), and never starts again."""
        with self._lock:
            self._auto_router = False
            router = self.router if self._router_is_auto else None
            if router is not None:
                router.stop_taking()
                self.router = None
        if router is not None:
            logger.info("the app reads ch_recv itself: the decorator handlers stop running")
            router.stop()

    def _ensure_router(self) -> None:
        """Start the decorator router on the first event, if there are decorator handlers
        and the application does not read ``ch_recv`` itself."""
        if self.router is not None or not self._auto_router:
            return
        if not self._handlers.has_handlers():
            return  # nothing to run: events wait in ch_recv for whoever reads it
        with self._lock:
            if self.router is None and self._auto_router and not self._closed:
                self.start_router(
                    self._handlers.dispatch,
                    error_handler=self._on_handler_error,
                    workers=self._handler_workers,
                )
                self._router_is_auto = True

    def _on_handler_error(self, msg: EventMsg, exc: BaseException) -> None:
        handler = self._handlers.error_handler
        if handler is None:
            logger.error(
                "handler for %r failed (uid %r, client %s); the other events go on",
                msg.id,
                msg.uid,
                msg.client_id,
                exc_info=exc,
            )
        else:
            handler(msg, exc)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            router, self.router = self.router, None
        if router is not None:
            router.stop()
        self.ch_recv.close()


def _handler_kind(msg: EventMsg) -> Any:
    """What the router learns quickness by: the event's id (a Keyword, hashed as is)."""
    return msg.event[0]
