"""Sente's channel socket client as a pure state machine: :class:`ClientProtocol`.

Everything the client means is decided here and in the two channel sockets it drives
(:class:`~.ws_channel.WsChannel`, :class:`~.ajax_channel.AjaxChannel`): the handshake,
callbacks and their timeouts, the keepalive ping, reconnects and their backoff, the downgrade
from WebSocket to Ajax, push recovery (``fs-last-seq``), Sente's state map and the events it
puts on ``ch_recv``. It reads no clock, takes no lock and does no I/O. Its caller (the
client's runner) tells it what the user did and what the transports reported, each with the
time (:class:`~.context.Moment`); calls :meth:`~ClientProtocol.tick` by its
:attr:`~ClientProtocol.deadline`; and carries out, in order, the :meth:`~ClientProtocol.outputs`:
transport commands (:mod:`.transport`), and :class:`~.context.Emit`,
:class:`~.context.Answer` and :class:`~.context.StateChanged` for the user's side.

The channel socket in use goes through the :class:`~.context.Phase` s::

    CLOSED --connect()--> CONNECTING --handshake--> OPEN
                            ^    |                   |
                            |    +<------ lost ------+
                            |    |
                            |    +-- first retry: at once --> CONNECTING
                            |    +-- later retries ---------> RETRY_WAIT
                            |                                     |
                            +------- tick() at its time ----------+

    any phase --disconnect(), or lost with reconnect=False--> CLOSED

``type="auto"`` starts on the WebSocket and moves to Ajax for good when a server refuses the
WebSocket before one ever opened (Sente's ``ChAutoSocket``, ``downgrading-ws-to-ajax``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import ConfigError
from ..packers import Packer
from ..protocol import CLOSED, TIMEOUT, assert_event, new_cb_uuid, normalize_event
from .ajax_channel import AjaxChannel
from .backoff import exp_backoff
from .context import Answer, ChannelContext, Emit, Moment, Output, Phase, StateChanged
from .transport import SendFrame, WsClose
from .wire import http_url
from .ws_channel import WsChannel

__all__ = [
    "DEFAULT_PING_TIMEOUT_MS",
    "Answer",
    "ClientProtocol",
    "Emit",
    "Moment",
    "Output",
    "Phase",
    "StateChanged",
]

#: Sente's default ``ws-ping-timeout-ms``.
DEFAULT_PING_TIMEOUT_MS = 5_000


class ClientProtocol:
    """The protocol of one channel socket client; options as :class:`~.client.Client`'s,
    plus ``reconnect`` (False: a lost connection stays lost) and, for tests, the sources of
    randomness."""

    def __init__(
        self,
        url: str,
        *,
        packer: Packer,
        client_id: str,
        type: str = "auto",
        csrf_token: str | Callable[[], str | None] | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        ws_kalive_ms: int | None = 20_000,
        ws_ping_timeout_ms: int = DEFAULT_PING_TIMEOUT_MS,
        backoff_ms_fn: Callable[[int], int] = exp_backoff,
        wrap_recv_evs: bool = False,
        ajax_timeout_ms: int = 60_000,
        write_legacy_pack_format: bool | None = None,
        recover: bool = True,
        reconnect: bool = True,
        simulated_bad_conn_rate: float = 0,
        random_fn: Callable[[], float] = random.random,
        new_cb_uuid: Callable[[], str] = new_cb_uuid,
    ) -> None:
        if type not in ("auto", "ws", "ajax"):
            raise ConfigError(f"type must be 'auto', 'ws' or 'ajax', got {type!r}")
        if not 0 <= simulated_bad_conn_rate <= 1:
            raise ConfigError("simulated_bad_conn_rate is a proportion in [0, 1]")
        if ws_kalive_ms is not None and ws_kalive_ms < 0:
            raise ConfigError("ws_kalive_ms must be positive, or 0 / None to disable keepalive")
        http_url(url)  # fail now, with a clear message, on a URL that cannot work
        self.type = type
        self._ctx = ctx = ChannelContext(
            url,
            packer=packer,
            client_id=client_id,
            type=type,
            csrf_token=csrf_token,
            params=params or {},
            headers=headers or {},
            wrap_recv_evs=wrap_recv_evs,
            write_legacy_pack_format=write_legacy_pack_format,
            recover=recover,
            simulated_bad_conn_rate=simulated_bad_conn_rate,
            random_fn=random_fn,
            new_cb_uuid=new_cb_uuid,
        )
        self._ws = WsChannel(
            ctx,
            kalive_ms=ws_kalive_ms,
            ping_timeout_ms=ws_ping_timeout_ms,
            backoff_ms_fn=backoff_ms_fn,
            reconnect=reconnect,
            may_downgrade=type == "auto",
        )
        self._ajax = AjaxChannel(
            ctx, timeout_ms=ajax_timeout_ms, backoff_ms_fn=backoff_ms_fn, reconnect=reconnect
        )
        self._channel: WsChannel | AjaxChannel = self._ajax if type == "ajax" else self._ws

    # ------------------------------------------------------------------ what it is, what to do

    @property
    def phase(self) -> Phase:
        return self._channel.phase

    @property
    def client_id(self) -> str:
        return self._ctx.client_id

    @property
    def kind(self) -> str:
        """The channel socket in use: ``"ws"`` or ``"ajax"``."""
        return self._channel.kind

    @property
    def state(self) -> dict[str, Any]:
        """Sente's state map; each change replaces it, so a value read stays true."""
        return self._ctx.state.value

    @property
    def last_seq(self) -> str | None:
        """What is reported as ``fs-last-seq``; None with ``recover=False``."""
        received = self._ctx.received
        return None if received is None else received.param

    @property
    def deadline(self) -> float | None:
        """When :meth:`tick` is next due (monotonic seconds), or None while nothing waits."""
        times = [self._ctx.callbacks.next_deadline(), self._channel.deadline]
        return min((t for t in times if t is not None), default=None)

    def outputs(self) -> list[Output]:
        """What to do, in order, since the last call; each must be carried out."""
        out, self._ctx.outputs = self._ctx.outputs, []
        return out

    # ------------------------------------------------------------------ the user's commands

    def connect(self, now: Moment) -> None:
        """Start connecting, on the WebSocket unless ``type="ajax"``; a no-op unless CLOSED."""
        if self.phase is Phase.CLOSED:
            self._channel = self._ajax if self.type == "ajax" else self._ws
            self._channel.open(now)

    def disconnect(self, reason: str, now: Moment) -> None:
        """Close for good. Every waiting callback is answered ``chsk/closed`` at once (Sente
        lets them time out, but their replies can no longer come)."""
        if self.phase is not Phase.CLOSED:
            self._channel.stop(reason, now, linger=True)
        for pending in self._ctx.callbacks.pop_all():
            self._ctx.answer(pending, CLOSED, now)

    def reconnect(self, reason: str, now: Moment) -> None:
        """Replace the connection at once, on the channel socket in use."""
        if self.phase is Phase.CLOSED:
            self.connect(now)
        else:
            self._channel.reconnect(reason, now)

    def break_connection(self, close_ws: bool, now: Moment) -> None:
        """Break the connection as a bad network would, to test what follows: a WebSocket
        gets a 3000 close frame and is cut, or, without ``close_ws``, goes silent (only the
        keepalive finds out); an Ajax long-poll is cut."""
        self._channel.break_connection(close_ws)

    def send(
        self,
        event: Sequence[Any],
        now: Moment,
        *,
        timeout_ms: int | None = None,
        callback: object = None,
    ) -> bool:
        """Send ``event``; True on apparent success (Sente's ``chsk-send!``).

        The one place an outgoing event is checked and packed: first, whatever the state, so
        a bad event raises :class:`~flask_sente.errors.InvalidEvent` or
        :class:`~flask_sente.errors.PackError`, and a callback without ``timeout_ms`` a
        :class:`~flask_sente.errors.ConfigError`, before anything else happens. ``callback``
        (any object) comes back in an :class:`~.context.Answer` with the reply, or
        ``chsk/closed`` (at once when the channel is not open), ``chsk/timeout`` after
        ``timeout_ms``, or ``chsk/error``. Without a callback, ``timeout_ms`` bounds an Ajax
        POST.
        """
        ctx, channel = self._ctx, self._channel
        ev = normalize_event(assert_event(event))
        if callback is not None and not (isinstance(timeout_ms, int | float) and timeout_ms >= 0):
            raise ConfigError(f"a callback needs timeout_ms, milliseconds >= 0: got {timeout_ms!r}")
        cb_uuid = ctx.callbacks.new_uuid() if callback is not None else None
        package = ctx.pack(ev, channel.marker(cb_uuid))
        return channel.send(package, cb_uuid, callback, timeout_ms, now)

    # ------------------------------------------------------------------ the clock

    def tick(self, now: Moment) -> None:
        """Time passed: time callbacks out, retry, look at the keepalive, whichever is due."""
        for pending in self._ctx.callbacks.pop_due(now.monotonic):
            self._ctx.answer(pending, TIMEOUT, now)
        self._channel.tick(now)

    # ------------------------------------------------------------------ what transports report

    def ws_opened(self, link: int, now: Moment) -> None:
        self._ws.opened(link)

    def ws_failed(self, link: int, error: BaseException, now: Moment, *, refused: bool) -> None:
        """The WebSocket never opened; ``refused``: a server answered, but would not upgrade."""
        if self._channel is self._ws and self._ws.failed(link, error, now, refused=refused):
            self._ctx.closed(now, "downgrading-ws-to-ajax", force=True)
            self._channel = self._ajax
            self._ajax.open(now)

    def ws_received(self, link: int, data: str | bytes, now: Moment) -> None:
        self._ws.received(link, data, now)

    def ws_closed(
        self, link: int, close: WsClose, error: BaseException | None, now: Moment
    ) -> None:
        self._ws.closed(link, close, error, now)

    def ws_send_failed(self, frame: SendFrame, error: BaseException, now: Moment) -> None:
        """A :class:`~.transport.SendFrame` could not be written: its callback gets
        ``chsk/error`` and the connection is replaced (``ws-error``)."""
        self._ws.send_failed(frame.link, frame.cb_uuid, now)

    def http_answered(self, link: int, status: int, body: bytes, now: Moment) -> None:
        self._ajax.answered(link, status, body, now)

    def http_failed(self, link: int, error: BaseException, now: Moment, *, timed_out: bool) -> None:
        """A request failed; ``timed_out``: no answer within its ``timeout_s``."""
        self._ajax.failed(link, error, now, timed_out=timed_out)
