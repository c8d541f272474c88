"""Pushing from processes that are not web servers: Celery tasks, cron jobs, scripts.

::

    from flask_sente import Emitter

    emitter = Emitter("redis://localhost:6379/0")
    emitter.send("alice", ["report/ready", {"id": 42}])

The emitter writes to the same Redis mailboxes as the web workers (``message_queue``), so
its pushes reach the uid's connections on every worker, in order, and wait for clients
between two polls like any other push. It needs no Flask app. Use the server's ``packer``
and ``channel`` if you changed them.
"""

from __future__ import annotations

import logging
from typing import Any

from .batching import Outgoing
from .bus.redis import RedisBus
from .errors import InvalidUid
from .packers import Packer, get_packer
from .protocol import ALL_USERS_WITHOUT_UID, CLOSE, NIL_UID
from .typecheck import check_arguments

logger = logging.getLogger("flask_sente.emitter")


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
        if uid is None:
            raise InvalidUid('use "sente/all-users-without-uid" to reach clients without a uid')
        return self._send(uid, Outgoing.of(self._packer, event))

    def broadcast(self, event: Any) -> int:
        """Push ``event`` to every uid connected anywhere; returns how many it reached.

        The event is checked and packed once, first, whoever is connected."""
        item = Outgoing.of(self._packer, event)
        return sum(self._send(uid, item) for uid in self._bus.connected_uids()["any"])

    def _send(self, uid: Any, item: Outgoing) -> bool:
        if uid == ALL_USERS_WITHOUT_UID:
            uid = NIL_UID
        if item.event[0] == CLOSE:
            self._bus.close_uid(uid)
            return True
        if self._bus.push(uid, item):
            return True
        self._lost(uid, [item.event], "the uid has no connection")
        return False

    @property
    def connected_uids(self) -> dict[str, frozenset[Any]]:
        return self._bus.connected_uids()

    def close(self) -> None:
        self._bus.close()

    def __enter__(self) -> Emitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
