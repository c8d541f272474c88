"""Where a connection lives once its request passed the checks: the event loop, or the
thread of its own request (a greenlet under gevent).

A :class:`~flask_sente.server.ChannelServer` owns one :class:`Driver`. For each WebSocket,
long-poll, or POST waiting for its reply, :meth:`Driver.hold` says how it is held:

- :class:`LoopHold`: the socket moves to the event loop once Flask has finished its
  response (a :class:`Handover`), and the request's thread returns to the pool at once;
- :class:`ThreadHold`: the request's own thread serves it to its end, as far as
  ``max_held_requests`` allows (sockets the loop cannot take, ``connection_mode="thread"``);
- :class:`GreenletHold`: the same on a greenlet under gevent, where it costs little.

Either way the caller gets one :data:`Outcome` and needs to know no more.
"""

from __future__ import annotations

import abc
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from .entries import OnMessage, PollEntry, WsEntry
from .http import Answer, Headers, http_response, write_and_end
from .longpoll import LongPoll
from .loop import EventLoop
from .sockets import WsgiServer, can_detach, detach, socket_from_environ
from .threaded import serve_on_thread
from .websocket import CloseInfo, WsSession

logger = logging.getLogger("flask_sente.transports.drivers")

#: ``respond(value)``: a held request's answer once it has its value (a status and body, or
#: raw bytes that end it without an answer a client can read).
Respond = Callable[[Any], Answer | bytes]
#: ``on_done(value, written)``: the held request ended with ``value``; ``written`` says
#: whether its answer was made and handed to the socket.
OnDone = Callable[[Any, bool], None]
#: ``open()``: make a WebSocket live (its registry slot, its outlet); returns ``closed(info)``.
Open = Callable[[], Callable[[CloseInfo], None]]
#: ``call_later(delay_s, fn)``: the server's scheduler.
CallLater = Callable[[float, Callable[[], None]], Any]

#: What a request held on its thread answers when it must end unreadably but the WSGI
#: server gave no socket to end it on.
ENDED = (503, "closed by the server: connect again")


@dataclass(frozen=True, slots=True)
class Served:
    """The request was served to its end on its own thread: nothing is left to answer."""

    server: WsgiServer
    status: int


@dataclass(frozen=True, slots=True)
class Handover:
    """A connection to move to the event loop once Flask has finished its response.

    The route's taken-over response (:class:`flask_sente.route.TakenOverResponse`) calls
    :meth:`run` when the WSGI server takes it, after the ``after_request`` hooks ran, with the
    headers they set: a held request's answer carries them."""

    sock: socket.socket
    server: WsgiServer
    status: int
    start: Callable[[socket.socket, Headers], None]

    def run(self, headers: Headers) -> None:
        self.start(detach(self.sock), headers)


Outcome = Answer | Handover | Served


def _no_done(value: Any, written: bool) -> None:
    return None


class Hold(abc.ABC):
    """How one request's connection is held. A context manager: leaving it lets go of
    whatever it reserved (a thread that may hold a connection)."""

    def __init__(self, sock: socket.socket | None, server: WsgiServer) -> None:
        self._sock = sock
        self._server = server

    @abc.abstractmethod
    def websocket(
        self, session: WsSession, *, initial: bytes, open: Open, on_message: OnMessage
    ) -> Handover | Served:
        """Serve an accepted WebSocket: write ``initial`` (the 101 response), then what
        the session queues, until it closes. ``open`` runs first, ``closed`` at the end."""

    def until(
        self,
        waiting: LongPoll,
        *,
        respond: Respond,
        deadline: float,
        timeout_value: Any,
        on_done: OnDone = _no_done,
        answer_after_fin: bool,
    ) -> Outcome:
        """Answer once ``waiting`` has its value (``timeout_value`` at ``deadline``, on the
        monotonic clock). ``answer_after_fin``: whether a client that half-closed still gets
        its answer (a POST's reply), or is gone (a long-poll, as http-kit sees it)."""
        return self._answer_here(waiting, respond, deadline, timeout_value, on_done)

    def _answer_here(
        self,
        waiting: LongPoll,
        respond: Respond,
        deadline: float,
        timeout_value: Any,
        on_done: OnDone,
    ) -> Answer | Served:
        """Wait on this thread, then answer through the WSGI server (or end the request on
        its socket, for an answer no client can read)."""
        value = waiting.wait(max(0.0, deadline - time.monotonic()), on_timeout=timeout_value)
        try:
            answer = respond(value)
        except Exception:
            on_done(value, False)  # Flask answers 500
            raise
        on_done(value, True)
        if not isinstance(answer, bytes):
            return answer
        if self._sock is None:
            return ENDED
        write_and_end(self._sock, answer)
        return Served(self._server, 200)

    def release(self) -> None:
        """Let go of what this hold reserved."""
        return None

    def __enter__(self) -> Hold:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class LoopHold(Hold):
    """The event loop holds it: nothing waits on the request's thread."""

    def __init__(self, loop: Callable[[], EventLoop], sock: socket.socket, server: WsgiServer):
        super().__init__(sock, server)
        self._loop = loop

    def websocket(
        self, session: WsSession, *, initial: bytes, open: Open, on_message: OnMessage
    ) -> Handover:
        closed = open()
        loop = self._loop()

        def start(sock: socket.socket, headers: Headers) -> None:
            entry = WsEntry(sock, session, on_message=on_message, on_closed=closed, initial=initial)
            session.wake = lambda: loop.mark(entry)
            loop.add(entry)

        assert self._sock is not None
        return Handover(self._sock, self._server, 101, start)

    def until(
        self,
        waiting: LongPoll,
        *,
        respond: Respond,
        deadline: float,
        timeout_value: Any,
        on_done: OnDone = _no_done,
        answer_after_fin: bool,
    ) -> Outcome:
        if waiting.done:  # nothing to wait for: answered on this thread, keeping the connection
            return self._answer_here(waiting, respond, deadline, timeout_value, on_done)
        loop = self._loop()

        def start(sock: socket.socket, headers: Headers) -> None:
            def raw(value: Any) -> bytes:
                answer = respond(value)
                return answer if isinstance(answer, bytes) else http_response(*answer, headers)

            entry = PollEntry(
                sock,
                waiting,
                deadline=deadline,
                timeout_value=timeout_value,
                respond=raw,
                on_done=on_done,
                answer_after_fin=answer_after_fin,
            )
            waiting.notify = lambda: loop.mark(entry)
            loop.add(entry)

        assert self._sock is not None
        return Handover(self._sock, self._server, 200, start)


class ThreadHold(Hold):
    """The request's own thread holds it, counted against ``max_held_requests``."""

    def __init__(self, driver: Driver, sock: socket.socket | None, server: WsgiServer) -> None:
        super().__init__(sock, server)
        self._driver = driver

    def release(self) -> None:
        self._driver.release()

    def websocket(
        self, session: WsSession, *, initial: bytes, open: Open, on_message: OnMessage
    ) -> Served:
        sock = self._sock
        assert sock is not None
        try:
            sock.sendall(initial)
        except OSError:
            return Served(self._server, 101)
        closed = open()
        try:
            self._serve(session, sock, on_message)
        finally:
            closed(session.close_info or CloseInfo(None, "", False))
        return Served(self._server, 101)

    def _serve(self, session: WsSession, sock: socket.socket, on_message: OnMessage) -> None:
        serve_on_thread(session, sock, on_message)


class GreenletHold(ThreadHold):
    """Under gevent: a WebSocket served on its greenlet, written to without wake-ups."""

    def _serve(self, session: WsSession, sock: socket.socket, on_message: OnMessage) -> None:
        from .cooperative import serve_on_greenlet  # imports gevent

        serve_on_greenlet(session, sock, on_message, self._driver.call_later)


class Driver:
    """The connections of one server: its event loop (started on first use) and the count
    of requests holding their threads."""

    def __init__(
        self,
        *,
        use_loop: bool,
        greenlets: bool,
        max_held: int | None,
        call_later: CallLater,
    ) -> None:
        self.use_loop = use_loop
        self.call_later = call_later
        self._greenlets = greenlets
        self._max_held = max_held
        self._lock = threading.Lock()
        self._loop: EventLoop | None = None
        #: Requests holding their threads now.
        self.held = 0

    @property
    def loop(self) -> EventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = EventLoop()
            return self._loop

    @staticmethod
    def has_socket(environ: dict[str, Any]) -> bool:
        """Whether the WSGI server gives this request's socket (a WebSocket needs it)."""
        return socket_from_environ(environ)[0] is not None

    def hold(self, environ: dict[str, Any]) -> Hold | None:
        """How the connection of this request will be held; None when it would hold its
        thread and ``max_held_requests`` threads already do (the caller answers 503)."""
        sock, server = socket_from_environ(environ)
        detachable = sock is not None and can_detach(sock)
        if detachable and (self.use_loop or not server.may_hold):
            assert sock is not None
            return LoopHold(lambda: self.loop, sock, server)
        if not self._reserve():
            return None
        if detachable and self._greenlets:
            return GreenletHold(self, sock, server)
        return ThreadHold(self, sock, server)

    def behind(self) -> bool:
        """Whether the event loop (if started) has connections waiting to be written."""
        loop = self._loop
        return loop is not None and loop.behind

    def _reserve(self) -> bool:
        with self._lock:
            if self._max_held is not None and self.held >= self._max_held:
                logger.warning(
                    "refusing a connection with 503: %d requests already hold their threads "
                    "(max_held_requests)",
                    self._max_held,
                )
                return False
            self.held += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.held -= 1

    def close(self) -> None:
        """Close the loop's connections (the held threads end with their connections)."""
        with self._lock:
            loop = self._loop
        if loop is not None:
            loop.close()
