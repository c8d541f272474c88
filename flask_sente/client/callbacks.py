"""Callbacks waiting for a reply, each with its timeout.

A WebSocket send with a callback is filed under a fresh 6-hex cb-uuid and answered when a
``[reply cb-uuid]`` frame arrives; an Ajax send is answered by its POST response. Either
way the first answer wins: the reply, ``chsk/timeout`` from the timer, or ``chsk/closed``
when the connection that could carry the reply is gone.

User callbacks run on the client's callback thread; the client's own waiters (``request``,
the keepalive ping) run inline, so they never queue behind user code.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..protocol import TIMEOUT, new_cb_uuid
from ..scheduler import Scheduler, TimerHandle
from .runtime import Dispatcher

__all__ = ["Callback", "PendingCallbacks"]

log = logging.getLogger("flask_sente.client.callbacks")

Callback = Callable[[Any], Any]


@dataclass(slots=True)
class _Pending:
    fn: Callback
    inline: bool
    timer: TimerHandle | None
    conn: object


class PendingCallbacks:
    """The table of unanswered callbacks, safe to use from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self.scheduler: Scheduler | None = None
        self.dispatcher: Dispatcher | None = None

    def add(
        self, fn: Callback, timeout_ms: int, *, inline: bool = False, conn: object = None
    ) -> str:
        """File ``fn`` and start its timeout; returns its cb-uuid."""
        with self._lock:
            cb_uuid = new_cb_uuid()
            while cb_uuid in self._pending:
                cb_uuid = new_cb_uuid()
            entry = _Pending(fn, inline, None, conn)
            self._pending[cb_uuid] = entry
            if self.scheduler is not None:
                entry.timer = self.scheduler.call_later(
                    timeout_ms / 1000.0, lambda: self._expire(cb_uuid)
                )
        return cb_uuid

    def resolve(self, cb_uuid: str, reply: Any) -> bool:
        """Answer one callback; False when it was already answered (or never existed)."""
        with self._lock:
            entry = self._pending.pop(cb_uuid, None)
        if entry is None:
            return False
        self._deliver(entry, reply)
        return True

    def _expire(self, cb_uuid: str) -> None:
        self.resolve(cb_uuid, TIMEOUT)

    def resolve_conn(self, conn: object, reply: Any) -> int:
        """Answer every callback whose reply was to come over ``conn``."""
        with self._lock:
            keys = [k for k, e in self._pending.items() if e.conn is conn]
            entries = [self._pending.pop(k) for k in keys]
        for entry in entries:
            self._deliver(entry, reply)
        return len(entries)

    def resolve_all(self, reply: Any) -> int:
        with self._lock:
            entries = list(self._pending.values())
            self._pending.clear()
        for entry in entries:
            self._deliver(entry, reply)
        return len(entries)

    def __contains__(self, cb_uuid: object) -> bool:
        return cb_uuid in self._pending

    def _deliver(self, entry: _Pending, reply: Any) -> None:
        if entry.timer is not None:
            entry.timer.cancel()
        if entry.inline or self.dispatcher is None:
            try:
                entry.fn(reply)
            except Exception:
                log.exception("callback %r raised", entry.fn)
        else:
            self.dispatcher.submit(entry.fn, reply)
