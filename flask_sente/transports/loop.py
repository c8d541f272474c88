"""The event loop: one thread owning every taken-over socket of a server.

Once a WebSocket upgrade or a long-poll has passed the checks, its request thread hands
the socket here and goes back to the WSGI server's pool at once, so idle WebSockets and
waiting long-polls cost memory, not threads. The loop reads and writes with non-blocking
sockets, runs keepalive and long-poll deadlines from a heap, and writes what other threads
queue after they wake it. What each socket means is its entry's business
(:mod:`.entries`).

One turn of the loop: wait for sockets (or the next deadline, or a wake-up), read what they
have, hand the messages read to the application, then write what is due. Messages are
handed over only after every socket was read, so that what the application does with them
never runs in the middle of the loop's own bookkeeping.

The application may run a quick handler right there, on the loop's thread (see
:mod:`flask_sente.lanes`). Should one take longer than :data:`STALL_S` after all, a
watchdog hands the loop to a new thread, which serves every other socket from then on, and
the stalled thread ends once its handler returns: a handler never holds the loop longer.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import selectors
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass

from .entries import MAX_WRITE_BUFFER, Entry
from .websocket import INTERNAL_ERROR, CloseInfo

logger = logging.getLogger("flask_sente.transports.loop")

_RECV_BYTES = 65536
_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE
#: A message handed over on the loop's thread for longer than this loses it the loop.
STALL_S = 0.02
#: Quiet watchdog checks after which the watchdog sleeps until the loop hands over again.
_IDLE_CHECKS = 10
#: How long the write of an answer to a connection that came while closing may block.
_LATE_WRITE_S = 1.0

#: Messages read in one turn, in order, each with its entry.
Messages = deque[tuple[Entry, str | bytes]]


@dataclass(slots=True)
class _Handing:
    """The message the loop's thread is handing over now, and the rest of its turn."""

    entry: Entry | None
    since: float
    rest: Messages


class EventLoop:
    """Many sockets, one thread. :meth:`add`, :meth:`mark` and :meth:`close` may be called
    from any thread."""

    def __init__(self, *, name: str = "flask_sente-loop") -> None:
        self._name = name
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, _READ, None)
        self._lock = threading.Lock()
        self._dirty: dict[Entry, None] = {}
        self._added: list[Entry] = []
        #: A wake-up is pending (or the loop is mid-turn and will look at ``_dirty``).
        self._woken = False
        self._heap: list[tuple[float, int, Entry]] = []
        self._seq = itertools.count()
        self._entries: set[Entry] = set()
        #: Messages read this turn, to hand to the application once every socket was read.
        self._read: Messages = deque()
        self._running = True
        self._stop_at = 0.0
        #: The loop thread has ended: an entry added now is told so at once, and dropped.
        self._finished = False
        #: Which thread is the loop: the one started with this generation.
        self._generation = 0
        self._handing: _Handing | None = None
        self._handovers = 0
        self._watch = threading.Condition(self._lock)
        self._watch_idle = True
        #: The thread that is the loop now (a stalled handler hands the loop to a new one).
        self.thread = self._lead(deque())
        self._watchdog = threading.Thread(target=self._guard, name=f"{name}-watchdog", daemon=True)
        self._watchdog.start()

    @property
    def connections(self) -> int:
        return len(self._entries)

    @property
    def behind(self) -> bool:
        """Whether entries wait to be serviced (read without the lock: a guess)."""
        return bool(self._dirty) or bool(self._added)

    # ------------------------------------------------------------------ any thread

    def add(self, entry: Entry) -> None:
        """Own ``entry``'s socket until the entry finishes or the client leaves."""
        with self._lock:
            if not self._finished:
                self._added.append(entry)
                self._wake_locked()
                return
        self._answer_late(entry)

    def _answer_late(self, entry: Entry) -> None:
        """The loop has stopped (the server is shutting down): tell ``entry`` here."""
        written = entry.shut_down_here(_LATE_WRITE_S)
        self._drop(entry, CloseInfo(None, "server closing", True), written=written)

    def mark(self, entry: Entry) -> None:
        """``entry`` has something new to write (or a new deadline): service it soon."""
        with self._lock:
            self._dirty[entry] = None
            self._wake_locked()

    def close(self, timeout_s: float = 5.0) -> None:
        """Close every connection and stop the thread, within ``timeout_s``.

        Each entry is told to shut down (a WebSocket sends a close frame, 1001, and gets a
        short while for its answer; a waiting request is completed with
        ``CLOSED_BY_SERVER`` and answered accordingly)."""
        self._stop_at = time.monotonic() + min(timeout_s / 2, 1.0)
        self._running = False
        with self._lock:
            self._wake_locked()
            self._watch.notify()
            thread = self.thread
        if thread is not threading.current_thread():
            thread.join(timeout_s)

    def _wake_locked(self) -> None:
        if not self._woken:
            self._woken = True
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")

    # ------------------------------------------------------------------ the loop thread

    def _lead(self, inherited: Messages) -> threading.Thread:
        """Start a thread that is the loop from now on (the lock held, or at start)."""
        thread = threading.Thread(
            target=self._run, args=(self._generation, inherited), name=self._name, daemon=True
        )
        self.thread = thread
        thread.start()
        return thread

    def _run(self, generation: int, inherited: Messages) -> None:
        try:
            if generation and not self._hand_over(generation, inherited):
                return
            # a new thread first serves what the stalled one left (no wake-up byte comes)
            timeout: float | None = 0.0 if generation else None
            closing = False
            while self._running or (
                (self._entries or self._added) and time.monotonic() < self._stop_at
            ):
                if not self._running and not closing:
                    closing = True
                    for entry in list(self._entries):
                        entry.shutdown()
                        self._service_safely(entry, time.monotonic())
                if not self._turn(generation, 0.05 if closing else timeout):
                    return  # no longer the loop: its new thread cleans up in the end
                timeout = None
        except Exception:
            logger.exception("the event loop failed; dropping its connections")
        with self._lock:
            if generation != self._generation:
                return
            self._finished = True
            late, self._added = self._added, []
        for entry in list(self._entries):
            self._drop(entry, CloseInfo(None, "server closing", True))
        for entry in late:
            self._answer_late(entry)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _turn(self, generation: int, timeout: float | None) -> bool:
        """One turn; False when this thread lost the loop meanwhile."""
        if self._heap:
            next_due = max(0.0, self._heap[0][0] - time.monotonic())
            timeout = next_due if timeout is None else min(timeout, next_due)
        ready = self._selector.select(timeout)
        # mid-turn: whoever marks an entry from now on is seen below without a wake-up byte
        self._woken = True
        now = time.monotonic()
        for key, mask in ready:
            entry = key.data
            if entry is None:
                self._drain_wake()
            elif not entry.closed:
                try:
                    self._on_ready(entry, mask, now)
                except Exception as exc:
                    self._fault(entry, exc)
        if self._read:
            read, self._read = self._read, deque()
            if not self._hand_over(generation, read):
                return False
            now = time.monotonic()
        with self._lock:
            self._woken = False
            added, self._added = self._added, []
            dirty, self._dirty = list(self._dirty), {}
        for entry in added:
            self._register(entry)
            if not self._running and not entry.closed:
                entry.shutdown()  # came while closing: it is told what the others were
        for entry in added + dirty:
            if not entry.closed:
                self._service_safely(entry, now)
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, entry = heapq.heappop(heap)
            entry.scheduled = None
            if not entry.closed:
                self._service_safely(entry, now)
        return True

    def _hand_over(self, generation: int, rest: Messages) -> bool:
        """Hand the turn's messages to the application, in order. A message handed over
        after this thread lost the loop may no longer run on it (``inline`` False). Returns
        whether this thread is still the loop."""
        with self._lock:
            self._handovers += 1
            if self._watch_idle:
                self._watch_idle = False
                self._watch.notify()
        handing = _Handing(None, 0.0, rest)
        while True:
            with self._lock:
                leading = generation == self._generation
                if not rest:
                    if leading:
                        self._handing = None
                    return leading
                entry, message = rest.popleft()
                if leading:
                    handing.entry, handing.since = entry, time.monotonic()
                    self._handing = handing
            if entry.closed or entry.faulted:
                continue
            try:
                entry.deliver(message, leading)
            except Exception as exc:
                entry.fault(exc)  # logs, and tells the client; it ends on the loop's thread
                self.mark(entry)

    def _guard(self) -> None:
        """The watchdog: a message handed over for longer than :data:`STALL_S` loses its
        thread the loop. That thread's other messages stay with it, in order, for the
        workers; every other one goes on with the loop's new thread."""
        quiet = 0
        seen = -1
        with self._lock:
            while self._running:
                if self._watch_idle:
                    self._watch.wait()
                    continue
                self._watch.wait(STALL_S / 2)
                handing = self._handing
                if handing is not None and time.monotonic() - handing.since >= STALL_S:
                    stalled = handing.entry
                    inherited = deque(item for item in handing.rest if item[0] is not stalled)
                    kept = [item for item in handing.rest if item[0] is stalled]
                    handing.rest.clear()
                    handing.rest.extend(kept)
                    self._handing = None
                    self._generation += 1
                    logger.warning(
                        "a handler held the event loop for over %d ms: the loop goes on on a "
                        "new thread",
                        1000 * STALL_S,
                    )
                    self._lead(inherited)
                quiet = quiet + 1 if self._handovers == seen else 0
                seen = self._handovers
                if quiet >= _IDLE_CHECKS:
                    self._watch_idle = True
                    quiet = 0

    def _drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self._wake_r.recv(4096):
                pass

    def _register(self, entry: Entry) -> None:
        self._entries.add(entry)
        try:
            self._selector.register(entry.sock, _READ, entry)
            entry.watched = _READ
        except (ValueError, OSError) as exc:
            logger.info("cannot watch a taken-over socket: %s", exc)
            self._drop(entry, CloseInfo(None, "socket unusable", False))

    def _on_ready(self, entry: Entry, mask: int, now: float) -> None:
        if mask & _READ:
            try:
                data: bytes | None = entry.sock.recv(_RECV_BYTES)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                data = b""
            if data is not None:
                result = entry.readable(data, now)
                if isinstance(result, CloseInfo):
                    self._drop(entry, result)
                    return
                if result:
                    self._read.extend([(entry, message) for message in result])
        self._service(entry, now)

    def _service(self, entry: Entry, now: float) -> None:
        deadline = entry.service(now)
        if not self._flush(entry):
            return
        if entry.finished and not entry.out:
            self._drop(entry, entry.end_info(), written=True)
            return
        if deadline is not None and (entry.scheduled is None or deadline < entry.scheduled):
            entry.scheduled = deadline
            heapq.heappush(self._heap, (deadline, next(self._seq), entry))

    def _service_safely(self, entry: Entry, now: float) -> None:
        try:
            self._service(entry, now)
        except Exception as exc:
            self._fault(entry, exc)

    def _fault(self, entry: Entry, exc: Exception) -> None:
        """Serving one connection raised: the entry logs it and tells its client (1011, or a
        500 answer); the other connections go on."""
        if entry.fault(exc):
            self.mark(entry)  # what it has to say goes out on the next turn
        else:
            self._drop(entry, CloseInfo(INTERNAL_ERROR, "internal server error", True))

    def _flush(self, entry: Entry) -> bool:
        """Write what fits; False when the connection had to be dropped."""
        out = entry.out
        if out:
            try:
                sent = entry.sock.send(out)
                del out[:sent]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                self._drop(entry, CloseInfo(None, f"socket error: {exc}", False))
                return False
            if len(out) > MAX_WRITE_BUFFER:
                logger.warning(
                    "dropping a slow client: over %d bytes waiting to be sent", MAX_WRITE_BUFFER
                )
                self._drop(entry, CloseInfo(None, "slow consumer", True))
                return False
        events = (0 if entry.read_closed else _READ) | (_WRITE if out else 0)
        if events != entry.watched:
            with contextlib.suppress(KeyError, ValueError, OSError):
                if not events:
                    self._selector.unregister(entry.sock)
                elif not entry.watched:
                    self._selector.register(entry.sock, events, entry)
                else:
                    self._selector.modify(entry.sock, events, entry)
            entry.watched = events
        return True

    def _drop(self, entry: Entry, info: CloseInfo, *, written: bool = False) -> None:
        if entry.closed:
            return
        entry.closed = True
        self._entries.discard(entry)
        if entry.watched:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(entry.sock)
            entry.watched = 0
        with contextlib.suppress(OSError):
            entry.sock.shutdown(socket.SHUT_RDWR)
        entry.sock.close()
        try:
            entry.dropped(info, written)
        except Exception:
            logger.exception("a connection close callback failed")
