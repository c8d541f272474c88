"""Handlers for received events, and the router thread that calls them.

The names match the server's (``on``, ``on_default``, ``on_error``), so code reads the same
on both sides. :class:`Handlers` is the pure registry and dispatch; :func:`run_router` is
Sente's ``start-client-chsk-router!`` loop over ``ch_recv``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from .events import ChRecv, ClientEventMsg

__all__ = ["ErrorHandler", "Handler", "Handlers", "run_router"]

log = logging.getLogger("flask_sente.client.router")

Handler = Callable[[ClientEventMsg], Any]
ErrorHandler = Callable[[ClientEventMsg, BaseException], Any]
H = TypeVar("H", bound=Handler)
E = TypeVar("E", bound=ErrorHandler)


class Handlers:
    """Event id -> handler, a default handler for the rest, and an error handler."""

    def __init__(self) -> None:
        self._by_id: dict[str, Handler] = {}
        self._default: Handler | None = None
        self._error: ErrorHandler | None = None

    def on(self, event_id: str) -> Callable[[H], H]:
        """Decorator: handle events whose id is ``event_id`` (e.g. ``"chat/msg"``)."""

        def register(fn: H) -> H:
            self._by_id[str(event_id)] = fn
            return fn

        return register

    def on_default(self, fn: H) -> H:
        """Decorator: handle every event no :meth:`on` handler claims."""
        self._default = fn
        return fn

    def on_error(self, fn: E) -> E:
        """Decorator: ``fn(msg, exc)`` is called when a handler raises."""
        self._error = fn
        return fn

    def dispatch(self, msg: ClientEventMsg) -> None:
        """Call the handler for ``msg``; a handler's exception goes to the error handler."""
        handler = self._by_id.get(msg.id, self._default)
        if handler is None:
            log.debug("no handler for %s", msg.id)
            return
        try:
            handler(msg)
        except Exception as exc:
            self.handle_error(msg, exc)

    def handle_error(self, msg: ClientEventMsg, exc: BaseException) -> None:
        if self._error is None:
            log.error("handler for %s raised", msg.id, exc_info=exc)
            return
        try:
            self._error(msg, exc)
        except Exception:
            log.exception("the on_error handler raised while handling %s", msg.id)


def run_router(
    ch_recv: ChRecv,
    handler: Handler,
    stop: threading.Event,
    *,
    error_handler: ErrorHandler | None = None,
    trace_evs: bool = False,
) -> None:
    """Call ``handler`` for each message until ``stop`` is set (the router thread's body)."""
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
