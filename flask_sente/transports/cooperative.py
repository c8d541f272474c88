"""Drive one WebSocket on its own greenlet, under gevent.

The connection's greenlet reads: it waits in ``recv`` (cooperatively), feeds the session and
hands each message over on the spot, so a quick handler runs right there. Whoever has
something to write (that greenlet, a handler's, the timer that flushes pushes) writes it at
once, without waiting: greenlets never run at the same time and the write never blocks, so
no lock, no wake-up socket and no switch to another greenlet is needed. Only a client that
does not read fast enough leaves bytes behind; a short-lived greenlet writes those as the
socket drains. Keepalive pings and the close handshake's deadline run on the scheduler.

Plain sockets only: a TLS socket is served by :mod:`.threaded` (its bytes cannot be written
behind its back).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import gevent
from gevent.socket import wait_write

from .entries import MAX_WRITE_BUFFER, PULL_BELOW, OnMessage
from .threaded import WRITE_TIMEOUT_S, end, fail
from .websocket import WsSession, WsState

logger = logging.getLogger("flask_sente.transports.cooperative")

_RECV_BYTES = 65536
#: ``call_later(delay_s, fn)``: the server's scheduler.
CallLater = Callable[[float, Callable[[], None]], Any]


class _Connection:
    """One session's socket: writes from any greenlet, keepalive from the scheduler."""

    def __init__(self, session: WsSession, sock: socket.socket, call_later: CallLater) -> None:
        self.session = session
        self.sock = sock
        self._fd = sock.fileno()
        self._call_later = call_later
        self._backlog = bytearray()
        self._draining = False
        self._timer: Any = None
        self._timer_at: float | None = None
        self.broken = False

    def flush(self) -> None:
        """Write what the session has to say, as far as the socket takes it now."""
        if self.broken:
            return
        now = time.monotonic()
        if len(self._backlog) < PULL_BELOW:
            self._backlog += self.session.output(now)
        if self._backlog and not self._draining:
            self._write()
        if self._timer is None or self.session.state is not WsState.OPEN:
            self._arm(now)  # a timer armed for a keepalive re-arms itself when it fires

    def _write(self) -> None:
        try:
            sent = os.write(self._fd, self._backlog)
            del self._backlog[:sent]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            self._break(f"socket error: {exc}")
            return
        if not self._backlog:
            return
        if len(self._backlog) > MAX_WRITE_BUFFER:
            logger.warning(
                "dropping a slow client: over %d bytes waiting to be sent", MAX_WRITE_BUFFER
            )
            self._break("slow consumer")
            return
        self._draining = True
        gevent.spawn(self._drain)

    def _drain(self) -> None:
        """Write the backlog as the socket drains, then whatever the session queued since."""
        try:
            while not self.broken:
                wait_write(self._fd, WRITE_TIMEOUT_S)
                sent = os.write(self._fd, self._backlog)
                del self._backlog[:sent]
                if len(self._backlog) < PULL_BELOW:
                    self._backlog += self.session.output(time.monotonic())
                if not self._backlog:
                    return
        except (OSError, gevent.Timeout) as exc:
            self._break(f"socket error: {exc}")
        finally:
            self._draining = False

    def _break(self, reason: str) -> None:
        """The socket is unusable: end the session and wake the reading greenlet."""
        self.broken = True
        self.session.peer_gone(reason)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def _arm(self, now: float) -> None:
        """Make sure the scheduler looks at the session by its next deadline."""
        deadline = self.session.deadline()
        if deadline is None or (self._timer_at is not None and self._timer_at <= deadline):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self._call_later(max(0.0, deadline - now), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        if self.broken:
            return
        self.session.tick(time.monotonic())
        self.flush()
        if self.session.state is WsState.CLOSED:
            self._break(self.session.close_info.reason if self.session.close_info else "closed")

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.broken = True


def serve_on_greenlet(
    session: WsSession, sock: socket.socket, on_message: OnMessage, call_later: CallLater
) -> None:
    """Run ``session`` over ``sock`` until it closes; the socket is shut down at the end."""
    conn = _Connection(session, sock, call_later)
    session.wake = conn.flush
    try:
        conn.flush()  # the handshake message and anything queued before
        while session.state is not WsState.CLOSED:
            data = sock.recv(_RECV_BYTES)
            if not data:
                session.peer_gone()
                break
            for message in session.receive(data, time.monotonic()):
                on_message(message, True)
            conn.flush()
    except OSError as exc:
        session.peer_gone(f"socket error: {exc}")
    except Exception as exc:
        conn.stop()
        sock.settimeout(WRITE_TIMEOUT_S)
        fail(session, sock, exc)
    finally:
        conn.stop()
        session.wake = _nothing
        end(sock)


def _nothing() -> None:
    return None
