"""Where mailboxes and presence live: in this process (``local``), or in Redis (``redis``).

One process needs no broker: :class:`~flask_sente.bus.local.LocalBus` keeps everything in
memory. With ``message_queue="redis://..."`` (or ``"redis+sentinel://..."``) every worker
of every machine shares the mailboxes and the presence counts through Redis, so a push
made anywhere reaches the client wherever its connection is, an Ajax client may poll any
worker, and ``connected_uids`` and uidport events are cluster-wide.

A bus is anything with the methods of :class:`Bus`. Mailboxes hold pushed events as
:class:`~flask_sente.batching.Outgoing`: packed once, by ``send``. A bus that keeps them
outside the process stores ``item.packed`` and reads it back with ``Outgoing.unread``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ..batching import Outgoing
from ..errors import ConfigError
from ..mailbox import Lost
from ..scheduler import Scheduler

ConnectedUids = dict[str, frozenset[Any]]


class BusListener(Protocol):
    """What a bus tells the server it serves."""

    def remote_push(self, uid: Any) -> None: ...

    def remote_close(self, uid: Any) -> None: ...

    def presence_changed(self) -> None: ...

    def uid_closed_elsewhere(self, uid: Any) -> None: ...


class Bus(Protocol):
    name: str

    # mailboxes (see flask_sente.mailbox)
    def ensure_mailbox(self, uid: Any, client_id: str) -> None: ...

    def knows(self, uid: Any, client_id: str) -> bool: ...

    def push(self, uid: Any, item: Outgoing) -> bool: ...

    def push_many(self, items: Sequence[tuple[Any, Outgoing]]) -> list[bool]:
        """``push`` for each ``(uid, event)``, in order, in one round trip."""

    def close_uid(self, uid: Any) -> None: ...

    def position(self, uid: Any, client_id: str, reported: tuple[str, int] | None) -> int:
        """Where a new connection starts; see :func:`flask_sente.mailbox.start_position`."""

    def read(
        self, uid: Any, client_id: str, after: int
    ) -> tuple[str, list[tuple[int, Outgoing]]]: ...

    def delivered(self, uid: Any, client_id: str, seq: int) -> None: ...

    def attach(self, uid: Any, client_id: str) -> None: ...

    def detach(self, uid: Any, client_id: str) -> None: ...

    # presence
    def opened(self, uid: Any, kind: str) -> bool: ...

    def closed(self, uid: Any, kind: str) -> bool: ...

    def connected_uids(self) -> ConnectedUids: ...

    # lifecycle
    def start(self, listener: BusListener) -> None: ...

    def health(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


def make_bus(
    url: str | None,
    *,
    scheduler: Scheduler,
    backlog: int,
    window_s: float,
    lost: Lost,
    packer: Any,
    channel: str = "flask_sente",
) -> Bus:
    """The bus for ``message_queue``: None for one process, a ``redis://`` URL, or a
    ``redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE[/DB]`` URL."""
    if not url:
        from .local import LocalBus

        return LocalBus(scheduler, backlog=backlog, window_s=window_s, lost=lost)
    if url.startswith(("redis://", "rediss://", "unix://", "redis+sentinel://")):
        from .redis import RedisBus

        return RedisBus(
            url, backlog=backlog, window_s=window_s, lost=lost, packer=packer, channel=channel
        )
    raise ConfigError(
        f'message_queue must be a "redis://..." or "redis+sentinel://..." URL, or None: got {url!r}'
    )


__all__ = ["Bus", "BusListener", "ConnectedUids", "make_bus"]
