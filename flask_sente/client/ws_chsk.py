"""The WebSocket channel socket (Sente's ``ChWebSocket``), spec section 5.

It owns the current :class:`~.ws.WsConnection` and decides what its events mean: the
handshake opens the channel, a server ``chsk/ws-ping`` is answered with ``chsk/ws-pong``,
``[reply cb-uuid]`` answers a callback, anything else is a pushed batch. After every close
it reconnects, the first time at once and then with backoff, until ``disconnect()``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..protocol import CLOSED, ERROR, PONG, WS_PING, WS_PONG, MessageKind
from .cookies import cookie_header
from .core import Callback, Core
from .state import now_udt
from .wire import ws_url
from .ws import WsClose, WsConnection, is_refusal

__all__ = ["WsChsk"]

log = logging.getLogger("flask_sente.client.ws")


class WsChsk:
    """Connect, keep alive, reconnect; ``on_refused`` (auto mode) takes over on refusal."""

    kind = "ws"

    def __init__(self, core: Core, *, on_refused: Callable[[BaseException], None] | None) -> None:
        self._core = core
        self._on_refused = on_refused
        self._conn: WsConnection | None = None
        self._active = False
        self._retry_count = 0
        self._ever_upgraded = False
        self._timer: Any = None
        self._kalive_timer: Any = None
        self._last_kalive_check = 0.0

    # ------------------------------------------------------------------ lifecycle

    def connect(self) -> None:
        with self._core.lock:
            self._active = True
            self._retry_count = 0
            self._open_conn()

    def disconnect(self, reason: str, *, wait: float = 0.0) -> None:
        """Close with 1000 ``CLOSE_NORMAL``; no reconnect follows."""
        with self._core.lock:
            self._active = False
            conn = self._conn
            self._conn = None
            self._cancel_timers()
            self._core.closed(reason)
        if conn is not None:
            self._core.callbacks.resolve_conn(conn, CLOSED)
            conn.close(1000, "CLOSE_NORMAL", wait=wait)

    def reconnect(self, reason: str) -> None:
        with self._core.lock:
            self.disconnect(reason)
            self.connect()

    def break_connection(self, *, close_ws: bool = True) -> None:
        with self._core.lock:
            conn = self._conn
        if conn is None:
            return
        if close_ws:
            conn.close(3000, "CLOSE_ABNORMAL")
        else:
            conn.detach()

    def _open_conn(self) -> None:
        core = self._core
        params = {
            **core.opts.params,
            "client-id": core.opts.client_id,
            "csrf-token": core.csrf_token(),
            **core.recovery_params(),
        }
        url = ws_url(core.opts.url, params)
        opts = dict(core.opts.ws_opts)
        cookies = cookie_header(core.opts.cookies, url)  # read at each connect: it may change
        if cookies:
            opts["cookie"] = "; ".join(filter(None, [opts.get("cookie"), cookies]))
        conn = WsConnection(
            url,
            listener=self,
            threads=core.threads,
            constructor=core.opts.ws_constructor,
            headers=core.opts.headers,
            opts=opts,
            name=core.name + "-ws",
        )
        self._conn = conn
        conn.start()

    def _cancel_timers(self) -> None:
        for timer in (self._timer, self._kalive_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._kalive_timer = None

    def _retry(self) -> None:
        """Reconnect after a close: attempt 1 at once, then ``backoff_ms_fn(n)`` later."""
        self._retry_count += 1
        n = self._retry_count
        if n == 1:
            self._open_conn()
            return
        delay_ms = int(self._core.opts.backoff_ms_fn(n))
        self._core.next_reconnect_in(delay_ms)
        self._timer = self._core.call_later(delay_ms, self._retry_due)

    def _retry_due(self) -> None:
        with self._core.lock:
            if self._active and self._conn is None:
                self._open_conn()

    # ------------------------------------------------------------------ sending

    def send(
        self, event: list[Any], timeout_ms: int | None, cb: Callback | None, inline: bool
    ) -> bool:
        core = self._core
        with core.lock:
            conn = self._conn
            is_open = bool(core.state.get("open?"))
        if conn is None or not is_open:
            if cb is not None:
                core.deliver(cb, CLOSED, inline=inline)
            return False
        cb_uuid = None
        if cb is not None:
            cb_uuid = core.callbacks.add(cb, timeout_ms or 0, inline=inline, conn=conn)
        package = core.pack(event, cb_uuid)
        try:
            if core.bad_conn():
                conn.close(3000, "SIMULATED_BAD_CONN")
            conn.send(package)
        except Exception as exc:
            log.debug("send failed: %s", exc)
            if cb_uuid is not None:
                core.callbacks.resolve(cb_uuid, ERROR)
            self._ws_error(conn)
            return False
        return True

    def _ws_error(self, conn: WsConnection) -> None:
        with self._core.lock:
            if conn is self._conn and self._active:
                self.reconnect("ws-error")

    # ------------------------------------------------------------------ keepalive

    def _start_kalive(self, conn: WsConnection) -> None:
        kalive_ms = self._core.opts.ws_kalive_ms
        if not kalive_ms:
            return
        self._last_kalive_check = time.monotonic()
        if self._kalive_timer is not None:
            self._kalive_timer.cancel()
        self._kalive_timer = self._core.call_later(kalive_ms / 2, lambda: self._kalive_tick(conn))

    def _kalive_tick(self, conn: WsConnection) -> None:
        """Every ``ws_kalive_ms / 2``: ping if nothing was sent or received since the last tick."""
        core = self._core
        with core.lock:
            if conn is not self._conn or not self._active:
                return
            idle = conn.last_comms <= self._last_kalive_check
            self._start_kalive(conn)
        if idle:
            log.debug("WebSocket idle; sending chsk/ws-ping")
            self.send(
                [WS_PING],
                core.opts.ws_ping_timeout_ms,
                lambda reply: self._ping_reply(conn, reply),
                True,
            )

    def _ping_reply(self, conn: WsConnection, reply: Any) -> None:
        if reply == PONG:
            return
        with self._core.lock:
            if conn is self._conn and self._active:
                log.info("no pong within %d ms; reconnecting", self._core.opts.ws_ping_timeout_ms)
                self.reconnect("ws-ping-timeout")

    # ------------------------------------------------------------------ WsListener

    def ws_opened(self, conn: WsConnection) -> None:
        with self._core.lock:
            if conn is self._conn:
                self._ever_upgraded = True

    def ws_failed(self, conn: WsConnection, exc: BaseException) -> None:
        core = self._core
        with core.lock:
            if conn is not self._conn or not self._active:
                return
            log.info("WebSocket connect to %s failed: %s", conn.url.split("?")[0], exc)
            core.set_state(last_ws_error={"udt": now_udt(), "ev": repr(exc), "ex": exc})
            self._conn = None
            if self._on_refused is not None and not self._ever_upgraded and is_refusal(exc):
                self._active = False
                self._cancel_timers()
                self._on_refused(exc)
                return
            self._retry()

    def ws_message(self, conn: WsConnection, data: str | bytes) -> None:
        core = self._core
        with core.lock:
            if conn is not self._conn:
                return
        if core.bad_conn():
            log.debug("simulated bad connection: dropping the WebSocket on a receive")
            conn.drop()
            return
        read = core.read(data)
        if read is None:
            return
        msg, seq = read
        if msg.kind is MessageKind.HANDSHAKE:
            with core.lock:
                if conn is not self._conn:
                    return
                self._retry_count = 0
                core.handshake("ws", msg)
                self._start_kalive(conn)
        elif msg.kind is MessageKind.PING:
            try:
                conn.send(core.pack([WS_PONG], None))
            except Exception as exc:
                log.debug("could not answer a server ping: %s", exc)
            core.emit([WS_PING])
        elif msg.kind is MessageKind.REPLY:
            if not core.callbacks.resolve(msg.cb, msg.value):
                log.debug("reply for an unknown or expired callback %r", msg.cb)
        elif msg.kind is MessageKind.PUSH:
            with core.lock:
                if conn is self._conn:
                    core.emit_push(msg.events, seq)
        else:
            log.warning("unexpected WebSocket message %r", msg.value)

    def ws_closed(self, conn: WsConnection, close: WsClose, exc: BaseException | None) -> None:
        core = self._core
        with core.lock:
            if conn is not self._conn:
                return
            self._conn = None
            if self._kalive_timer is not None:
                self._kalive_timer.cancel()
                self._kalive_timer = None
            changes: dict[str, Any] = {
                "last_ws_close": {
                    "udt": now_udt(),
                    "ev": close,
                    "code": close.code,
                    "reason": close.reason,
                    "clean?": close.clean,
                }
            }
            if exc is not None and not close.clean:
                changes["last_ws_error"] = {"udt": now_udt(), "ev": repr(exc), "ex": exc}
            core.closed("clean" if close.clean else "unexpected", **changes)
            if self._active:
                self._retry()
        core.callbacks.resolve_conn(conn, CLOSED)
