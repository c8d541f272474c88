"""The client's threads: a timer thread, a callback thread, and tracked worker threads.

Only ``threading`` primitives are used, so the same code runs on OS threads and, after
gevent's monkey-patching, on greenlets. Every thread is a daemon (a forgotten client never
holds the interpreter open) and every one is joined, with a deadline, when the client
disconnects.

* :class:`Scheduler` runs the client's own timers (callback timeouts, keepalive, reconnect
  backoff). It never runs user code, so a slow user callback cannot delay a reconnect.
* :class:`Dispatcher` runs user code (send callbacks, state watches) one at a time, in order.
* :class:`ThreadSet` starts and remembers short-lived threads (socket readers, Ajax requests).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["Dispatcher", "Scheduler", "ThreadSet", "Timer"]

log = logging.getLogger("flask_sente.client.runtime")


class Timer:
    """A handle on a scheduled call; :meth:`cancel` makes it a no-op."""

    __slots__ = ("cancelled", "due", "fn")

    def __init__(self, due: float, fn: Callable[[], None]) -> None:
        self.due = due
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    """One thread that calls functions at their due time (monotonic clock)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition(threading.Lock())
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> Timer:
        timer = Timer(time.monotonic() + max(delay_s, 0.0), fn)
        with self._cond:
            heapq.heappush(self._heap, (timer.due, next(self._seq), timer))
            self._cond.notify()
        return timer

    def stop(self, timeout: float) -> None:
        """Drop pending timers and join the thread (unless called from it)."""
        with self._cond:
            self._stopping = True
            self._heap.clear()
            self._cond.notify()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    if self._heap and self._heap[0][0] <= time.monotonic():
                        break
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                if self._stopping:
                    return
                timer = heapq.heappop(self._heap)[2]
            if timer.cancelled:
                continue
            try:
                timer.fn()
            except Exception:
                log.exception("flask_sente client timer %r failed", timer.fn)


class Dispatcher:
    """One thread that runs submitted calls in order: where user callbacks run."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._stopping = False
        self._thread: threading.Thread | None = None

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        with self._cond:
            self._queue.append((fn, args))
            self._cond.notify()

    def stop(self, timeout: float) -> None:
        """Run what is queued (within ``timeout``), then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("a flask_sente client callback is still running after %.1f s", timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return
                fn, args = self._queue.popleft()
            try:
                fn(*args)
            except Exception:
                log.exception("flask_sente client callback %r raised", fn)


class ThreadSet:
    """Starts daemon threads and remembers the live ones so they can be joined."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()

    def spawn(self, name: str, fn: Callable[[], None]) -> threading.Thread:
        def run() -> None:
            try:
                fn()
            except Exception:
                log.exception("flask_sente client thread %s failed", name)
            finally:
                with self._lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=run, name=name, daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()
        return thread

    def join_all(self, timeout: float) -> list[threading.Thread]:
        """Join every tracked thread but the caller's within ``timeout``; the stragglers."""
        deadline = time.monotonic() + timeout
        me = threading.current_thread()
        while True:
            with self._lock:
                live = [t for t in self._threads if t is not me and t.is_alive()]
            left = deadline - time.monotonic()
            if not live or left <= 0:
                return live
            live[0].join(left)
