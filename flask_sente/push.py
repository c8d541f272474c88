"""Push batching: events sent to a uid within a short window go out as one message.

As in Sente, each push is buffered per (transport, uid) for ``send_buf_ms_ws`` (30 ms) or
``send_buf_ms_ajax`` (100 ms), then the whole buffer is delivered as one batch
``[[ev1 ev2 ...] nil]``. Unlike Sente, ``flush=True`` delivers the *whole* buffer, earlier
events first, and delivery happens under the buffer lock: events reach a client in the
order ``send`` was called (Sente may reorder them, its issue #446).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .registry import KINDS
from .scheduler import Scheduler

Deliver = Callable[[str, Any, list[Any]], None]


class SendBuffers:
    def __init__(self, scheduler: Scheduler, *, windows_s: dict[str, float], deliver: Deliver):
        self._scheduler = scheduler
        self._windows_s = windows_s
        self._deliver = deliver
        self._lock = threading.Lock()
        self._buffers: dict[tuple[str, Any], list[Any]] = {}

    def add(self, uid: Any, event: list[Any], *, flush: bool = False) -> None:
        with self._lock:
            for kind in KINDS:
                key = (kind, uid)
                buffer = self._buffers.get(key)
                if buffer is None:
                    buffer = self._buffers[key] = []
                    if not flush:
                        self._schedule(key, buffer)
                buffer.append(event)
                if flush:
                    del self._buffers[key]
                    self._deliver(kind, uid, buffer)

    def flush_all(self) -> None:
        with self._lock:
            for (kind, uid), buffer in list(self._buffers.items()):
                self._deliver(kind, uid, buffer)
            self._buffers.clear()

    def _schedule(self, key: tuple[str, Any], buffer: list[Any]) -> None:
        def flush() -> None:
            with self._lock:
                if self._buffers.get(key) is buffer:
                    del self._buffers[key]
                    self._deliver(key[0], key[1], buffer)

        self._scheduler.call_later(self._windows_s[key[0]], flush)
