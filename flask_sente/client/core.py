"""What the WebSocket and Ajax channel sockets share: options, state, events, callbacks.

Sente's ``ChWebSocket`` and ``ChAJAXSocket`` share a state atom, the receive channels and
the packer; :class:`Core` is that shared part. Every state change goes through
:meth:`Core.swap_state` under one lock, so ``chsk/state`` events reach ``ch_recv`` in the
order the changes happened, whichever thread made them.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from http.cookiejar import CookieJar
from typing import Any

from ..errors import ConfigError, UnpackError
from ..packers import Packer
from ..protocol import (
    HANDSHAKE,
    RECV,
    STATE,
    TIMEOUT,
    ServerMessage,
    classify_server_message,
    new_cb_uuid,
    pack,
)
from ..scheduler import Scheduler, TimerHandle
from .events import ChRecv
from .recovery import LAST_SEQ_PARAM, Received, unpack_numbered
from .runtime import Dispatcher, ThreadSet
from .state import ClientState, WatchFn, now_udt, state_event_maps

__all__ = ["DEFAULT_PING_TIMEOUT_MS", "Callback", "Core", "Options", "PendingCallbacks", "alias"]

log = logging.getLogger("flask_sente.client")


Callback = Callable[[Any], Any]


@dataclass(slots=True)
class _Pending:
    fn: Callback
    inline: bool
    timer: TimerHandle | None
    conn: object


class PendingCallbacks:
    """The table of unanswered callbacks, safe to use from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self.scheduler: Scheduler | None = None
        self.dispatcher: Dispatcher | None = None

    def add(
        self, fn: Callback, timeout_ms: int, *, inline: bool = False, conn: object = None
    ) -> str:
        """File ``fn`` and start its timeout; returns its cb-uuid."""
        with self._lock:
            cb_uuid = new_cb_uuid()
            while cb_uuid in self._pending:
                cb_uuid = new_cb_uuid()
            entry = _Pending(fn, inline, None, conn)
            self._pending[cb_uuid] = entry
            if self.scheduler is not None:
                entry.timer = self.scheduler.call_later(
                    timeout_ms / 1000.0, lambda: self._expire(cb_uuid)
                )
        return cb_uuid

    def resolve(self, cb_uuid: str, reply: Any) -> bool:
        """Answer one callback; False when it was already answered (or never existed)."""
        with self._lock:
            entry = self._pending.pop(cb_uuid, None)
        if entry is None:
            return False
        self._deliver(entry, reply)
        return True

    def _expire(self, cb_uuid: str) -> None:
        self.resolve(cb_uuid, TIMEOUT)

    def resolve_conn(self, conn: object, reply: Any) -> int:
        """Answer every callback whose reply was to come over ``conn``."""
        with self._lock:
            keys = [k for k, e in self._pending.items() if e.conn is conn]
            entries = [self._pending.pop(k) for k in keys]
        for entry in entries:
            self._deliver(entry, reply)
        return len(entries)

    def resolve_all(self, reply: Any) -> int:
        with self._lock:
            entries = list(self._pending.values())
            self._pending.clear()
        for entry in entries:
            self._deliver(entry, reply)
        return len(entries)

    def __contains__(self, cb_uuid: object) -> bool:
        return cb_uuid in self._pending

    def _deliver(self, entry: _Pending, reply: Any) -> None:
        if entry.timer is not None:
            entry.timer.cancel()
        if entry.inline or self.dispatcher is None:
            try:
                entry.fn(reply)
            except Exception:
                log.exception("callback %r raised", entry.fn)
        else:
            self.dispatcher.submit(entry.fn, reply)


#: Sente's default ``ws-ping-timeout-ms``.
DEFAULT_PING_TIMEOUT_MS = 5_000


def alias(name: str, value: Any, old_name: str, old_value: Any) -> Any:
    """An option that Sente also accepts under an older name: whichever was given."""
    if value is not None and old_value is not None and value != old_value:
        raise ConfigError(
            f"{old_name} is Sente's older name for {name}; give one of them, not both "
            f"({name}={value!r}, {old_name}={old_value!r})"
        )
    return old_value if value is None else value


@dataclass(frozen=True, slots=True)
class Options:
    """The client's options after validation (see :class:`~flask_sente.client.Client`)."""

    url: str
    type: str
    csrf_token: str | Callable[[], str | None] | None
    params: Mapping[str, Any]
    headers: Mapping[str, str]
    client_id: str
    ws_kalive_ms: int | None
    ws_ping_timeout_ms: int
    backoff_ms_fn: Callable[[int], int]
    wrap_recv_evs: bool
    ajax_timeout_ms: int
    write_legacy_pack_format: bool | None
    simulated_bad_conn_rate: float
    ws_constructor: Callable[..., Any] | None
    recover: bool = True
    ws_opts: Mapping[str, Any] = field(default_factory=dict)
    ajax_opts: Mapping[str, Any] = field(default_factory=dict)
    cookies: CookieJar | None = None


class Core:
    """Shared by the channel socket implementations of one client."""

    def __init__(self, opts: Options, packer: Packer, ch_recv: ChRecv) -> None:
        self.opts = opts
        self.packer = packer
        self.ch_recv = ch_recv
        self.lock = threading.RLock()
        self.state = ClientState(
            {
                "type": opts.type,
                "open?": False,
                "ever-opened?": False,
                "csrf-token": opts.csrf_token,
            }
        )
        self.callbacks = PendingCallbacks()
        self.received = Received() if opts.recover else None
        self.threads = ThreadSet()
        self.scheduler: Scheduler | None = None
        self.dispatcher: Dispatcher | None = None
        self.name = f"flask_sente.client-{opts.client_id[:8]}"

    # ------------------------------------------------------------------ runtime

    def start_runtime(self) -> None:
        self.scheduler = Scheduler(name=self.name + "-timers")
        self.dispatcher = Dispatcher(self.name + "-callbacks")
        self.dispatcher.start()
        self.callbacks.scheduler = self.scheduler
        self.callbacks.dispatcher = self.dispatcher

    def stop_runtime(self, timeout: float) -> None:
        scheduler, dispatcher = self.scheduler, self.dispatcher
        self.callbacks.scheduler = self.callbacks.dispatcher = None
        if dispatcher is not None:
            dispatcher.stop(timeout)
        if scheduler is not None:
            scheduler.close(timeout)
        self.scheduler = self.dispatcher = None

    def call_later(self, delay_ms: float, fn: Callable[[], None]) -> Any:
        scheduler = self.scheduler
        return None if scheduler is None else scheduler.call_later(delay_ms / 1000.0, fn)

    def deliver(self, cb: Callback, reply: Any, *, inline: bool) -> None:
        """Answer a callback that was never filed (e.g. ``chsk/closed`` at send time)."""
        dispatcher = self.dispatcher
        if inline or dispatcher is None:
            cb(reply)
        else:
            dispatcher.submit(cb, reply)

    # ------------------------------------------------------------------ wire

    def csrf_token(self) -> str | None:
        token = self.opts.csrf_token
        return token() if callable(token) else token

    def pack(self, value: Any, cb: Any) -> str | bytes:
        return pack(self.packer, value, cb, wrap=True, legacy=self.opts.write_legacy_pack_format)

    def read(self, package: str | bytes) -> tuple[ServerMessage, Any] | None:
        """Unpack and classify a server message, with the number of a numbered push batch
        (see :mod:`.recovery`); None (logged) when it cannot be read."""
        try:
            value, cb, seq = unpack_numbered(self.packer, package)
        except UnpackError as exc:
            log.warning("dropping a server message that cannot be unpacked: %s", exc)
            return None
        return classify_server_message(value, cb), seq

    def recovery_params(self) -> dict[str, str]:
        """``{"fs-last-seq": ...}`` for a WebSocket connect or an Ajax GET; empty when off."""
        with self.lock:
            received = self.received
            return {} if received is None else {LAST_SEQ_PARAM: received.param}

    def bad_conn(self) -> bool:
        """True when ``simulated_bad_conn_rate`` says to sabotage this activity."""
        rate = self.opts.simulated_bad_conn_rate
        return rate > 0 and random.random() < rate

    # ------------------------------------------------------------------ state and events

    def emit(self, event: list[Any]) -> None:
        self.ch_recv.put(event)

    def emit_push(self, events: Sequence[list[Any]], seq: Any = None) -> None:
        """Deliver a pushed batch, each event as sent (or as ``[chsk/recv ev]``), leaving
        out those a numbered batch (``seq``) repeats. The caller holds :attr:`lock`, so
        that batches from two connections cannot interleave."""
        if self.received is not None:
            events = self.received.accept(events, seq)
        for ev in events:
            if str(ev[0]).startswith("chsk/"):
                log.warning("ignoring a pushed event with a reserved chsk/ id: %r", ev)
                continue
            self.emit([RECV, ev] if self.opts.wrap_recv_evs else ev)

    def swap_state(self, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Change the state and emit ``[chsk/state [old new open-changed?]]`` if it changed."""
        with self.lock:
            changed = self.state._swap(fn)
            if changed is None:
                return
            old, new, watches = changed
            self.emit([STATE, list(state_event_maps(old, new))])
        for key, watch in watches:
            self.deliver(partial(_call_watch, watch, key, self.state, old, new), None, inline=False)

    def set_state(self, **changes: Any) -> None:
        self.swap_state(lambda s: {**s, **{k.replace("_", "-"): v for k, v in changes.items()}})

    def opened(self) -> None:
        """A successful Ajax poll or POST: the channel looks open again."""
        self.swap_state(lambda s: {**s, "open?": True})

    def handshake(self, kind: str, msg: ServerMessage) -> None:
        """Apply a handshake: state open, then ``[chsk/handshake [uid nil data first?]]``."""
        uid, data = msg.handshake
        with self.lock:
            first = not self.state.get("ever-opened?")

            def apply(s: dict[str, Any]) -> dict[str, Any]:
                s.pop("udt-next-reconnect", None)
                s.update({"type": kind, "open?": True, "ever-opened?": True})
                s.update({"uid": uid, "handshake-data": data, "first-open?": first})
                return s

            self.swap_state(apply)
            self.emit([HANDSHAKE, [uid, None, data, first]])

    def closed(self, reason: str, *, force: bool = False, **changes: Any) -> None:
        """Mark the channel closed; ``last-close`` is set only if it was open (or ``force``)."""

        def apply(s: dict[str, Any]) -> dict[str, Any]:
            was_open = s.get("open?")
            s["open?"] = False
            s.pop("first-open?", None)
            s.pop("udt-next-reconnect", None)
            if was_open or force:
                s["last-close"] = {"udt": now_udt(), "reason": reason}
            s.update({k.replace("_", "-"): v for k, v in changes.items()})
            return s

        self.swap_state(apply)

    def next_reconnect_in(self, delay_ms: int) -> None:
        self.set_state(udt_next_reconnect=now_udt() + delay_ms)


def _call_watch(
    watch: WatchFn, key: Any, state: ClientState, old: dict[str, Any], new: dict[str, Any], _: Any
) -> None:
    watch(key, state, old, new)
