"""The blocking Python client: :class:`Client`, Sente's ``make-channel-socket-client!``.

One object per channel socket. What the client means (Sente's protocol) is its
:class:`~.protocol.ClientProtocol`; the :class:`~.runner.ProtocolRunner` runs it over the
WebSocket and Ajax transports. Any thread may send; received events wait on ``ch_recv`` for
:meth:`Client.next_event`, iteration, or the router thread that calls the ``@on`` handlers.
``type="auto"`` starts on WebSocket and falls back to Ajax long-polling, for good, when the
WebSocket is refused before it ever opened (Sente's ``ChAutoSocket``).
"""

from __future__ import annotations

import atexit
import logging
import threading
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

from ..errors import ChannelClosed, ConfigError, ReplyError, ReplyTimeout
from ..packers import Packer, get_packer
from ..protocol import ERROR, TIMEOUT, cb_error
from ..typecheck import check_arguments
from .backoff import exp_backoff
from .cookies import Cookies, cookie_jar
from .messages import ChRecv, ClientEventMsg
from .protocol import DEFAULT_PING_TIMEOUT_MS, ClientProtocol
from .routing import E, ErrorHandler, H, Handler, Routing
from .runner import Callback, ProtocolRunner, make_transport
from .state import ClientState

__all__ = ["Client"]

log = logging.getLogger("flask_sente.client")

#: Seconds ``disconnect()`` waits for the server to answer the WebSocket close frame.
CLOSE_WAIT = 1.0
#: Seconds ``disconnect()`` waits for the client's threads to end.
JOIN_TIMEOUT = 5.0

_live_clients: weakref.WeakSet[Client] = weakref.WeakSet()


class Client:
    """A channel socket client speaking Sente's protocol to flask_sente or Sente servers.

    ``url`` is the channel socket route, ``http(s)://`` or ``ws(s)://`` (e.g.
    ``http://127.0.0.1:5000/chsk``). Options follow Sente's client options; times are in
    milliseconds as in Sente, except :meth:`request`'s ``timeout``, in seconds as in every
    blocking Python call. The default ``backoff_ms_fn`` is :func:`~.backoff.exp_backoff`:
    Sente's schedule capped at 30 s. ``ws_opts`` go to ``websocket.create_connection``
    (``timeout``, ``sslopt``...), ``ajax_opts`` to requests (``verify``, ``cert``,
    ``proxies``, ``auth``, and Sente's ``timeout_ms``).

    ``cookies`` (a mapping, a ``CookieJar`` or a ``requests.Session``) go out with the
    WebSocket handshake and every Ajax request, for apps whose CSRF token belongs to a
    session; :func:`~flask_sente.client.csrf_from_page` gets both from a page.

    With ``recover`` (the default) the client reports the last push it received, so a
    flask_sente server resends, after a reconnect, the pushes it missed (none twice);
    ``recover=False`` sends exactly what Sente's clients send. See ``docs/reliability.md``.

    ``client_uuid`` and ``ws_kalive_ping_timeout_ms`` are Sente's older names for
    ``client_id`` and ``ws_ping_timeout_ms`` (default 5000 ms); giving both names of one
    option, with different values, is a :class:`~flask_sente.errors.ConfigError`.

    ``reconnect=False`` (not in Sente) leaves a lost connection lost: the state says why, and
    sends are answered ``chsk/closed`` until :meth:`connect` or :meth:`reconnect`.
    """

    @check_arguments
    def __init__(
        self,
        url: str,
        *,
        type: str = "auto",
        packer: str | Packer = "json",
        csrf_token: str | Callable[[], str | None] | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        cookies: Cookies | None = None,
        client_id: str | None = None,
        ws_kalive_ms: int | None = 20_000,
        ws_ping_timeout_ms: int | None = None,
        backoff_ms_fn: Callable[[int], int] = exp_backoff,
        wrap_recv_evs: bool = False,
        recv_buf_or_n: int = 2048,
        ajax_timeout_ms: int = 60_000,
        write_legacy_pack_format: bool | None = None,
        recover: bool = True,
        reconnect: bool = True,
        simulated_bad_conn_rate: float = 0,
        ws_constructor: Callable[..., Any] | None = None,
        ws_opts: Mapping[str, Any] | None = None,
        ajax_opts: Mapping[str, Any] | None = None,
        client_uuid: str | None = None,
        ws_kalive_ping_timeout_ms: int | None = None,
    ) -> None:
        self._packer = get_packer(packer)
        ping_timeout = alias(
            "ws_ping_timeout_ms",
            ws_ping_timeout_ms,
            "ws_kalive_ping_timeout_ms",
            ws_kalive_ping_timeout_ms,
        )
        ajax = dict(ajax_opts or {})
        self._protocol = ClientProtocol(
            url,
            packer=self._packer,
            client_id=alias("client_id", client_id, "client_uuid", client_uuid)
            or str(uuid.uuid4()),
            type=type,
            csrf_token=csrf_token,
            params=params,
            headers=headers,
            ws_kalive_ms=ws_kalive_ms,
            ws_ping_timeout_ms=DEFAULT_PING_TIMEOUT_MS if ping_timeout is None else ping_timeout,
            backoff_ms_fn=backoff_ms_fn,
            wrap_recv_evs=wrap_recv_evs,
            ajax_timeout_ms=int(ajax.pop("timeout_ms", ajax_timeout_ms)),
            write_legacy_pack_format=write_legacy_pack_format,
            recover=recover,
            reconnect=reconnect,
            simulated_bad_conn_rate=simulated_bad_conn_rate,
        )
        self._url = url
        self._name = f"flask_sente.client-{self.client_id[:8]}"
        self._state = ClientState(self._protocol.state)
        self.ch_recv = ChRecv(recv_buf_or_n, self)
        transports = partial(
            make_transport,
            ws_constructor=ws_constructor,
            ws_opts=dict(ws_opts or {}),
            ajax_opts=ajax,
            cookies=cookie_jar(cookies),
        )
        self._runner = ProtocolRunner(
            self._protocol,
            ch_recv=self.ch_recv,
            state=self._state,
            make_transport=transports,
            name=self._name,
        )
        self._routing = Routing(
            self.ch_recv, name=self._name + "-router", join_timeout=JOIN_TIMEOUT
        )
        self._connected = False

    # ------------------------------------------------------------------ properties

    @property
    def url(self) -> str:
        return self._url

    @property
    def type(self) -> str:
        """The requested type, ``"auto"``, ``"ws"`` or ``"ajax"``; ``state["type"]`` is live."""
        return self._protocol.type

    @property
    def client_id(self) -> str:
        return self._protocol.client_id

    @property
    def packer(self) -> Packer:
        return self._packer

    @property
    def state(self) -> ClientState:
        return self._state

    @property
    def last_seq(self) -> str | None:
        """What the client reports as ``fs-last-seq``: ``"<epoch>:<n>"`` of the last push
        received, ``"-"`` before any, None with ``recover=False``."""
        with self._runner.lock:
            return self._protocol.last_seq

    @property
    def connected(self) -> bool:
        """True between :meth:`connect` and :meth:`disconnect` (open or reconnecting)."""
        return self._connected

    def __repr__(self) -> str:
        return f"<Client {self.url} type={self.type} open?={self.state.get('open?')}>"

    # ------------------------------------------------------------------ lifecycle

    def connect(self) -> Client:
        """Start connecting (non-blocking); see :meth:`wait_open`. A no-op when connected."""
        runner = self._runner
        with runner.lock:
            if self._connected:
                return self
            self._connected = True
            runner.start()
            self.ch_recv.reopen()
            runner.feed(self._protocol.connect)
            _live_clients.add(self)
        self._routing.connected()
        return self

    def disconnect(self) -> None:
        """Close for good (reason ``requested-disconnect``) and end every client thread.

        Callbacks still waiting are answered ``chsk/closed`` at once (Sente would let them
        run into ``chsk/timeout``; their reply can no longer arrive). Blocks up to a few
        seconds; from a handler or callback it skips joining its own thread.
        """
        runner = self._runner
        with runner.lock:
            if not self._connected:
                return
            self._connected = False
            _live_clients.discard(self)
            runner.feed(self._protocol.disconnect, "requested-disconnect")
        self.ch_recv.close()
        self._routing.disconnected()
        runner.stop(CLOSE_WAIT, JOIN_TIMEOUT)

    def reconnect(self) -> None:
        """Cycle the connection (reason ``requested-reconnect``), e.g. after a login."""
        if not self._connected:
            self.connect()
            return
        self._runner.feed(self._protocol.reconnect, "requested-reconnect")

    def break_connection(self, close_ws: bool = True) -> None:
        """Break the connection without a clean close, to test reconnects.

        With ``close_ws=False`` the socket goes silent instead: the client believes it is
        still open until the keepalive ping times out (reason ``ws-ping-timeout``).
        """
        if self._connected:
            self._runner.feed(self._protocol.break_connection, close_ws)

    def wait_open(self, timeout: float | None = 10.0) -> bool:
        """Block until the channel is open (handshake done) or ``timeout`` seconds pass."""
        return self.state.wait_for(lambda s: bool(s.get("open?")), timeout)

    def __enter__(self) -> Client:
        self.connect()
        if not self.wait_open(10.0):
            last = self.state.get("last-ws-error") or self.state.get("last-close")
            self.disconnect()
            raise ChannelClosed(
                f"could not open a channel socket to {self.url} within 10 s ({last}); "
                "is the server running, and are the URL, packer and csrf_token right?"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    # ------------------------------------------------------------------ sending

    def send(
        self,
        event: Sequence[Any],
        timeout_ms: int | None = None,
        cb: Callback | None = None,
        flush: bool = False,
    ) -> bool:
        """Send ``[id]`` or ``[id, data]``; True on apparent success (Sente's ``chsk-send!``).

        With ``cb``, ``timeout_ms`` is required: ``cb`` later gets the reply, or
        ``chsk/timeout``, ``chsk/closed`` (also at once, with a False return, when the
        channel is not open) or ``chsk/error``. ``flush`` is accepted for Sente parity; the
        client never buffers sends. ``InvalidEvent`` or ``PackError`` come before any sending.
        """
        return self._send(event, timeout_ms, cb, inline=False)

    def _send(
        self, event: Sequence[Any], timeout_ms: int | None, cb: Callback | None, *, inline: bool
    ) -> bool:
        """Where every event goes out: the protocol checks and packs it before anything else."""
        return self._runner.send(event, timeout_ms, cb, inline)

    def request(self, event: Sequence[Any], timeout: float = 10.0) -> Any:
        """Send and block for the reply (``timeout`` in seconds).

        Raises :class:`~flask_sente.errors.ReplyTimeout` (a ``TimeoutError``),
        :class:`~flask_sente.errors.ChannelClosed` (a ``ConnectionError``) when the channel
        is not open or closes first, :class:`~flask_sente.errors.ReplyError` otherwise.
        """
        done = threading.Event()
        box: list[Any] = []

        def on_reply(reply: Any) -> None:
            box.append(reply)
            done.set()

        self._send(event, max(int(timeout * 1000), 0), on_reply, inline=True)
        if not done.wait(timeout + JOIN_TIMEOUT):
            raise ReplyTimeout(f"no reply to {event[0]!r} within {timeout} s")
        reply = box[0]
        if cb_error(reply):
            if reply == TIMEOUT:
                raise ReplyTimeout(f"no reply to {event[0]!r} within {timeout} s")
            if reply == ERROR:
                raise ReplyError(f"sending {event[0]!r} failed (chsk/error); see the client log")
            raise ChannelClosed(
                f"the channel socket to {self.url} is not open (state {self.state.snapshot()!r}); "
                "call connect() and wait_open() first"
            )
        return reply

    # ------------------------------------------------------------------ receiving

    def next_event(self, timeout: float | None = None) -> ClientEventMsg | None:
        """The next received event message, or None after ``timeout`` seconds."""
        return self.ch_recv.get(timeout)

    def __iter__(self) -> Iterator[ClientEventMsg]:
        """Received event messages, blocking, until :meth:`disconnect`."""
        while True:
            msg = self.ch_recv.get()
            if msg is None:
                return
            yield msg

    def on(self, event_id: str) -> Callable[[H], H]:
        """Decorator: ``@client.on("chat/msg")`` handles events with that id.

        Registered handlers just run: on the client's router thread, from :meth:`connect`
        on, or at once on a connected client (unless :meth:`start_router` routes elsewhere).
        """
        register = self._routing.handlers.on(event_id)

        def decorator(fn: H) -> H:
            register(fn)
            self._routing.registered()
            return fn

        return decorator

    def on_default(self, fn: H) -> H:
        """Decorator: handle every event that no :meth:`on` handler claims."""
        self._routing.handlers.on_default(fn)
        self._routing.registered()
        return fn

    def on_error(self, fn: E) -> E:
        """Decorator: ``fn(msg, exc)`` is called when a handler raises."""
        self._routing.handlers.on_error(fn)
        return fn

    def start_router(
        self,
        handler: Handler | None = None,
        *,
        error_handler: ErrorHandler | None = None,
        trace_evs: bool = False,
    ) -> Callable[[], None]:
        """Sente's ``start-client-chsk-router!``: call ``handler`` (default: the registered
        handlers) for each event, in place of any router running; returns ``stop``.

        ``error_handler(msg, exc)`` gets a handler's exceptions (default: the ``on_error``
        handler, else the log); ``trace_evs`` logs each event first (DEBUG). The router
        thread lives while the client is connected and comes back on connect; ``stop()``
        ends routing until a router is started or a handler registered again.
        """
        return self._routing.start(handler, error_handler, trace_evs)


def alias(name: str, value: Any, old_name: str, old_value: Any) -> Any:
    """An option that Sente also accepts under an older name: whichever was given."""
    if value is not None and old_value is not None and value != old_value:
        raise ConfigError(
            f"{old_name} is Sente's older name for {name}; give one of them, not both "
            f"({name}={value!r}, {old_name}={old_value!r})"
        )
    return old_value if value is None else value


@atexit.register
def _disconnect_all() -> None:
    """At interpreter exit, close every connected client so servers see a clean close."""
    for client in list(_live_clients):
        try:
            client.disconnect()
        except Exception:
            log.debug("disconnect at exit failed", exc_info=True)
