"""Pushing from processes that are not web servers: Celery tasks, cron jobs, scripts.

::

    from flask_sente import Emitter

    emitter = Emitter("redis://localhost:6379/0")
    emitter.send("alice", ["report/ready", {"id": 42}])

    # many events, one round trip to Redis per 500
    emitter.send_many([(uid, ["site/notice", text]) for uid in uids])
    with emitter.batch() as batch:  # or collect them as you go; sent on leaving the block
        for order in orders:
            batch.send(order.uid, ["order/shipped", order.id])

The emitter writes to the same Redis mailboxes as the web workers (``message_queue``), so
its pushes reach the uid's connections on every worker, in order, and wait for clients
between two polls like any other push. It needs no Flask app. Use the server's ``packer``
and ``channel`` if you changed them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from .batching import Outgoing
from .bus.redis import RedisBus
from .errors import InvalidUid
from .packers import Packer, get_packer
from .protocol import ALL_USERS_WITHOUT_UID, CLOSE, NIL_UID
from .typecheck import check_arguments

logger = logging.getLogger("flask_sente.emitter")

#: Events stored by one Lua call at most: a longer batch is cut, so that no call holds
#: Redis (one thread for every client) for long.
BATCH_LIMIT = 500


class Emitter:
    """Publish-only access to a Redis bus."""

    @check_arguments
    def __init__(
        self,
        url: str,
        *,
        packer: str | Packer = "json",
        channel: str = "flask_sente",
        recovery_backlog: int = 1000,
        recovery_window_ms: int = 30000,
    ) -> None:
        self.undelivered = 0
        self._packer = get_packer(packer)

        def lost(uid: Any, events: list[Any], why: str) -> None:
            self.undelivered += len(events)
            logger.warning("push to uid %r not delivered (%d event(s)): %s", uid, len(events), why)

        self._bus = RedisBus(
            url,
            backlog=recovery_backlog,
            window_s=recovery_window_ms / 1000,
            lost=lost,
            packer=self._packer,
            channel=channel,
            max_connections=4,
        )
        self._lost = lost

    def send(self, uid: Any, event: Any) -> bool:
        """Push ``event`` to ``uid``; False when no client of the uid has a mailbox.

        ``["chsk/close"]`` closes the uid's connections, as from a server. The event is
        checked and packed first: InvalidEvent or PackError reach the caller, nothing is
        written."""
        return self.send_many([(uid, event)])[0]

    def send_many(self, items: Iterable[tuple[Any, Any]]) -> list[bool]:
        """Push each ``(uid, event)``, in order, in one round trip per ``BATCH_LIMIT``
        events; per item, what :meth:`send` would return. Every event is checked and packed
        before any is sent."""
        return self._send_checked([self._checked(uid, event) for uid, event in items])

    def _checked(self, uid: Any, event: Any) -> tuple[Any, Outgoing]:
        if uid is None:
            raise InvalidUid('use "sente/all-users-without-uid" to reach clients without a uid')
        return (NIL_UID if uid == ALL_USERS_WITHOUT_UID else uid), Outgoing.of(self._packer, event)

    def _send_checked(self, checked: list[tuple[Any, Outgoing]]) -> list[bool]:
        self._bus.settle()  # what an earlier outage left unknown, now Redis may answer
        results: list[bool] = []
        run: list[tuple[Any, Outgoing]] = []

        def flush() -> None:
            for start in range(0, len(run), BATCH_LIMIT):
                chunk = run[start : start + BATCH_LIMIT]
                reached = self._bus.push_many(chunk)
                for (uid, item), ok in zip(chunk, reached, strict=True):
                    if not ok:
                        self._lost(uid, [item], "the uid has no connection")
                results.extend(reached)
            run.clear()

        for uid, item in checked:
            if item.event[0] == CLOSE:  # after the pushes before it, before those after it
                flush()
                self._bus.close_uid(uid)
                results.append(True)
            else:
                run.append((uid, item))
        flush()
        return results

    def batch(self) -> EmitterBatch:
        """A batch to fill with ``send(uid, event)``; it is sent when the ``with`` block
        ends without an exception."""
        return EmitterBatch(self)

    def broadcast(self, event: Any) -> int:
        """Push ``event`` to every uid connected anywhere; returns how many it reached.

        The event is checked and packed once, first, whoever is connected."""
        item = Outgoing.of(self._packer, event)
        uids = self._bus.connected_uids()["any"]
        return sum(self._send_checked([(uid, item) for uid in uids]))

    @property
    def connected_uids(self) -> dict[str, frozenset[Any]]:
        return self._bus.connected_uids()

    def close(self) -> None:
        self._bus.settle(final=True)
        self._bus.close()

    def __enter__(self) -> Emitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EmitterBatch:
    """Events gathered for one :meth:`Emitter.send_many`; ``results`` once sent."""

    def __init__(self, emitter: Emitter) -> None:
        self._emitter = emitter
        self._items: list[tuple[Any, Outgoing]] = []
        self.results: list[bool] | None = None

    def send(self, uid: Any, event: Any) -> None:
        """Check and pack ``event`` now (a bad one raises here, not at the end) and keep it."""
        self._items.append(self._emitter._checked(uid, event))

    def __enter__(self) -> EmitterBatch:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.results = self._emitter._send_checked(self._items)
