"""What the client protocol's two channel sockets share, and what the protocol puts out: pure.

Sente's ``ChWebSocket`` and ``ChAJAXSocket`` share the state atom, the receive channel and the
packer; here :class:`ChannelContext` is that shared part of :class:`~.protocol.ClientProtocol`:
the options, Sente's state map, the callbacks waiting for a reply, push recovery, reading
server messages, and the list of :data:`Output` the protocol's caller carries out. It holds
no reference to either channel socket.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..errors import UnpackError
from ..packers import Packer
from ..protocol import HANDSHAKE, RECV, STATE, ServerMessage, classify_server_message, pack
from .callbacks import Pending, PendingCallbacks
from .recovery import LAST_SEQ_PARAM, Received, unpack_numbered
from .state_map import Change, StateMap, state_event_maps
from .transport import Command

__all__ = [
    "Answer",
    "ChannelContext",
    "Emit",
    "InternalCallback",
    "Moment",
    "Output",
    "Phase",
    "StateChanged",
]

log = logging.getLogger("flask_sente.client.protocol")


class Phase(Enum):
    """Where a channel socket is in its life."""

    CLOSED = "closed"  # before connect(), after disconnect(), or lost with reconnect=False
    CONNECTING = "connecting"  # a WebSocket or a handshake poll is out; no handshake yet
    OPEN = "open"  # the handshake came (WebSocket), the channel answers (Ajax)
    RETRY_WAIT = "retry-wait"  # lost; the next attempt waits for its time


@dataclass(frozen=True, slots=True)
class Moment:
    """When an input happened, as its caller read the clocks: ``monotonic`` seconds time
    the deadlines, ``udt`` (epoch milliseconds) stamps what Sente stamps."""

    monotonic: float
    udt: int


@dataclass(frozen=True, slots=True)
class Emit:
    """Put ``event`` on ``ch_recv``."""

    event: list[Any]


@dataclass(frozen=True, slots=True)
class Answer:
    """Call the callback ``handle`` (as given to ``send``) with ``reply``."""

    handle: object
    reply: Any


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The state map changed from ``old`` to ``new``; the ``chsk/state`` event follows."""

    old: dict[str, Any]
    new: dict[str, Any]


#: What the protocol asks of its caller: a transport command, or something for the user.
Output = Emit | Answer | StateChanged | Command


@dataclass(frozen=True, slots=True)
class InternalCallback:
    """A callback of the protocol's own (the keepalive's ping): answered inside, never put out."""

    on_reply: Callable[[Any, Moment], None]


class ChannelContext:
    """The options, state and outputs both channel sockets of one client work with."""

    def __init__(
        self,
        url: str,
        *,
        packer: Packer,
        client_id: str,
        type: str,
        csrf_token: str | Callable[[], str | None] | None,
        params: Mapping[str, Any],
        headers: Mapping[str, str],
        wrap_recv_evs: bool,
        write_legacy_pack_format: bool | None,
        recover: bool,
        simulated_bad_conn_rate: float,
        random_fn: Callable[[], float],
        new_cb_uuid: Callable[[], str],
    ) -> None:
        self.url = url
        self.packer = packer
        self.client_id = client_id
        self.params = dict(params)
        self.headers = dict(headers)
        self._csrf_token = csrf_token
        self._wrap_recv_evs = wrap_recv_evs
        self._legacy = write_legacy_pack_format
        self._bad_conn_rate = simulated_bad_conn_rate
        self._random = random_fn
        self.state = StateMap(type, csrf_token)
        self.callbacks = PendingCallbacks(new_cb_uuid)
        self.received = Received() if recover else None
        self.outputs: list[Output] = []
        self._links = 0

    # ------------------------------------------------------------------ putting out

    def new_link(self) -> int:
        """A number for a new connection or request."""
        self._links += 1
        return self._links

    def do(self, command: Command) -> None:
        self.outputs.append(command)

    def emit(self, event: list[Any]) -> None:
        self.outputs.append(Emit(event))

    def changed(self, change: Change | None) -> None:
        """Put out a change of the state map, and its ``chsk/state`` event."""
        if change is not None:
            old, new = change
            self.outputs.append(StateChanged(old, new))
            self.emit([STATE, list(state_event_maps(old, new))])

    def closed(self, now: Moment, reason: str, *, force: bool = False, **changes: Any) -> None:
        self.changed(self.state.closed(now.udt, reason, force=force, **changes))

    def answer(self, pending: Pending, reply: Any, now: Moment) -> None:
        self.answer_handle(pending.handle, reply, now)

    def answer_handle(self, handle: object, reply: Any, now: Moment) -> None:
        """Answer a callback, filed or not (``chsk/closed`` at once, when not open)."""
        if isinstance(handle, InternalCallback):
            handle.on_reply(reply, now)
        else:
            self.outputs.append(Answer(handle, reply))

    def answer_link(self, link: int, reply: Any, now: Moment) -> None:
        """Answer every callback whose reply was to come over ``link``."""
        for pending in self.callbacks.pop_link(link):
            self.answer(pending, reply, now)

    # ------------------------------------------------------------------ the wire

    def token(self) -> str | None:
        token = self._csrf_token
        return token() if callable(token) else token

    def recovery(self) -> dict[str, str]:
        """``{"fs-last-seq": ...}`` for a WebSocket connect or a long-poll; empty when off."""
        return {} if self.received is None else {LAST_SEQ_PARAM: self.received.param}

    def bad_conn(self) -> bool:
        """True when ``simulated_bad_conn_rate`` says to sabotage this activity."""
        return self._bad_conn_rate > 0 and self._random() < self._bad_conn_rate

    def pack(self, value: Any, cb: Any) -> str | bytes:
        return pack(self.packer, value, cb, wrap=True, legacy=self._legacy)

    def read(self, package: str | bytes) -> tuple[ServerMessage, Any] | None:
        """A server message, classified, with the number of a numbered push batch (see
        :mod:`.recovery`); None (logged) when it cannot be read."""
        try:
            value, cb, seq = unpack_numbered(self.packer, package)
        except UnpackError as exc:
            log.warning("dropping a server message that cannot be unpacked: %s", exc)
            return None
        return classify_server_message(value, cb), seq

    def handshake(self, kind: str, msg: ServerMessage) -> None:
        """Open: the state, then ``[chsk/handshake [uid nil data first?]]``."""
        uid, data = msg.handshake
        change, first = self.state.handshake(kind, uid, data)
        self.changed(change)
        self.emit([HANDSHAKE, [uid, None, data, first]])

    def push(self, msg: ServerMessage, seq: Any) -> None:
        """Deliver a pushed batch, each event as sent (or as ``[chsk/recv ev]``), leaving out
        what a numbered batch repeats."""
        events = msg.events
        if self.received is not None:
            events = self.received.accept(events, seq)
        for ev in events:
            if str(ev[0]).startswith("chsk/"):
                log.warning("ignoring a pushed event with a reserved chsk/ id: %r", ev)
                continue
            self.emit([RECV, ev] if self._wrap_recv_evs else ev)
