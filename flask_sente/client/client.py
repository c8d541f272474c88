"""The blocking Python client: :class:`Client`, Sente's ``make-channel-socket-client!``.

One object per channel socket. Any thread may send; received events wait on ``ch_recv``
for :meth:`Client.next_event`, iteration, or the router thread that calls the ``@on``
handlers. ``type="auto"`` starts on WebSocket and falls back to Ajax long-polling, for good,
when the WebSocket is refused before it ever opened (Sente's ``ChAutoSocket``).
"""

from __future__ import annotations

import atexit
import logging
import threading
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ..batching import pack_value
from ..errors import ChannelClosed, ConfigError, ReplyError, ReplyTimeout
from ..packers import Packer, get_packer
from ..protocol import CLOSED, ERROR, TIMEOUT, assert_event, cb_error, normalize_event
from ..typecheck import check_arguments
from .ajax_chsk import AjaxChsk
from .backoff import exp_backoff
from .callbacks import Callback
from .cookies import Cookies, cookie_jar
from .core import DEFAULT_PING_TIMEOUT_MS, Core, Options, alias
from .events import ChRecv, ClientEventMsg
from .recovery import LAST_SEQ_PARAM
from .router import E, ErrorHandler, H, Handler, Routing
from .state import ClientState
from .urls import http_url
from .ws_chsk import WsChsk

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
        simulated_bad_conn_rate: float = 0,
        ws_constructor: Callable[..., Any] | None = None,
        ws_opts: Mapping[str, Any] | None = None,
        ajax_opts: Mapping[str, Any] | None = None,
        client_uuid: str | None = None,
        ws_kalive_ping_timeout_ms: int | None = None,
    ) -> None:
        if type not in ("auto", "ws", "ajax"):
            raise ConfigError(f"type must be 'auto', 'ws' or 'ajax', got {type!r}")
        if not 0 <= simulated_bad_conn_rate <= 1:
            raise ConfigError("simulated_bad_conn_rate is a proportion in [0, 1]")
        if ws_kalive_ms is not None and ws_kalive_ms < 0:
            raise ConfigError("ws_kalive_ms must be positive, or 0 / None to disable keepalive")
        self._packer = get_packer(packer)
        client_id = alias("client_id", client_id, "client_uuid", client_uuid)
        ping_timeout = alias(
            "ws_ping_timeout_ms",
            ws_ping_timeout_ms,
            "ws_kalive_ping_timeout_ms",
            ws_kalive_ping_timeout_ms,
        )
        self._opts = Options(
            url=url,
            type=type,
            csrf_token=csrf_token,
            params=dict(params or {}),
            headers=dict(headers or {}),
            cookies=cookie_jar(cookies),
            client_id=client_id or str(uuid.uuid4()),
            ws_kalive_ms=ws_kalive_ms,
            ws_ping_timeout_ms=DEFAULT_PING_TIMEOUT_MS if ping_timeout is None else ping_timeout,
            backoff_ms_fn=backoff_ms_fn,
            wrap_recv_evs=wrap_recv_evs,
            ajax_timeout_ms=ajax_timeout_ms,
            write_legacy_pack_format=write_legacy_pack_format,
            simulated_bad_conn_rate=simulated_bad_conn_rate,
            ws_constructor=ws_constructor,
            recover=recover,
            ws_opts=dict(ws_opts or {}),
            ajax_opts=dict(ajax_opts or {}),
        )
        http_url(url)  # fail now, with a clear message, on a URL that cannot work
        self.ch_recv = ChRecv(recv_buf_or_n, self)
        self._core = Core(self._opts, self._packer, self.ch_recv)
        self._impl: WsChsk | AjaxChsk | None = None
        core = self._core
        self._routing = Routing(
            self.ch_recv, core.lock, lambda fn: core.threads.spawn(core.name + "-router", fn)
        )

    # ------------------------------------------------------------------ properties

    @property
    def url(self) -> str:
        return self._opts.url

    @property
    def type(self) -> str:
        """The requested type, ``"auto"``, ``"ws"`` or ``"ajax"``; ``state["type"]`` is live."""
        return self._opts.type

    @property
    def client_id(self) -> str:
        return self._opts.client_id

    @property
    def packer(self) -> Packer:
        return self._packer

    @property
    def state(self) -> ClientState:
        return self._core.state

    @property
    def last_seq(self) -> str | None:
        """What the client reports as ``fs-last-seq``: ``"<epoch>:<n>"`` of the last push
        received, ``"-"`` before any, None with ``recover=False``."""
        return self._core.recovery_params().get(LAST_SEQ_PARAM)

    @property
    def connected(self) -> bool:
        """True between :meth:`connect` and :meth:`disconnect` (open or reconnecting)."""
        return self._impl is not None

    def __repr__(self) -> str:
        return f"<Client {self.url} type={self.type} open?={self.state.get('open?')}>"

    # ------------------------------------------------------------------ lifecycle

    def connect(self) -> Client:
        """Start connecting (non-blocking); see :meth:`wait_open`. A no-op when connected."""
        core = self._core
        with core.lock:
            if self._impl is not None:
                return self
            core.start_runtime()
            self.ch_recv.reopen()
            if self._opts.type == "ajax":
                self._impl = AjaxChsk(core)
            else:
                on_refused = self._downgrade if self._opts.type == "auto" else None
                self._impl = WsChsk(core, on_refused=on_refused)
            self._impl.connect()
            _live_clients.add(self)
            self._routing.connected()
        return self

    def disconnect(self) -> None:
        """Close for good (reason ``requested-disconnect``) and end every client thread.

        Callbacks still waiting are answered ``chsk/closed`` at once (Sente would let them
        run into ``chsk/timeout``; their reply can no longer arrive). Blocks up to a few
        seconds; from a handler or callback it skips joining its own thread.
        """
        core = self._core
        with core.lock:
            impl = self._impl
            self._impl = None
            if impl is None:
                return
            _live_clients.discard(self)
        impl.disconnect("requested-disconnect", wait=CLOSE_WAIT)
        core.callbacks.resolve_all(CLOSED)
        self.ch_recv.close()
        self._routing.disconnected()
        stragglers = core.threads.join_all(JOIN_TIMEOUT)
        if stragglers:
            log.warning("client threads still running after disconnect: %s", stragglers)
        core.stop_runtime(JOIN_TIMEOUT)
        if isinstance(impl, AjaxChsk):
            impl.close_sessions()

    def reconnect(self) -> None:
        """Cycle the connection (reason ``requested-reconnect``), e.g. after a login."""
        with self._core.lock:
            impl = self._impl
            if impl is None:
                self.connect()
                return
            impl.reconnect("requested-reconnect")

    def break_connection(self, close_ws: bool = True) -> None:
        """Break the connection without a clean close, to test reconnects.

        With ``close_ws=False`` the socket goes silent instead: the client believes it is
        still open until the keepalive ping times out (reason ``ws-ping-timeout``).
        """
        impl = self._impl
        if impl is not None:
            impl.break_connection(close_ws=close_ws)

    def _downgrade(self, exc: BaseException) -> None:
        """Auto mode: the WebSocket was refused before ever opening; use Ajax for good."""
        core = self._core
        with core.lock:
            if not isinstance(self._impl, WsChsk):
                return
            log.warning("WebSocket refused (%s); permanently downgrading to Ajax", exc)
            core.closed("downgrading-ws-to-ajax", force=True)
            self._impl = AjaxChsk(core)
            self._impl.connect()

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
        ev = normalize_event(assert_event(event))
        if cb is not None and not (isinstance(timeout_ms, int | float) and timeout_ms >= 0):
            raise ConfigError(f"a callback needs timeout_ms, milliseconds >= 0: got {timeout_ms!r}")
        pack_value(self._packer, ev)  # an event that cannot be packed fails here, not later
        impl = self._impl
        if impl is None:
            if cb is not None:
                self._core.deliver(cb, CLOSED, inline=inline)
            return False
        return impl.send(ev, timeout_ms, cb, inline)

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


@atexit.register
def _disconnect_all() -> None:
    """At interpreter exit, close every connected client so servers see a clean close."""
    for client in list(_live_clients):
        try:
            client.disconnect()
        except Exception:
            log.debug("disconnect at exit failed", exc_info=True)
