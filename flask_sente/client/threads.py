"""The client's threads: a callback thread and tracked worker threads.

Only ``threading`` primitives are used, so the same code runs on OS threads and, after
gevent's monkey-patching, on greenlets. Every thread is a daemon (a forgotten client never
holds the interpreter open) and every one is joined, with a deadline, when the client
disconnects.

The client's own timers (callback timeouts, keepalive, reconnect backoff) run on
:class:`flask_sente.scheduler.Scheduler`, the server's too, which never runs user code, so a
slow user callback cannot delay a reconnect.

* :class:`Dispatcher` runs user code (send callbacks, state watches) one at a time, in order.
* :class:`ThreadSet` starts and remembers short-lived threads (socket readers, Ajax requests).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["Dispatcher", "ThreadSet"]

log = logging.getLogger("flask_sente.client.threads")


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
