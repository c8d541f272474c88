"""Runs a client's :class:`~.protocol.ClientProtocol`: the only place its inputs and outputs
meet threads, clocks and sockets.

:class:`ProtocolRunner` feeds the protocol what the user did (through :class:`~.client.Client`)
and what the transports report (it is their :class:`~.transport.TransportListener`), each
with the time, under one lock, so the protocol sees one input at a time. It calls the
protocol's ``tick`` on the shared :class:`~flask_sente.scheduler.Scheduler` by the protocol's
deadline. Then it carries out the outputs in order: events go on ``ch_recv`` and state
changes into the :class:`~.state.ClientState` under the lock (so ``chsk/state`` events reach
``ch_recv`` in the order the changes happened), user callbacks and watches go to the
callback thread, and transport commands to the :class:`~.transport.Transport` of their kind.
Frames are written after the lock is released, so a slow socket never holds up the reader.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from http.cookiejar import CookieJar
from typing import Any, cast

from ..errors import ChannelClosed
from ..scheduler import Scheduler, TimerHandle
from .ajax_transport import AjaxTransport
from .context import Answer, Emit, Moment, Output, StateChanged
from .messages import ChRecv
from .protocol import ClientProtocol
from .state import ClientState, WatchFn
from .threads import Dispatcher, ThreadSet
from .transport import Command, SendFrame, Transport, WsClose
from .ws_transport import WsTransport

__all__ = ["Callback", "ProtocolRunner", "make_transport"]

log = logging.getLogger("flask_sente.client.runner")

Callback = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Waiter:
    """A callback as filed with the protocol; ``inline`` ones (the client's own waiters,
    ``request``'s) run at once instead of queueing behind user code."""

    fn: Callback
    inline: bool


def now() -> Moment:
    """The time, as the protocol takes it."""
    return Moment(time.monotonic(), int(time.time() * 1000))


class ProtocolRunner:
    """Runs ``protocol`` with the transports that ``make_transport(kind, runner)`` builds
    (:func:`make_transport`: websocket-client and requests)."""

    def __init__(
        self,
        protocol: ClientProtocol,
        *,
        ch_recv: ChRecv,
        state: ClientState,
        make_transport: Callable[..., Transport],
        name: str,
    ) -> None:
        self._protocol = protocol
        self._ch_recv = ch_recv
        self._state = state
        self._make_transport = make_transport
        self.threads = ThreadSet()
        self._name = name
        self.lock = threading.RLock()
        self._transports: dict[str, Transport] = {}
        self._running = False
        self._scheduler: Scheduler | None = None
        self._dispatcher: Dispatcher | None = None
        self._timer: TimerHandle | None = None
        self._timer_due: float | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the timer and callback threads (on ``connect``)."""
        with self.lock:
            self._running = True
            self._scheduler = Scheduler(name=self._name + "-timers")
            self._dispatcher = Dispatcher(self._name + "-callbacks")
            self._dispatcher.start()

    def stop(self, close_wait: float, join_timeout: float) -> None:
        """End everything (after ``disconnect``): give a closing WebSocket ``close_wait``
        seconds to hear the server's answer, then cut every connection, join the threads
        and run the callbacks still queued, each wait bounded."""
        with self.lock:
            self._running = False
            transports = list(self._transports.values())
            self._transports.clear()
        for transport in transports:
            transport.close(close_wait)
        stragglers = self.threads.join_all(join_timeout)
        if stragglers:
            log.warning("client threads still running after disconnect: %s", stragglers)
        with self.lock:
            scheduler, dispatcher = self._scheduler, self._dispatcher
            self._scheduler = self._dispatcher = None
            self._timer = self._timer_due = None
        if dispatcher is not None:
            dispatcher.stop(join_timeout)
        if scheduler is not None:
            scheduler.close(join_timeout)

    # ------------------------------------------------------------------ the user's side

    def feed(self, input_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Give the protocol one input (its method, called with the time as ``now``), carry
        out what it asks for; the method's result."""
        with self.lock:
            result = input_fn(*args, now=now(), **kwargs)
            frames, calls = self._carry_out(self._protocol.outputs())
        self._write(frames)
        _run_all(calls)
        return result

    def send(self, event: Any, timeout_ms: int | None, cb: Callback | None, inline: bool) -> bool:
        """The protocol's ``send``; False also when a frame it wrote could not be."""
        callback = None if cb is None else _Waiter(cb, inline)
        with self.lock:
            sent = self._protocol.send(event, now(), timeout_ms=timeout_ms, callback=callback)
            frames, calls = self._carry_out(self._protocol.outputs())
        written = self._write(frames)
        _run_all(calls)
        return written and sent

    # ------------------------------------------------------------------ TransportListener

    def ws_opened(self, link: int) -> None:
        self.feed(self._protocol.ws_opened, link)

    def ws_failed(self, link: int, error: BaseException, *, refused: bool) -> None:
        self.feed(self._protocol.ws_failed, link, error, refused=refused)

    def ws_received(self, link: int, data: str | bytes) -> None:
        self.feed(self._protocol.ws_received, link, data)

    def ws_closed(self, link: int, close: WsClose, error: BaseException | None) -> None:
        self.feed(self._protocol.ws_closed, link, close, error)

    def http_answered(self, link: int, status: int, body: bytes) -> None:
        self.feed(self._protocol.http_answered, link, status, body)

    def http_failed(self, link: int, error: BaseException, *, timed_out: bool) -> None:
        self.feed(self._protocol.http_failed, link, error, timed_out=timed_out)

    # ------------------------------------------------------------------ carrying out

    def _carry_out(
        self, outputs: Iterable[Output]
    ) -> tuple[list[SendFrame], list[Callable[[], Any]]]:
        """Carry out the outputs, in order, with the lock held, but for the frames to write
        and the calls to make once it is released (returned)."""
        frames: list[SendFrame] = []
        calls: list[Callable[[], Any]] = []
        for out in outputs:
            if isinstance(out, Emit):
                self._ch_recv.put(out.event)
            elif isinstance(out, StateChanged):
                for key, watch in self._state._replace(out.new):
                    call = partial(_call_watch, watch, key, self._state, out.old, out.new)
                    self._call(call, calls)
            elif isinstance(out, Answer):
                waiter = cast(_Waiter, out.handle)  # the protocol answers what send filed
                call = partial(waiter.fn, out.reply)
                if waiter.inline:
                    calls.append(call)
                else:
                    self._call(call, calls)
            elif isinstance(out, SendFrame):
                frames.append(out)
            else:
                transport = self._transport(out)
                if transport is not None:
                    transport.perform(out)
        self._schedule_tick()
        return frames, calls

    def _write(self, frames: list[SendFrame]) -> bool:
        """Write the frames (without the lock); a failure goes back to the protocol."""
        written = True
        for frame in frames:
            try:
                transport = self._transport(frame)
                if transport is None:
                    raise ChannelClosed("the client is disconnected")
                transport.perform(frame)
            except Exception as exc:
                written = False
                self.feed(self._protocol.ws_send_failed, frame, exc)
        return written

    def _transport(self, command: Command) -> Transport | None:
        """The transport for ``command``, made on first use; None once stopped."""
        with self.lock:
            transport = self._transports.get(command.transport)
            if transport is None and self._running:
                transport = self._make_transport(command.transport, self, name=self._name)
                self._transports[command.transport] = transport
            return transport

    def _call(self, call: Callable[[], Any], later: list[Callable[[], Any]]) -> None:
        """Run user code on the callback thread, in order; while there is none (not
        connected), once the lock is released."""
        dispatcher = self._dispatcher
        if dispatcher is None:
            later.append(call)
        else:
            dispatcher.submit(call)

    def _schedule_tick(self) -> None:
        """Have the scheduler call ``tick`` by the protocol's deadline."""
        due = self._protocol.deadline
        if due == self._timer_due or self._scheduler is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_due = due
        self._timer = None
        if due is not None:
            delay = max(0.0, due - time.monotonic())
            self._timer = self._scheduler.call_later(delay, self._tick)

    def _tick(self) -> None:
        with self.lock:
            self._timer = self._timer_due = None
        self.feed(self._protocol.tick)


def make_transport(
    kind: str,
    runner: ProtocolRunner,
    *,
    name: str,
    ws_constructor: Callable[..., Any] | None,
    ws_opts: Mapping[str, Any],
    ajax_opts: Mapping[str, Any],
    cookies: CookieJar | None,
) -> Transport:
    """The transport of ``kind`` for ``runner``, with the client's options for it."""
    if kind == "ws":
        return WsTransport(
            runner,
            threads=runner.threads,
            constructor=ws_constructor,
            ws_opts=ws_opts,
            cookies=cookies,
            name=name + "-ws",
        )
    return AjaxTransport(
        runner, threads=runner.threads, request_opts=ajax_opts, cookies=cookies, name=name + "-ajax"
    )


def _run_all(calls: list[Callable[[], Any]]) -> None:
    for call in calls:
        try:
            call()
        except Exception:
            log.exception("flask_sente client callback %r raised", call)


def _call_watch(
    watch: WatchFn, key: Any, state: ClientState, old: dict[str, Any], new: dict[str, Any]
) -> None:
    watch(key, state, old, new)
