"""Sente's WebSocket channel socket (``ChWebSocket``, spec section 5), pure.

A connection opens with the handshake; a server ``chsk/ws-ping`` is answered
``chsk/ws-pong``, ``[reply cb-uuid]`` answers a callback, anything else is a pushed batch.
Every ``ws_kalive_ms / 2`` with nothing sent or received since the last look, the client
sends its own ``chsk/ws-ping``; no ``"pong"`` within ``ws_ping_timeout_ms`` and the
connection is replaced (``ws-ping-timeout``). After a loss it reconnects, the first time at
once and then with backoff, until ``disconnect()``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..protocol import CLOSED, ERROR, PONG, WS_PING, WS_PONG, MessageKind
from .backoff import RetrySchedule
from .context import ChannelContext, InternalCallback, Moment, Phase
from .transport import CloseWebSocket, CutWebSocket, OpenWebSocket, SendFrame, WsClose
from .wire import ws_url

__all__ = ["WsChannel"]

log = logging.getLogger("flask_sente.client.protocol")


class WsChannel:
    """One client's WebSocket channel socket, across its connections (``link`` is the
    current one)."""

    kind = "ws"

    def __init__(
        self,
        ctx: ChannelContext,
        *,
        kalive_ms: int | None,
        ping_timeout_ms: int,
        backoff_ms_fn: Callable[[int], int],
        reconnect: bool,
        may_downgrade: bool,
    ) -> None:
        self._ctx = ctx
        self._kalive_s = kalive_ms / 2000 if kalive_ms else None
        self.ping_timeout_ms = ping_timeout_ms
        self._retries = RetrySchedule(backoff_ms_fn)
        self._reconnect = reconnect
        self._may_downgrade = may_downgrade
        self.phase = Phase.CLOSED
        self.link: int | None = None
        self.ever_upgraded = False
        self.retry_at: float | None = None
        self._kalive_at: float | None = None
        self._comms = False  # a message went either way since the keepalive last looked

    @property
    def deadline(self) -> float | None:
        times = [t for t in (self.retry_at, self._kalive_at) if t is not None]
        return min(times, default=None)

    # ------------------------------------------------------------------ commands

    def open(self, now: Moment) -> None:
        """Open a connection (``connect()``); counting attempts afresh."""
        self.ever_upgraded = False
        self._retries.reset()
        self._connect(now)

    def stop(self, reason: str, now: Moment, *, linger: bool = False) -> None:
        """Close with 1000 ``CLOSE_NORMAL``; its callbacks get ``chsk/closed``."""
        ctx, link = self._ctx, self.link
        self.phase = Phase.CLOSED
        self.link = self.retry_at = self._kalive_at = None
        ctx.closed(now, reason)
        if link is not None:
            ctx.do(CloseWebSocket(link, 1000, "CLOSE_NORMAL", linger=linger))
            ctx.answer_link(link, CLOSED, now)

    def reconnect(self, reason: str, now: Moment) -> None:
        self.stop(reason, now)
        self._retries.reset()
        self._connect(now)

    def break_connection(self, close_ws: bool) -> None:
        if self.link is None:
            return
        if close_ws:
            self._ctx.do(CloseWebSocket(self.link, 3000, "CLOSE_ABNORMAL"))
        else:
            self._ctx.do(CutWebSocket(self.link, silently=True))

    def marker(self, cb_uuid: str | None) -> str | None:
        """What goes in the wrapper's callback slot: the cb-uuid."""
        return cb_uuid

    def send(
        self,
        package: str | bytes,
        cb_uuid: str | None,
        callback: object,
        timeout_ms: int | None,
        now: Moment,
    ) -> bool:
        link = self.link
        if link is None or not self._ctx.state.get("open?"):
            if callback is not None:
                self._ctx.answer_handle(callback, CLOSED, now)
            return False
        if cb_uuid is not None:
            self._ctx.callbacks.add(
                cb_uuid, callback, now.monotonic + (timeout_ms or 0) / 1000, link
            )
        return self._write(link, package, cb_uuid, now)

    def tick(self, now: Moment) -> None:
        if self.retry_at is not None and now.monotonic >= self.retry_at:
            self.retry_at = None
            self._connect(now)
        if self._kalive_at is not None and now.monotonic >= self._kalive_at:
            self._keepalive(now)

    # ------------------------------------------------------------------ reports

    def opened(self, link: int) -> None:
        if link == self.link:
            self.ever_upgraded = True

    def failed(self, link: int, error: BaseException, now: Moment, *, refused: bool) -> bool:
        """The connection never opened. True when it was refused before any ever did and the
        client may fall back to Ajax: then it is up to the caller, and nothing retries."""
        if link != self.link:
            return False
        self.link = None
        log.info("WebSocket connect to %s failed: %s", self._ctx.url, error)
        self._ctx.changed(self._ctx.state.update(last_ws_error=_error(error, now)))
        if self._may_downgrade and refused and not self.ever_upgraded:
            self.phase = Phase.CLOSED
            return True
        self._lost(now)
        return False

    def received(self, link: int, data: str | bytes, now: Moment) -> None:
        ctx = self._ctx
        if link != self.link:
            return
        self._comms = True
        if ctx.bad_conn():
            log.debug("simulated bad connection: dropping the WebSocket on a receive")
            ctx.do(CutWebSocket(link, silently=False))
            return
        read = ctx.read(data)
        if read is None:
            return
        msg, seq = read
        if msg.kind is MessageKind.HANDSHAKE:
            self.phase = Phase.OPEN
            self._retries.reset()
            ctx.handshake("ws", msg)
            if self._kalive_s is not None:
                self._kalive_at = now.monotonic + self._kalive_s
                self._comms = False
        elif msg.kind is MessageKind.PING:
            self._write(link, ctx.pack([WS_PONG], None), None, now)
            ctx.emit([WS_PING])
        elif msg.kind is MessageKind.REPLY:
            pending = ctx.callbacks.pop(msg.cb)
            if pending is None:
                log.debug("reply for an unknown or expired callback %r", msg.cb)
            else:
                ctx.answer(pending, msg.value, now)
        elif msg.kind is MessageKind.PUSH:
            ctx.push(msg, seq)
        else:
            log.warning("unexpected WebSocket message %r", msg.value)

    def closed(self, link: int, close: WsClose, error: BaseException | None, now: Moment) -> None:
        if link != self.link:
            return
        self.link = self._kalive_at = None
        changes: dict[str, Any] = {
            "last_ws_close": {
                "udt": now.udt,
                "ev": close,
                "code": close.code,
                "reason": close.reason,
                "clean?": close.clean,
            }
        }
        if error is not None and not close.clean:
            changes["last_ws_error"] = _error(error, now)
        self._ctx.closed(now, "clean" if close.clean else "unexpected", **changes)
        self._lost(now)
        self._ctx.answer_link(link, CLOSED, now)

    def send_failed(self, link: int, cb_uuid: str | None, now: Moment) -> None:
        """A write failed: its callback gets ``chsk/error``, the connection is replaced."""
        pending = self._ctx.callbacks.pop(cb_uuid)
        if pending is not None:
            self._ctx.answer(pending, ERROR, now)
        if link == self.link:
            self.reconnect("ws-error", now)

    # ------------------------------------------------------------------ inside

    def _connect(self, now: Moment) -> None:
        ctx = self._ctx
        self.phase = Phase.CONNECTING
        self.link = ctx.new_link()
        params = {
            **ctx.params,
            "client-id": ctx.client_id,
            "csrf-token": ctx.token(),
            **ctx.recovery(),
        }
        ctx.do(OpenWebSocket(self.link, ws_url(ctx.url, params), dict(ctx.headers)))

    def _lost(self, now: Moment) -> None:
        """Try again: at once the first time, then after ``backoff_ms_fn(n)``."""
        if not self._reconnect:
            self.stop("unexpected", now)
            return
        delay_ms = self._retries.next_delay_ms()
        if delay_ms is None:
            self._connect(now)
            return
        self.phase = Phase.RETRY_WAIT
        self.retry_at = now.monotonic + delay_ms / 1000
        self._ctx.changed(self._ctx.state.update(udt_next_reconnect=now.udt + delay_ms))

    def _write(self, link: int, package: str | bytes, cb_uuid: str | None, now: Moment) -> bool:
        if self._ctx.bad_conn():
            self._ctx.do(CloseWebSocket(link, 3000, "SIMULATED_BAD_CONN"))
            self.send_failed(link, cb_uuid, now)
            return False
        self._comms = True
        self._ctx.do(SendFrame(link, package, cb_uuid))
        return True

    def _keepalive(self, now: Moment) -> None:
        """Ping when nothing went either way since the last look."""
        link = self.link
        if self._kalive_s is None or link is None:
            self._kalive_at = None
            return
        self._kalive_at = now.monotonic + self._kalive_s
        idle, self._comms = not self._comms, False
        if not idle:
            return
        log.debug("WebSocket idle; sending chsk/ws-ping")
        ctx = self._ctx
        cb_uuid = ctx.callbacks.new_uuid()
        ping = InternalCallback(lambda reply, when: self._pinged(link, reply, when))
        self.send(ctx.pack([WS_PING], cb_uuid), cb_uuid, ping, self.ping_timeout_ms, now)

    def _pinged(self, link: int, reply: Any, now: Moment) -> None:
        if reply != PONG and link == self.link:
            log.info("no pong within %d ms; reconnecting", self.ping_timeout_ms)
            self.reconnect("ws-ping-timeout", now)


def _error(error: BaseException, now: Moment) -> dict[str, Any]:
    """A ``last-ws-error`` value."""
    return {"udt": now.udt, "ev": repr(error), "ex": error}
