"""What a server event handler receives: the event message and the request snapshot.

A WebSocket carries many events over one HTTP request, so handlers get a frozen snapshot of
the connecting request (Sente's ``:ring-req``) rather than Flask's ``request``, which is
gone by the time a handler runs on another thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .protocol import event_data


@dataclass(frozen=True, slots=True)
class RequestSnapshot:
    """The parts of a connecting request that outlive it."""

    method: str
    path: str
    args: Mapping[str, str]
    headers: Mapping[str, str]
    cookies: Mapping[str, str]
    remote_addr: str | None
    session: Mapping[str, Any]
    client_id: str | None
    form: Mapping[str, str] = field(default_factory=dict)

    def param(self, name: str) -> str | None:
        """A query or form parameter, as Sente reads ``(:params req)``."""
        value = self.args.get(name)
        return value if value is not None else self.form.get(name)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True, slots=True)
class EventMsg:
    """One event from a client (or an internal one such as ``chsk/uidport-open``).

    ``reply`` is None when the client asked for no reply; otherwise calling it sends the
    reply and returns whether it was sent. ``send`` pushes to any uid, like ``Sente.send``.
    """

    event: list[Any]
    uid: Any
    client_id: str | None
    request: RequestSnapshot | None
    reply: Callable[[Any], bool] | None
    send: Callable[..., None]
    get_connected_uids: Callable[[], Mapping[str, frozenset[Any]]] | None = None

    @property
    def connected_uids(self) -> Mapping[str, frozenset[Any]] | None:
        """Sente's ``:connected-uids``: a snapshot, taken when read (not for every event)."""
        return None if self.get_connected_uids is None else self.get_connected_uids()

    @property
    def id(self) -> str:
        return str(self.event[0])

    @property
    def data(self) -> Any:
        return event_data(self.event)


def is_server_event_msg(x: Any) -> bool:
    """Whether ``x`` is an event message as server handlers receive it."""
    return isinstance(x, EventMsg)


is_event_msg = is_server_event_msg


Handler = Callable[[EventMsg], Any]
