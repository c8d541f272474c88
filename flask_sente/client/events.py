"""What the client hands to user code: event messages and the receive channel.

Sente's client puts ``{:ch-recv :send-fn :state :event :id :?data}`` maps on ``ch-recv``;
here those are :class:`ClientEventMsg` objects on a :class:`ChRecv`, a bounded queue that,
like Sente's ``(sliding-buffer 2048)``, drops the *oldest* message when full, so a reader
that falls behind loses history rather than stalling the socket.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import ConfigError, UsageError
from ..protocol import event_data, event_id, is_event
from .state import ClientState

__all__ = ["ChRecv", "ClientEventMsg", "EventSource", "is_client_event_msg"]

log = logging.getLogger("flask_sente.client.events")


class EventSource(Protocol):
    """What an event message offers of the client it came from (a :class:`Client`)."""

    ch_recv: ChRecv

    @property
    def state(self) -> ClientState: ...

    def send(
        self,
        event: Sequence[Any],
        timeout_ms: int | None = None,
        cb: Callable[[Any], Any] | None = None,
        flush: bool = False,
    ) -> bool: ...


@dataclass(frozen=True, slots=True)
class ClientEventMsg:
    """One received event: ``event`` is ``[id]`` or ``[id, data]``.

    ``send_fn``, ``state`` and ``ch_recv`` are the client's, as in Sente's event message,
    so a handler can answer without holding on to the client.
    """

    event: list[Any]
    client: EventSource | None = field(default=None, repr=False, compare=False)

    @property
    def id(self) -> str:
        return event_id(self.event)

    @property
    def data(self) -> Any:
        return event_data(self.event)

    @property
    def send_fn(self) -> Callable[..., bool]:
        if self.client is None:
            raise UsageError("this event message is not attached to a client")
        return self.client.send

    @property
    def state(self) -> ClientState:
        if self.client is None:
            raise UsageError("this event message is not attached to a client")
        return self.client.state

    @property
    def ch_recv(self) -> ChRecv:
        if self.client is None:
            raise UsageError("this event message is not attached to a client")
        return self.client.ch_recv


def is_client_event_msg(x: Any) -> bool:
    """True for a client event message carrying a valid event (Sente's ``client-event-msg?``)."""
    return isinstance(x, ClientEventMsg) and is_event(x.event)


class ChRecv:
    """A sliding-buffer queue of :class:`ClientEventMsg`; any thread may put or get.

    ``put`` never blocks. ``get`` blocks up to ``timeout`` and returns None when it times
    out, when ``cancel`` is set (even with messages waiting: a stopped router takes no more),
    or when the channel is closed and drained.
    """

    def __init__(self, maxlen: int, client: EventSource | None = None) -> None:
        if not isinstance(maxlen, int) or isinstance(maxlen, bool) or maxlen < 1:
            raise ConfigError(f"recv_buf_or_n must be a positive buffer size, got {maxlen!r}")
        self._client = client
        self._items: deque[ClientEventMsg] = deque()
        self._maxlen = maxlen
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        self.dropped = 0

    def put(self, event: Sequence[Any] | ClientEventMsg) -> None:
        """Add an event (or a whole message); Sente lets users inject events this way too."""
        msg = (
            event
            if isinstance(event, ClientEventMsg)
            else ClientEventMsg(list(event), self._client)
        )
        with self._cond:
            if len(self._items) >= self._maxlen:
                self._items.popleft()
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.warning(
                        "ch_recv is full (%d); dropped %d oldest", self._maxlen, self.dropped
                    )
            self._items.append(msg)
            self._cond.notify()

    def get(
        self, timeout: float | None = None, cancel: threading.Event | None = None
    ) -> ClientEventMsg | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if cancel is not None and cancel.is_set():
                    return None
                if self._items:
                    return self._items.popleft()
                if self._closed:
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)

    def __len__(self) -> int:
        return len(self._items)

    def wake(self) -> None:
        """Wake every blocked ``get`` so it can look at its ``cancel`` event."""
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        """Let blocked readers drain what is left and then get None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        with self._cond:
            self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed
