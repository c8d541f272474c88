"""The Ajax channel socket (Sente's ``ChAJAXSocket``), spec sections 1.2, 1.3 and 5.2.

The poll loop asks for a handshake while the channel is not open, then long-polls; each
body is a handshake, ``chsk/timeout`` (poll again) or a pushed batch. Sends are POSTs on
worker threads whose response body is the reply: ``[reply nil]``, ``[chsk/dummy-cb-200
nil]`` when no reply was asked for, or ``[chsk/timeout nil]`` from the server.
"""

from __future__ import annotations

import logging
from typing import Any

import requests

from ..protocol import AJAX_CB, CLOSED, ERROR, TIMEOUT, MessageKind, unpack
from .ajax import AjaxChannel
from .core import Callback, Core

__all__ = ["AjaxChsk"]

log = logging.getLogger("flask_sente.client.ajax")


class AjaxChsk:
    kind = "ajax"

    def __init__(self, core: Core) -> None:
        self._core = core
        self._chan: AjaxChannel | None = None
        self._retired: list[AjaxChannel] = []

    # ------------------------------------------------------------------ lifecycle

    def connect(self) -> None:
        core = self._core
        opts = dict(core.opts.ajax_opts)
        timeout_ms = int(opts.pop("timeout_ms", core.opts.ajax_timeout_ms))
        with core.lock:
            chan = AjaxChannel(
                core.opts.url,
                client_id=core.opts.client_id,
                listener=self,
                threads=core.threads,
                backoff_ms_fn=core.opts.backoff_ms_fn,
                csrf_token=core.csrf_token,
                params=core.opts.params,
                headers=core.opts.headers,
                timeout_ms=timeout_ms,
                binary=core.packer.binary,
                request_opts=opts,
                cookies=core.opts.cookies,
                sabotage=core.bad_conn,
                poll_params=core.recovery_params,
                name=core.name + "-ajax",
            )
            self._chan = chan
            chan.start()

    def disconnect(self, reason: str, *, wait: float = 0.0) -> None:
        """Stop polling and abort every request in flight; no retry follows."""
        with self._core.lock:
            chan = self._chan
            self._chan = None
            self._core.closed(reason)
        if chan is not None:
            chan.stop()
            self._retired.append(chan)
            self._core.callbacks.resolve_conn(chan, CLOSED)

    def reconnect(self, reason: str) -> None:
        with self._core.lock:
            self.disconnect(reason)
            self.connect()

    def break_connection(self, *, close_ws: bool = True) -> None:
        chan = self._chan
        if chan is not None:
            chan.break_poll()

    def close_sessions(self) -> None:
        for chan in self._retired:
            chan.close_sessions()
        self._retired.clear()

    # ------------------------------------------------------------------ sending

    def send(
        self, event: list[Any], timeout_ms: int | None, cb: Callback | None, inline: bool
    ) -> bool:
        core = self._core
        with core.lock:
            chan = self._chan
            is_open = bool(core.state.get("open?"))
        if chan is None or not is_open:
            if cb is not None:
                core.deliver(cb, CLOSED, inline=inline)
            return False
        package = core.pack(event, AJAX_CB if cb is not None else None)
        cb_uuid = None
        if cb is not None:
            cb_uuid = core.callbacks.add(cb, timeout_ms or 0, inline=inline, conn=chan)
        timeout_s = None if timeout_ms is None else timeout_ms / 1000.0
        core.threads.spawn(
            core.name + "-ajax-post", lambda: self._post(chan, package, cb_uuid, timeout_s)
        )
        return True

    def _post(
        self, chan: AjaxChannel, package: str | bytes, cb_uuid: str | None, timeout_s: float | None
    ) -> None:
        core = self._core
        try:
            body = chan.post(package, timeout_s)
        except requests.Timeout:
            if cb_uuid is not None:
                core.callbacks.resolve(cb_uuid, TIMEOUT)
            return
        except Exception as exc:
            if chan.stopped:
                if cb_uuid is not None:
                    core.callbacks.resolve(cb_uuid, CLOSED)
                return
            log.info("Ajax send failed: %s", exc)
            if cb_uuid is not None:
                core.callbacks.resolve(cb_uuid, ERROR)
            with core.lock:
                if chan is self._chan:
                    core.closed("unexpected")
            return
        try:
            reply, _ = unpack(core.packer, body)
        except Exception as exc:
            log.warning("cannot read the reply to an Ajax send: %s", exc)
            reply = ERROR
        if cb_uuid is not None:
            core.callbacks.resolve(cb_uuid, reply)
        with core.lock:
            if chan is self._chan and reply != ERROR:
                core.opened()

    # ------------------------------------------------------------------ AjaxListener

    def ajax_handshake_wanted(self) -> bool:
        return not self._core.state.get("open?")

    def ajax_received(self, chan: AjaxChannel, package: str | bytes) -> None:
        core = self._core
        read = core.read(package)
        with core.lock:
            if chan is not self._chan or read is None:
                return
            msg, seq = read
            if msg.kind is MessageKind.HANDSHAKE:
                core.handshake("ajax", msg)
            elif msg.kind is MessageKind.TIMEOUT:
                core.opened()
            elif msg.kind is MessageKind.PUSH:
                core.opened()
                core.emit_push(msg.events, seq)
            else:
                log.warning("unexpected long-poll response %r", msg.value)

    def ajax_poll_failed(self, chan: AjaxChannel, exc: BaseException, delay_ms: int) -> None:
        core = self._core
        with core.lock:
            if chan is not self._chan:
                return
            core.closed("unexpected")
            if delay_ms > 0:
                core.next_reconnect_in(delay_ms)
