"""What the event loop holds for each taken-over socket: a WebSocket or a waiting request.

The loop (:mod:`.loop`) owns the sockets and the clock; an entry owns what happens on one of
them. It is told what was read (:meth:`Entry.readable`), asked what to write and when it next
needs the loop (:meth:`Entry.service`), and told when it ends (:meth:`Entry.dropped`) or
failed (:meth:`Entry.fault`). Every method runs on the loop thread except where it says so.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from .http import SERVER_ERROR
from .longpoll import CLIENT_GONE, CLOSED_BY_SERVER, LongPoll
from .websocket import GOING_AWAY, INTERNAL_ERROR, CloseInfo, WsSession, WsState

logger = logging.getLogger("flask_sente.transports.loop")

#: Past this much unsent output a WebSocket's session keeps its messages in its own
#: bounded queue, where a slow consumer is found out.
PULL_BELOW = 256 * 1024
#: A client that lets this much unsent data pile up is dropped as a slow consumer.
MAX_WRITE_BUFFER = 8 * 1024 * 1024

#: ``on_message(message, inline)``: a whole message from the client; ``inline`` says
#: whether the calling thread may run a quick handler itself.
OnMessage = Callable[[str | bytes, bool], None]


class Entry(abc.ABC):
    """One socket of the loop. ``out`` is what is still to be written."""

    __slots__ = ("closed", "faulted", "out", "read_closed", "scheduled", "sock", "watched")

    def __init__(self, sock: socket.socket, initial: bytes = b"") -> None:
        self.sock = sock
        self.out = bytearray(initial)
        #: When the loop's heap will next service it (None: not scheduled).
        self.scheduled: float | None = None
        #: The selector events it is registered for (0: not registered).
        self.watched = 0
        self.closed = False
        #: Serving it raised once: it is closing; a second failure drops it at once.
        self.faulted = False
        #: The client half-closed (it sent all it meant to); it may still read our answer.
        self.read_closed = False

    @abc.abstractmethod
    def readable(self, data: bytes, now: float) -> list[str | bytes] | CloseInfo | None:
        """``data`` was read (``b""``: the client sent its FIN). Returns the whole messages
        it completed, or a :class:`CloseInfo` when the connection must go at once."""

    def deliver(self, message: str | bytes, inline: bool) -> None:
        """Hand one message from :meth:`readable` to the application."""
        return None

    @abc.abstractmethod
    def service(self, now: float) -> float | None:
        """Fill ``out``; returns when the entry next needs servicing (None: only when marked)."""

    @property
    @abc.abstractmethod
    def finished(self) -> bool:
        """Nothing more will be written once ``out`` is out."""

    def end_info(self) -> CloseInfo:
        """How a finished entry ended."""
        return CloseInfo(None, "", True)

    @abc.abstractmethod
    def shutdown(self) -> None:
        """The loop is closing: end as soon as possible, telling the client."""

    def shut_down_here(self, timeout_s: float) -> bool:
        """What :meth:`shutdown` has to say, written with a blocking send bounded by
        ``timeout_s``: for an entry that reached the loop after it stopped. Returns whether
        it was written."""
        try:
            self.shutdown()
            self.service(time.monotonic())
            self.sock.settimeout(timeout_s)
            self.sock.sendall(self.out)
        except Exception as exc:  # a client gone, or an answer that cannot be made
            logger.info("could not tell a connection that came while closing: %s", exc)
            return False
        return True

    @abc.abstractmethod
    def fault(self, exc: Exception) -> bool:
        """Serving it raised ``exc``: log it with whose it is and tell the client. True when
        it is closing by itself and should be serviced again, False to drop it now."""

    @abc.abstractmethod
    def dropped(self, info: CloseInfo, written: bool) -> None:
        """It is gone (socket closed): run its close callbacks, then let go of them, so that
        no reference cycle outlives it (thousands of those stall the garbage collector)."""


class WsEntry(Entry):
    """A WebSocket: its :class:`WsSession` does the protocol, this feeds it."""

    __slots__ = ("on_closed", "on_message", "session")

    def __init__(
        self,
        sock: socket.socket,
        session: WsSession,
        *,
        on_message: OnMessage,
        on_closed: Callable[[CloseInfo], None],
        initial: bytes = b"",
    ) -> None:
        super().__init__(sock, initial)
        self.session = session
        self.on_message = on_message
        self.on_closed = on_closed

    def readable(self, data: bytes, now: float) -> list[str | bytes] | CloseInfo | None:
        if not data:
            self.session.peer_gone()
            return None
        return self.session.receive(data, now)

    def deliver(self, message: str | bytes, inline: bool) -> None:
        self.on_message(message, inline)

    def service(self, now: float) -> float | None:
        session = self.session
        session.tick(now)
        if len(self.out) < PULL_BELOW:  # else let the session's bounded queue fill
            self.out += session.output(now)
        return session.deadline()

    @property
    def finished(self) -> bool:
        return self.session.state is WsState.CLOSED

    def end_info(self) -> CloseInfo:
        return self.session.close_info or super().end_info()

    def shutdown(self) -> None:
        self.session.close(GOING_AWAY, "server shutting down")

    def fault(self, exc: Exception) -> bool:
        logger.error("serving %s failed; closing it", self.session.label, exc_info=exc)
        if self.faulted:
            return False
        self.faulted = True
        self.session.close(INTERNAL_ERROR, "internal server error")
        return True

    def dropped(self, info: CloseInfo, written: bool) -> None:
        session = self.session
        try:
            session.peer_gone(info.reason)
            self.on_closed(session.close_info or info)
        finally:
            session.wake = _nothing
            self.on_message = _nothing
            self.on_closed = _nothing


class PollEntry(Entry):
    """An Ajax request waiting for its value (a long-poll's pushes, a POST's reply), answered
    with ``respond(value)`` once it has one, or ``timeout_value`` at ``deadline``."""

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
        *,
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

    def readable(self, data: bytes, now: float) -> list[str | bytes] | CloseInfo | None:
        if data:
            return None  # nothing more is read from a request that is being answered
        if not self.answer_after_fin and not self.poll.done:
            return CloseInfo(None, "client gone", False)
        self.read_closed = True  # an HTTP client may half-close and still read
        return None

    def service(self, now: float) -> float | None:
        poll = self.poll
        if not poll.done and now >= self.deadline:
            poll.offer(self.timeout_value)
        if poll.done and not self.responded:
            value = poll.value
            answer = b"" if value is CLIENT_GONE else self.respond(value)
            self.responded = True  # only once there is an answer: a failure answers 500
            self.out += answer
        # a held value comes with its release's wake-up; the deadline no longer matters
        return None if self.responded or poll.held else self.deadline

    @property
    def finished(self) -> bool:
        return self.responded

    def shutdown(self) -> None:
        self.poll.offer(CLOSED_BY_SERVER)

    def fault(self, exc: Exception) -> bool:
        logger.error("serving %s failed; answering 500", self.poll.label, exc_info=exc)
        if not self.responded:
            self.responded = True
            with contextlib.suppress(OSError):
                self.sock.send(SERVER_ERROR)
        return False

    def dropped(self, info: CloseInfo, written: bool) -> None:
        poll = self.poll
        try:
            poll.offer(CLIENT_GONE)
            self.on_done(poll.value, written and poll.value is not CLIENT_GONE)
        finally:
            poll.notify = _nothing
            self.respond = _nothing  # type: ignore[assignment]
            self.on_done = _nothing


def _nothing(*args: Any) -> None:
    return None
