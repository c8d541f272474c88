"""One background thread that runs timers: send-buffer flushes, close grace, reply timeouts.

A single heap-ordered thread instead of one ``threading.Timer`` per timer keeps the thread
count flat however many connections and pushes there are. Under gevent monkey-patching the
thread is a greenlet. Callbacks must be short: they run one after another on this thread.

A callback that raises is logged with what it was for and the connection it served (uid,
client-id), and the thread goes on with the next one: one failing timer never stops the
others. Callbacks that can fail in a way that matters handle it themselves (a flush closes
its connection, see :mod:`flask_sente.delivery`); this is the last line.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("flask_sente.scheduler")


class TimerHandle:
    """A scheduled call; ``cancel()`` stops it if it has not run yet."""

    __slots__ = ("_fn", "cancelled", "client_id", "uid", "what")

    def __init__(
        self, fn: Callable[[], object], what: str, uid: Any = None, client_id: str | None = None
    ) -> None:
        self._fn = fn
        self.cancelled = False
        self.what = what
        self.uid = uid
        self.client_id = client_id

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    """Runs callables after a delay on one daemon thread, started on first use."""

    def __init__(self, *, name: str = "flask_sente-scheduler") -> None:
        self._name = name
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def call_later(
        self,
        delay_s: float,
        fn: Callable[[], object],
        *,
        what: str = "a timer",
        uid: Any = None,
        client_id: str | None = None,
    ) -> TimerHandle:
        """Run ``fn`` after ``delay_s``; ``what``, ``uid`` and ``client_id`` name it in the
        log should it fail."""
        handle = TimerHandle(fn, what, uid, client_id)
        with self._cond:
            if self._closed:
                handle.cancelled = True
                return handle
            heapq.heappush(self._heap, (time.monotonic() + delay_s, next(self._counter), handle))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()
        return handle

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the thread; pending timers are dropped. Bounded by ``timeout_s``."""
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    @property
    def closed(self) -> bool:
        return self._closed

    def overdue(self, now: float) -> bool:
        """Whether a timer is due and waits for this thread to get its turn (read without the
        lock: a guess, good enough to decide whether to yield)."""
        heap = self._heap
        return bool(heap) and heap[0][0] <= now

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    if self._heap:
                        wait = self._heap[0][0] - time.monotonic()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                if self._closed:
                    return
                _, _, handle = heapq.heappop(self._heap)
            if handle.cancelled:
                continue
            try:
                handle._fn()
            except Exception:
                logger.exception(
                    "%s failed (uid %r, client %s); the other timers go on",
                    handle.what,
                    handle.uid,
                    handle.client_id,
                )
