"""Event routing, for the server and the Python client alike: the receive queue
(``ch_recv``), the handler registry, and the router threads.

Every incoming event goes on ``ch_recv``, a bounded queue that drops its oldest message
when full (Sente's sliding buffer), logging the drops. A router takes messages off it and
runs handlers. With one worker (the client, and Sente's ``start-server-chsk-router!``) the
router's own thread runs them; with several (the server's decorator handlers) messages of one
client always go to the same worker, so one client's events are handled in the order they
arrived while a slow handler for one client does not stall the others.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Hashable
from functools import partial
from typing import Any, Generic, TypeVar

from .errors import ConfigError
from .lanes import Lanes, Quickness

logger = logging.getLogger("flask_sente.router")

T = TypeVar("T")
M = TypeVar("M")


class RecvQueue(Generic[T]):
    """A bounded FIFO that drops its oldest item when full (Sente's sliding buffer).

    ``put`` never blocks, so a reader that falls behind loses history rather than stalling
    the connection that delivers. An application reads it with :meth:`get`, a
    :class:`Router` with :meth:`take`; either blocks up to ``timeout`` and returns None when
    it times out, when ``cancel`` is set (even with items waiting: a stopped router takes no
    more), or once the queue is closed and drained. The first :meth:`get` calls
    ``on_first_get`` first, so the owner can stand down a router of its own before the
    application takes its first item (the server's decorator router, see ``Sente.ch_recv``).
    """

    def __init__(
        self,
        maxlen: int,
        *,
        name: str = "ch_recv",
        on_first_get: Callable[[], None] | None = None,
    ) -> None:
        if not isinstance(maxlen, int) or isinstance(maxlen, bool) or maxlen < 1:
            raise ConfigError(f"recv_buf_or_n must be a positive buffer size, got {maxlen!r}")
        self._items: deque[T] = deque()
        self._maxlen = maxlen
        self._cond = threading.Condition(threading.Lock())
        self._name = name
        self.dropped = 0
        self._closed = False
        self._on_first_get = on_first_get

    def put(self, item: T) -> T | None:
        """Add ``item``; returns the oldest item when it was dropped to make room."""
        dropped = None
        with self._cond:
            if len(self._items) >= self._maxlen:
                dropped = self._items.popleft()
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    logger.warning(
                        "%s is full (%d messages): dropped the oldest (%d so far); handlers "
                        "are too slow or no router is running",
                        self._name,
                        self._maxlen,
                        self.dropped,
                    )
            self._items.append(item)
            self._cond.notify()
        return dropped

    def wait(self, timeout: float) -> bool:
        """Wait until an item is there, without taking it; False after ``timeout``."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            return bool(self._items)

    def get(self, timeout: float | None = None, cancel: threading.Event | None = None) -> T | None:
        """The next item, or None after ``timeout`` seconds, once ``cancel`` is set, or once
        closed and empty; the first call claims the queue (``on_first_get``)."""
        with self._cond:
            claim, self._on_first_get = self._on_first_get, None
        if claim is not None:
            claim()
        return self.take(timeout, cancel)

    def take(self, timeout: float | None = None, cancel: threading.Event | None = None) -> T | None:
        """:meth:`get` for routers: the same, without claiming the queue."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if cancel is not None and cancel.is_set():
                    return None
                if self._items:
                    return self._items.popleft()
                if self._closed:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def wake(self) -> None:
        """Wake every blocked reader so that it looks at its ``cancel`` event."""
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        """Let blocked readers drain what is left and then get None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        with self._cond:
            self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)


class Handlers(Generic[M]):
    """Handlers by event id, a default handler and an error handler.

    Shared by the server and the Python client, which both route event messages that
    have an ``id``.
    """

    def __init__(self) -> None:
        self._by_id: dict[str, Callable[[M], Any]] = {}
        self._default: Callable[[M], Any] | None = None
        self._error: Callable[[M, BaseException], Any] | None = None

    def on(self, event_id: str) -> Callable[[Callable[[M], Any]], Callable[[M], Any]]:
        """Decorator: run the function for events with id ``event_id``."""
        if not isinstance(event_id, str) or "/" not in event_id:
            raise ConfigError(f'an event id is "namespace/name", got {event_id!r}')

        def register(fn: Callable[[M], Any]) -> Callable[[M], Any]:
            self._by_id[event_id] = fn
            return fn

        return register

    def on_default(self, fn: Callable[[M], Any]) -> Callable[[M], Any]:
        """Decorator: run the function for every event without a handler of its own."""
        self._default = fn
        return fn

    def on_error(self, fn: Callable[[M, BaseException], Any]) -> Callable[[M, BaseException], Any]:
        """Decorator: run ``fn(msg, exc)`` when a handler raises."""
        self._error = fn
        return fn

    def has_handlers(self) -> bool:
        return bool(self._by_id) or self._default is not None

    def dispatch(self, msg: M) -> None:
        handler = self._by_id.get(msg.id) or self._default  # type: ignore[attr-defined]
        if handler is None:
            logger.debug("no handler for event %r", msg.id)  # type: ignore[attr-defined]
            return
        handler(msg)

    @property
    def error_handler(self) -> Callable[[M, BaseException], Any] | None:
        return self._error


class Router(Generic[M]):
    """Takes messages off a :class:`RecvQueue` and runs a handler for each.

    With ``workers=1`` and no ``inline_kind`` one thread, named ``name``, reads the queue and
    runs the handler, one message at a time (the client's router, Sente's ``start-router``).
    Otherwise a pump thread hands each message to the worker its ``key`` picks, and with
    ``inline_kind`` (what names a message's handler, for :class:`~.lanes.Quickness`),
    :meth:`submit` may run a message's handler on the calling thread instead, when that
    handler has been quick and nothing of the message's client is queued or running
    (:class:`~.lanes.Lanes`): one client's messages still run one after another, in order.
    ``trace_evs`` logs each event before its handler (DEBUG, as Sente traces it); a
    handler's exception goes to ``error_handler``, or to the log, and the router goes on.
    """

    def __init__(
        self,
        queue: RecvQueue[M],
        handler: Callable[[M], Any],
        *,
        error_handler: Callable[[M, BaseException], Any] | None = None,
        workers: int = 1,
        key: Callable[[M], Any] = lambda msg: None,
        wrap: Callable[[Callable[[], Any]], Any] = lambda call: call(),
        trace_evs: bool = False,
        inline_kind: Callable[[M], Hashable] | None = None,
        name: str = "flask_sente-router",
    ) -> None:
        self._queue = queue
        self._handler = handler
        self._error_handler = error_handler
        self._key = key
        self._wrap = wrap
        self._trace = trace_evs
        self._inline_kind = inline_kind
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._lanes: Lanes[M] = Lanes()
        self._quickness = Quickness()
        self._inboxes: list[RecvQueue[M]] = []
        if workers == 1 and inline_kind is None:
            self._threads = [threading.Thread(target=self._run_alone, name=name, daemon=True)]
        else:
            self._inboxes = [RecvQueue(10_000, name=f"{name} worker {i}") for i in range(workers)]
            # the pump first: joining it first, nothing it forwards meets a worker that left
            self._threads = [threading.Thread(target=self._pump, name=name, daemon=True)]
            self._threads += [
                threading.Thread(target=self._work, args=(inbox,), name=f"{name}-{i}", daemon=True)
                for i, inbox in enumerate(self._inboxes)
            ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float = 5.0, *, drain: bool = False) -> None:
        """Stop taking messages; waits (bounded) for running handlers to finish, except for
        its own thread when called from a handler. ``timeout_s=0`` only tells it to stop.

        Messages already taken are handled; the queue keeps the rest, for whoever reads it
        next. With ``drain``, on a closed queue, the messages left are handled first (within
        the same ``timeout_s``): a client that disconnects still handles its last events.
        """
        deadline = time.monotonic() + timeout_s
        if drain and self._queue.closed:
            self._join(deadline)
        self.stop_taking()
        self._join(deadline)

    def stop_taking(self) -> None:
        """Take no more messages from the queue, at once; :meth:`stop` also waits."""
        self._stopping.set()
        self._queue.wake()

    def _join(self, deadline: float) -> None:
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def idle(self) -> bool:
        """Nothing is queued or running: every message submitted so far was handled."""
        with self._lock:
            return not len(self._lanes) and not len(self._queue)

    def submit(self, msg: M, *, inline: bool = False) -> None:
        """Handle ``msg``: on this thread when ``inline`` allows it and it may (see the class),
        otherwise through the queue, on its client's worker."""
        key = self._key(msg)
        kind = None if self._inline_kind is None else self._inline_kind(msg)
        with self._lock:
            here = (
                inline
                and kind is not None
                and not self._stopping.is_set()
                and not len(self._queue)  # what waits there comes first
                and self._quickness.allows(kind)
                and self._lanes.claim(key)
            )
            if not here:
                self._queue.put(msg)
                return
        started = time.perf_counter()
        try:
            self._handle(msg)
        finally:
            elapsed = time.perf_counter() - started
            with self._lock:
                if self._quickness.ran(kind, elapsed):
                    logger.info(
                        "the handler for %r took %.1f ms on the thread that received it; its "
                        "events go to the worker threads",
                        kind,
                        1000 * elapsed,
                    )
                for waiting in self._lanes.release(key):
                    self._to_worker(key, waiting)

    def _to_worker(self, key: Any, msg: M) -> None:
        """Queue ``msg`` for its client's worker (the lock held)."""
        n = len(self._inboxes)
        inbox = self._inboxes[0 if n == 1 or key is None else zlib.crc32(str(key).encode()) % n]
        dropped = inbox.put(msg)
        if dropped is not None:
            self._lanes.done(self._key(dropped))

    def _next(self) -> M | None:
        """The next message off the queue; None once stopped, or closed and drained."""
        while not self._stopping.is_set():
            msg = self._queue.take(cancel=self._stopping)
            if msg is not None:
                return msg
            if self._queue.closed:
                return None
        return None

    def _run_alone(self) -> None:
        while (msg := self._next()) is not None:
            self._handle(msg)

    def _pump(self) -> None:
        """Hand each message to its client's lane and worker. Only the pump closes the
        inboxes, after its last message."""
        try:
            while not self._stopping.is_set():
                if not self._queue.wait(0.25):
                    if self._queue.closed:
                        return
                    continue
                with self._lock:  # taken and queued at once: submit() sees it in one or other
                    if self._stopping.is_set():
                        return
                    msg = self._queue.take(0)
                    if msg is None:
                        continue
                    key = self._key(msg)
                    if self._lanes.enqueue(key, msg):
                        self._to_worker(key, msg)
        finally:
            for inbox in self._inboxes:
                inbox.close()

    def _work(self, inbox: RecvQueue[M]) -> None:
        kind = self._inline_kind
        while (msg := inbox.take()) is not None:
            started = time.perf_counter()
            self._handle(msg)
            with self._lock:
                if kind is not None:
                    self._quickness.ran(kind(msg), time.perf_counter() - started)
                self._lanes.done(self._key(msg))

    def _handle(self, msg: M) -> None:
        if self._trace:
            logger.debug("pre-handler event: %r", getattr(msg, "event", msg))
        try:
            self._wrap(partial(self._handler, msg))
        except Exception as exc:
            if self._error_handler is not None:
                try:
                    self._wrap(partial(self._error_handler, msg, exc))
                except Exception:
                    logger.exception("the error handler failed")
            else:
                logger.exception(
                    "handler failed for %r%s; the other events go on",
                    getattr(msg, "event", msg),
                    _origin(msg),
                )


def _origin(msg: Any) -> str:
    """Whose event it was, for a server's event message (a client's has no uid)."""
    if not hasattr(msg, "client_id"):
        return ""
    return f" (uid {getattr(msg, 'uid', None)!r}, client {msg.client_id})"
