"""What the client hands to user code: event messages and the receive channel.

Sente's client puts ``{:ch-recv :send-fn :state :event :id :?data}`` maps on ``ch-recv``;
here those are :class:`ClientEventMsg` objects on a :class:`ChRecv`, the bounded queue the
server uses too, which, like Sente's ``(sliding-buffer 2048)``, drops the *oldest* message
when full, so a reader that falls behind loses history rather than stalling the socket.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import UsageError
from ..protocol import event_data, event_id, is_event
from ..router import RecvQueue
from .state import ClientState

__all__ = ["ChRecv", "ClientEventMsg", "EventSource", "is_client_event_msg"]


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


class ChRecv(RecvQueue[ClientEventMsg]):
    """The client's receive queue: :class:`~flask_sente.router.RecvQueue` (a sliding buffer)
    of :class:`ClientEventMsg`; any thread may put or get.

    ``put`` takes an event or a whole message: Sente lets users inject events this way too.
    """

    def __init__(self, maxlen: int, client: EventSource | None = None) -> None:
        super().__init__(maxlen, name="ch_recv")
        self._client = client

    def put(self, item: Sequence[Any] | ClientEventMsg) -> None:
        msg = item if isinstance(item, ClientEventMsg) else ClientEventMsg(list(item), self._client)
        super().put(msg)
