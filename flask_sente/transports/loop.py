"""The event loop: one thread owning every taken-over socket of a server.

Once a WebSocket upgrade or a long-poll has passed the checks, its request thread hands
the socket here and goes back to the WSGI server's pool at once, so idle WebSockets and
waiting long-polls cost memory, not threads. The loop reads and writes with non-blocking
sockets, runs keepalive and long-poll deadlines from a heap, and writes what other threads
queue after they wake it. It never runs a handler: incoming messages are unpacked and put
on the receive queue, and handler threads do the rest.
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
from collections.abc import Callable
from typing import Any

from .longpoll import CLIENT_GONE, CLOSED_BY_SERVER, LongPoll
from .websocket import GOING_AWAY, INTERNAL_ERROR, CloseInfo, WsSession

logger = logging.getLogger("flask_sente.transports.loop")

_RECV_BYTES = 65536
_PULL_BELOW = 256 * 1024
#: A client that lets this much unsent data pile up is dropped as a slow consumer.
MAX_WRITE_BUFFER = 8 * 1024 * 1024
#: The answer to a waiting Ajax request whose answer could not be made.
_SERVER_ERROR = (
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 21\r\nConnection: close\r\n\r\ninternal server error"
)


class _Entry:
    __slots__ = ("closed", "faulted", "out", "read_closed", "scheduled", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.out = bytearray()
        self.scheduled: float | None = None
        self.closed = False
        #: Serving it raised once: it is closing; a second failure drops it at once.
        self.faulted = False
        #: The client half-closed (it sent all it meant to); it may still read our answer.
        self.read_closed = False


class _WsEntry(_Entry):
    __slots__ = ("on_closed", "session")

    def __init__(
        self, sock: socket.socket, session: WsSession, on_closed: Callable[[CloseInfo], None]
    ):
        super().__init__(sock)
        self.session = session
        self.on_closed = on_closed


class _PollEntry(_Entry):
    __slots__ = (
        "answer_after_fin",
        "deadline",
        "on_done",
        "poll",
        "respond",
        "responded",
        "timeout_value",
    )

    def __init__(
        self,
        sock: socket.socket,
        poll: LongPoll,
        deadline: float,
        timeout_value: Any,
        respond: Callable[[Any], bytes],
        on_done: Callable[[Any, bool], None],
        answer_after_fin: bool,
    ) -> None:
        super().__init__(sock)
        self.poll = poll
        self.deadline = deadline
        self.timeout_value = timeout_value
        self.respond = respond
        self.on_done = on_done
        self.answer_after_fin = answer_after_fin
        self.responded = False


def _nothing(*args: Any) -> None:
    return None


def _break_cycles(entry: _Entry) -> None:
    """Drop the callbacks that tie a finished connection to its entry and its server.

    Without this every closed connection is a reference cycle that only the garbage
    collector frees, and with thousands of connections its full passes stall the loop.
    """
    if isinstance(entry, _WsEntry):
        entry.session.wake = _nothing
        entry.session.on_message = _nothing
        entry.on_closed = _nothing
    elif isinstance(entry, _PollEntry):
        entry.poll.notify = _nothing
        entry.respond = _nothing  # type: ignore[assignment]
        entry.on_done = _nothing


class EventLoop:
    """Many sockets, one thread. ``add_*`` may be called from any thread."""

    def __init__(self, *, name: str = "flask_sente-loop") -> None:
        self._name = name
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._dirty: dict[_Entry, None] = {}
        self._added: list[_Entry] = []
        self._woken = False
        self._heap: list[tuple[float, int, _Entry]] = []
        self._seq = itertools.count()
        self._entries: set[_Entry] = set()
        self._running = True
        self._stop_at = 0.0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def connections(self) -> int:
        return len(self._entries)

    # ------------------------------------------------------------------ any thread

    def add_websocket(
        self,
        sock: socket.socket,
        session: WsSession,
        *,
        on_closed: Callable[[CloseInfo], None],
        initial: bytes = b"",
    ) -> None:
        """Own ``sock`` for ``session`` until it closes; then ``on_closed(info)`` runs here.

        ``initial`` (the 101 response) is written before anything the session queues."""
        entry = _WsEntry(sock, session, on_closed)
        entry.out += initial
        session.wake = lambda: self._mark(entry)
        self._add(entry)

    def add_long_poll(
        self,
        sock: socket.socket,
        poll: LongPoll,
        *,
        timeout_s: float,
        timeout_value: Any,
        respond: Callable[[Any], bytes],
        on_done: Callable[[Any, bool], None],
        answer_after_fin: bool,
    ) -> None:
        """Answer ``poll`` on ``sock`` once it completes, or with ``timeout_value`` after
        ``timeout_s``. ``on_done(value, written)`` says whether the answer reached the socket.

        When the client sends its FIN first, ``answer_after_fin`` decides: the answer still
        goes out (a client may stop writing and still read), or the request ends at once,
        unanswered, with ``CLIENT_GONE`` (what http-kit does)."""
        entry = _PollEntry(
            sock,
            poll,
            time.monotonic() + timeout_s,
            timeout_value,
            respond,
            on_done,
            answer_after_fin,
        )
        poll.notify = lambda: self._mark(entry)
        self._add(entry)

    def close(self, timeout_s: float = 5.0) -> None:
        """Close every connection and stop the thread, within ``timeout_s``.

        WebSockets get a close frame (1001) and a short while to answer it; requests still
        waiting are completed with ``CLOSED_BY_SERVER`` and get the answer their ``respond``
        gives it (a long-poll fails, so its client connects again, elsewhere if need be)."""
        self._stop_at = time.monotonic() + min(timeout_s / 2, 1.0)
        self._running = False
        self._wake()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def _add(self, entry: _Entry) -> None:
        with self._lock:
            self._added.append(entry)
            self._wake_locked()

    def _mark(self, entry: _Entry) -> None:
        with self._lock:
            self._dirty[entry] = None
            self._wake_locked()

    def _wake(self) -> None:
        with self._lock:
            self._wake_locked()

    def _wake_locked(self) -> None:
        if not self._woken:
            self._woken = True
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")

    # ------------------------------------------------------------------ the loop thread

    def _run(self) -> None:
        try:
            closing = False
            while self._running or (self._entries and time.monotonic() < self._stop_at):
                if not self._running and not closing:
                    closing = True
                    for entry in list(self._entries):
                        if isinstance(entry, _WsEntry):
                            entry.session.close(GOING_AWAY, "server shutting down")
                        else:
                            assert isinstance(entry, _PollEntry)
                            entry.poll.offer(CLOSED_BY_SERVER)
                            self._service(entry, time.monotonic())
                timeout = 0.05 if closing else None
                if self._heap:
                    next_due = max(0.0, self._heap[0][0] - time.monotonic())
                    timeout = next_due if timeout is None else min(timeout, next_due)
                for key, mask in self._selector.select(timeout):
                    entry = key.data
                    if entry is None:
                        self._drain_wake()
                    elif not entry.closed:
                        try:
                            self._on_ready(entry, mask)
                        except Exception as exc:
                            self._fault(entry, exc)
                with self._lock:
                    # cleared together with taking the work: a later _mark writes a new byte
                    self._woken = False
                    added, self._added = self._added, []
                    dirty, self._dirty = list(self._dirty), {}
                now = time.monotonic()
                for entry in added:
                    self._register(entry)
                for entry in added + dirty:
                    if not entry.closed:
                        self._service_safely(entry, now)
                while self._heap and self._heap[0][0] <= now:
                    _, _, entry = heapq.heappop(self._heap)
                    entry.scheduled = None
                    if not entry.closed:
                        self._service_safely(entry, now)
        except Exception:
            logger.exception("the event loop failed; dropping its connections")
        finally:
            for entry in list(self._entries):
                self._drop(entry, CloseInfo(None, "server closing", True))
            self._selector.close()
            self._wake_r.close()
            self._wake_w.close()

    def _drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self._wake_r.recv(4096):
                pass

    def _register(self, entry: _Entry) -> None:
        self._entries.add(entry)
        try:
            self._selector.register(entry.sock, selectors.EVENT_READ, entry)
        except (ValueError, OSError) as exc:
            logger.info("cannot watch a taken-over socket: %s", exc)
            self._drop(entry, CloseInfo(None, "socket unusable", False))

    def _on_ready(self, entry: _Entry, mask: int) -> None:
        if mask & selectors.EVENT_READ:
            try:
                data = entry.sock.recv(_RECV_BYTES)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                data = b""
            if data is not None:
                if isinstance(entry, _WsEntry):
                    if data:
                        entry.out += entry.session.receive(data)
                    else:
                        entry.session.peer_gone()
                elif not data:
                    assert isinstance(entry, _PollEntry)
                    if not entry.answer_after_fin and not entry.poll.done:
                        self._drop(entry, CloseInfo(None, "client gone", False))
                        return
                    entry.read_closed = True  # an HTTP client may half-close and still read
        self._service(entry, time.monotonic())

    def _service(self, entry: _Entry, now: float) -> None:
        if isinstance(entry, _WsEntry):
            session = entry.session
            session.tick(now)
            if len(entry.out) < _PULL_BELOW:  # else let the session's bounded queue fill
                entry.out += session.output(now)
            finished = session.close_info is not None
            deadline = session.deadline()
        else:
            assert isinstance(entry, _PollEntry)
            if not entry.poll.done and now >= entry.deadline:
                entry.poll.offer(entry.timeout_value)
            if entry.poll.done and not entry.responded:
                value = entry.poll.value
                answer = b"" if value is CLIENT_GONE else entry.respond(value)
                entry.responded = True
                entry.out += answer
            finished = entry.responded
            deadline = None if entry.responded else entry.deadline
        if not self._flush(entry):
            return
        if finished and not entry.out:
            self._finish(entry)
            return
        if deadline is not None and (entry.scheduled is None or deadline < entry.scheduled):
            entry.scheduled = deadline
            heapq.heappush(self._heap, (deadline, next(self._seq), entry))

    def _service_safely(self, entry: _Entry, now: float) -> None:
        try:
            self._service(entry, now)
        except Exception as exc:
            self._fault(entry, exc)

    def _fault(self, entry: _Entry, exc: Exception) -> None:
        """Serving one connection raised: log it with whose it is, and close it with a
        reason its client sees (1011, or a 500 answer); the other connections go on."""
        if isinstance(entry, _WsEntry):
            logger.error("serving %s failed; closing it", entry.session.label, exc_info=exc)
            if not entry.faulted:
                entry.faulted = True
                entry.session.close(INTERNAL_ERROR, "internal server error")
                self._mark(entry)  # the close frame goes out on the next turn
                return
        elif isinstance(entry, _PollEntry):
            logger.error("serving %s failed; answering 500", entry.poll.label, exc_info=exc)
            if not entry.responded:
                entry.responded = True
                with contextlib.suppress(OSError):
                    entry.sock.send(_SERVER_ERROR)
        self._drop(entry, CloseInfo(INTERNAL_ERROR, "internal server error", True))

    def _flush(self, entry: _Entry) -> bool:
        """Write what fits; False when the connection had to be dropped."""
        if entry.out:
            try:
                sent = entry.sock.send(entry.out)
                del entry.out[:sent]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                self._drop(entry, CloseInfo(None, f"socket error: {exc}", False))
                return False
            if len(entry.out) > MAX_WRITE_BUFFER:
                logger.warning(
                    "dropping a slow client: over %d bytes waiting to be sent", MAX_WRITE_BUFFER
                )
                self._drop(entry, CloseInfo(None, "slow consumer", True))
                return False
        events = (0 if entry.read_closed else selectors.EVENT_READ) | (
            selectors.EVENT_WRITE if entry.out else 0
        )
        with contextlib.suppress(ValueError, OSError):
            try:
                current = self._selector.get_key(entry.sock).events
            except KeyError:
                current = 0
            if events != current:
                if not events:
                    self._selector.unregister(entry.sock)
                elif not current:
                    self._selector.register(entry.sock, events, entry)
                else:
                    self._selector.modify(entry.sock, events, entry)
        return True

    def _finish(self, entry: _Entry) -> None:
        info = entry.session.close_info if isinstance(entry, _WsEntry) else None
        self._drop(entry, info or CloseInfo(None, "", True), written=True)

    def _drop(self, entry: _Entry, info: CloseInfo, *, written: bool = False) -> None:
        if entry.closed:
            return
        entry.closed = True
        self._entries.discard(entry)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._selector.unregister(entry.sock)
        with contextlib.suppress(OSError):
            entry.sock.shutdown(socket.SHUT_RDWR)
        entry.sock.close()
        try:
            if isinstance(entry, _WsEntry):
                entry.session.peer_gone(info.reason)
                entry.on_closed(entry.session.close_info or info)
            else:
                assert isinstance(entry, _PollEntry)
                entry.poll.offer(CLIENT_GONE)
                entry.on_done(entry.poll.value, written and entry.poll.value is not CLIENT_GONE)
        except Exception:
            logger.exception("a connection close callback failed")
        _break_cycles(entry)
