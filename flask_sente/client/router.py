"""Who takes received events off ``ch_recv``, and the router thread that calls handlers.

The handler registry is the server's (:class:`flask_sente.router.Handlers`: ``on``,
``on_default``, ``on_error``), so code reads the same on both sides. :class:`Routing` decides
who reads ``ch_recv``: the caller (no handler registered, no router started), the registered
handlers (as soon as one is registered: they just run), or the one handler given to
``start_router``, Sente's ``start-client-chsk-router!``. At most one router thread takes
events at a time, so no event is handled twice, and a router that is replaced or stopped
takes nothing more.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..router import Handlers
from .events import ChRecv, ClientEventMsg

__all__ = ["E", "ErrorHandler", "H", "Handler", "Routing", "run_router"]

log = logging.getLogger("flask_sente.client.router")

Handler = Callable[[ClientEventMsg], Any]
ErrorHandler = Callable[[ClientEventMsg, BaseException], Any]
H = TypeVar("H", bound=Handler)
E = TypeVar("E", bound=ErrorHandler)


def run_router(
    ch_recv: ChRecv,
    handler: Handler,
    stop: threading.Event,
    *,
    error_handler: ErrorHandler | None = None,
    trace_evs: bool = False,
) -> None:
    """Call ``handler`` for each message until ``stop`` is set (the router thread's body).

    ``trace_evs`` logs every event before its handler (level DEBUG); a handler's exception
    goes to ``error_handler``, or is logged.
    """
    while not stop.is_set():
        msg = ch_recv.get(cancel=stop)
        if msg is None:
            if ch_recv.closed:
                return
            continue
        if trace_evs:
            log.debug("pre-handler event: %r", msg.event)
        try:
            handler(msg)
        except Exception as exc:
            if error_handler is None:
                log.error("router handler raised for %s", msg.id, exc_info=exc)
            else:
                try:
                    error_handler(msg, exc)
                except Exception:
                    log.exception("router error handler raised")


@dataclass(frozen=True, slots=True)
class _Route:
    handler: Handler | None  # None: the registered handlers
    error_handler: ErrorHandler | None
    trace_evs: bool


class Routing:
    """The registered handlers and the router thread of one client.

    ``spawn(fn)`` starts a client thread running ``fn``; ``lock`` is the client's. The thread
    runs while the client is connected (:meth:`connected` / :meth:`disconnected`).
    """

    def __init__(
        self, ch_recv: ChRecv, lock: threading.RLock, spawn: Callable[[Callable[[], None]], Any]
    ) -> None:
        self.handlers: Handlers[ClientEventMsg] = Handlers()
        self._ch_recv = ch_recv
        self._lock = lock
        self._spawn = spawn
        self._route: _Route | None = None
        self._stop: threading.Event | None = None
        self._live = False

    def registered(self) -> None:
        """A handler was registered: unless a router was started, the registered handlers
        take the events, at once if the client is connected. An ``on_error`` handler alone
        changes nothing: there is nothing for it to catch."""
        with self._lock:
            if self._route is None and self.handlers.has_handlers():
                self._route = _Route(None, None, False)
                if self._live:
                    self._start()

    def start(
        self, handler: Handler | None, error_handler: ErrorHandler | None, trace_evs: bool
    ) -> Callable[[], None]:
        """Route every event to ``handler`` (None: the registered handlers) from now on,
        replacing the router that ran; returns the function that stops it."""
        with self._lock:
            route = self._route = _Route(handler, error_handler, trace_evs)
            if self._live:
                self._start()

        def stop() -> None:
            with self._lock:
                if self._route is route:
                    self._route = None
                    self._halt()

        return stop

    def connected(self) -> None:
        with self._lock:
            self._live = True
            if self._route is not None:
                self._start()

    def disconnected(self) -> None:
        with self._lock:
            self._live = False
            self._halt()

    def _start(self) -> None:
        route = self._route
        assert route is not None
        self._halt()
        stop = self._stop = threading.Event()
        handler = route.handler or self.handlers.dispatch
        error_handler = route.error_handler
        if error_handler is None and route.handler is None:
            error_handler = self._registered_error
        ch_recv, trace = self._ch_recv, route.trace_evs
        self._spawn(
            lambda: run_router(ch_recv, handler, stop, error_handler=error_handler, trace_evs=trace)
        )

    def _registered_error(self, msg: ClientEventMsg, exc: BaseException) -> None:
        """The ``on_error`` handler registered now (it may come after the router started)."""
        handler = self.handlers.error_handler
        if handler is None:
            log.error("handler for %s raised", msg.id, exc_info=exc)
        else:
            handler(msg, exc)

    def _halt(self) -> None:
        if self._stop is not None:
            self._stop.set()
            self._stop = None
            self._ch_recv.wake()
