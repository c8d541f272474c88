"""Who takes received events off ``ch_recv``: the caller, the registered handlers, or a router.

The handler registry and the router are the server's (:class:`flask_sente.router.Handlers`
and :class:`flask_sente.router.Router`), so code reads the same on both sides.
:class:`Routing` decides who reads ``ch_recv``: the caller (no handler registered, no router
started), the registered handlers (as soon as one is registered: they just run), or the one
handler given to ``start_router``, Sente's ``start-client-chsk-router!``. At most one router
takes events at a time, so no event is handled twice, and a router that is replaced or
stopped takes nothing more.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..router import Handlers, Router
from .messages import ChRecv, ClientEventMsg

__all__ = ["E", "ErrorHandler", "H", "Handler", "Routing"]

log = logging.getLogger("flask_sente.client.routing")

Handler = Callable[[ClientEventMsg], Any]
ErrorHandler = Callable[[ClientEventMsg, BaseException], Any]
H = TypeVar("H", bound=Handler)
E = TypeVar("E", bound=ErrorHandler)


@dataclass(frozen=True, slots=True)
class _Route:
    handler: Handler | None  # None: the registered handlers
    error_handler: ErrorHandler | None
    trace_evs: bool


class Routing:
    """The registered handlers and the router of one client.

    The router runs while the client is connected (:meth:`connected` / :meth:`disconnected`),
    on a thread called ``name``.
    """

    def __init__(self, ch_recv: ChRecv, *, name: str, join_timeout: float = 5.0) -> None:
        self.handlers: Handlers[ClientEventMsg] = Handlers()
        self._ch_recv = ch_recv
        self._name = name
        self._join_timeout = join_timeout
        self._lock = threading.Lock()
        self._route: _Route | None = None
        self._router: Router[ClientEventMsg] | None = None
        self._live = False

    def registered(self) -> None:
        """A handler was registered: unless a router was started, the registered handlers
        take the events, at once if the client is connected. An ``on_error`` handler alone
        changes nothing: there is nothing for it to catch."""
        with self._lock:
            if self._route is not None or not self.handlers.has_handlers():
                return
            self._route = _Route(None, None, False)
            replaced = self._start() if self._live else None
        self._join(replaced)

    def start(
        self, handler: Handler | None, error_handler: ErrorHandler | None, trace_evs: bool
    ) -> Callable[[], None]:
        """Route every event to ``handler`` (None: the registered handlers) from now on,
        replacing the router that ran; returns the function that stops it."""
        with self._lock:
            route = self._route = _Route(handler, error_handler, trace_evs)
            replaced = self._start() if self._live else None
        self._join(replaced)

        def stop() -> None:
            with self._lock:
                if self._route is not route:
                    return
                self._route = None
                stopped = self._halt()
            self._join(stopped)

        return stop

    def connected(self) -> None:
        with self._lock:
            self._live = True
            replaced = self._start() if self._route is not None else None
        self._join(replaced)

    def disconnected(self) -> None:
        """The client disconnected: once ``ch_recv`` is closed, the router handles the events
        left in it (the last ``chsk/state`` among them), then ends; bounded either way."""
        with self._lock:
            self._live = False
            router, self._router = self._router, None
        if router is not None:
            router.stop(self._join_timeout, drain=True)

    def _start(self) -> Router[ClientEventMsg] | None:
        """Start a router for the route; the one it replaces (to be joined), if any."""
        route = self._route
        assert route is not None
        replaced = self._halt()
        error_handler = route.error_handler
        if error_handler is None and route.handler is None:
            error_handler = self._registered_error
        self._router = Router(
            self._ch_recv,
            route.handler or self.handlers.dispatch,
            error_handler=error_handler,
            trace_evs=route.trace_evs,
            name=self._name,
        )
        return replaced

    def _halt(self) -> Router[ClientEventMsg] | None:
        """Tell the running router to stop taking events (without waiting for it)."""
        router, self._router = self._router, None
        if router is not None:
            router.stop(0)
        return router

    def _join(self, router: Router[ClientEventMsg] | None) -> None:
        """Wait (bounded, outside the lock) for a stopped router's handler to return."""
        if router is not None:
            router.stop(self._join_timeout)

    def _registered_error(self, msg: ClientEventMsg, exc: BaseException) -> None:
        """The ``on_error`` handler registered now (it may come after the router started)."""
        handler = self.handlers.error_handler
        if handler is None:
            log.error("handler for %s raised", msg.id, exc_info=exc)
        else:
            handler(msg, exc)
