"""The Redis bus: mailboxes and presence shared by every worker of every machine.

Three parts share one :class:`~flask_sente.bus.redis_link.Link` (a bounded pool):

- :mod:`~flask_sente.bus.redis_mailboxes`: each client's numbered pushes and backlog;
- :mod:`~flask_sente.bus.redis_presence`: which uids are open where, worker heartbeats,
  and the reaping of dead workers' uids;
- :mod:`~flask_sente.bus.redis_notifier`: pub/sub between workers.

A push (or a batch of them, :meth:`RedisBus.push_many`) runs one Lua script that appends
each event (packed once) to the mailbox of every client of its uid and notifies only the
workers holding a connection of the uid; each of those workers' subscriber thread then
flushes its connections of that uid.

Redis connections per worker are bounded: one pool of at most ``max_connections`` (16),
the subscription included, however many client connections the worker holds. When
Redis is unreachable the worker keeps serving its own clients (pushes go straight to its
local connections, without recovery), logs it, and reconnects with backoff.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Sequence
from typing import Any

import redis

from ..batching import Outgoing
from ..errors import ConfigError
from ..mailbox import Lost
from . import BusListener, ConnectedUids
from . import redis_presence as presence
from .redis_link import Link
from .redis_mailboxes import RedisMailboxes
from .redis_notifier import Notifier
from .redis_presence import DEAD_WORKER_BOUND_S, RedisPresence

logger = logging.getLogger("flask_sente.bus.redis")


class RedisBus:
    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        backlog: int,
        window_s: float,
        lost: Lost,
        packer: Any,
        channel: str = "flask_sente",
        max_connections: int = 16,
    ) -> None:
        if packer.binary:
            raise ConfigError("the Redis bus stores packed events as text; use a text packer")
        prefix = channel + ":"
        self.worker_id = secrets.token_hex(6)
        self._lost = lost
        self._link = Link(url, max_connections=max_connections)
        self.mailboxes = RedisMailboxes(
            self._link,
            prefix=prefix,
            packer=packer,
            backlog=backlog,
            window_s=window_s,
            worker_id=self.worker_id,
            lost=lost,
        )
        self.presence = RedisPresence(self._link, prefix=prefix, worker_id=self.worker_id)
        self.notifier = Notifier(
            self._link,
            prefix=prefix,
            worker_id=self.worker_id,
            on_presence=self.presence.changed,
            on_back=self._resync,
        )
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # ------------------------------------------------------------------ mailboxes

    def ensure_mailbox(self, uid: Any, client_id: str) -> None:
        self.mailboxes.ensure(uid, client_id)

    def knows(self, uid: Any, client_id: str) -> bool:
        return self.mailboxes.knows(uid, client_id)

    def push(self, uid: Any, item: Outgoing) -> bool:
        return self.mailboxes.push(uid, item)

    def push_many(self, items: Sequence[tuple[Any, Outgoing]]) -> list[bool]:
        return self.mailboxes.push_many(items)

    def settle(self, *, final: bool = False) -> None:
        """Report the pushes whose fate an outage left unknown and that did not get in
        (with ``final``, also those it cannot tell about now)."""
        try:
            self.mailboxes.settle(final=final)
        except redis.RedisError as exc:
            self._link.down("settle", exc)

    def close_uid(self, uid: Any) -> None:
        self.notifier.close_uid(uid)

    def position(self, uid: Any, client_id: str, reported: tuple[str, int] | None) -> int:
        return self.mailboxes.position(uid, client_id, reported)

    def read(self, uid: Any, client_id: str, after: int) -> tuple[str, list[tuple[int, Outgoing]]]:
        return self.mailboxes.read(uid, client_id, after)

    def delivered(self, uid: Any, client_id: str, seq: int) -> None:
        self.mailboxes.delivered(uid, client_id, seq)

    def attach(self, uid: Any, client_id: str) -> None:
        self.mailboxes.attach(uid, client_id)

    def detach(self, uid: Any, client_id: str) -> None:
        self.mailboxes.detach(uid, client_id)

    # ------------------------------------------------------------------ presence

    def opened(self, uid: Any, kind: str) -> bool:
        return self.presence.opened(uid, kind)

    def closed(self, uid: Any, kind: str) -> bool:
        return self.presence.closed(uid, kind)

    def connected_uids(self) -> ConnectedUids:
        return self.presence.connected_uids()

    # ------------------------------------------------------------------ lifecycle

    def start(self, listener: BusListener) -> None:
        self.notifier.start(listener)
        self._beat = threading.Thread(
            target=self._heartbeat, name="flask_sente-redis-beat", daemon=True
        )
        self._beat.start()

    def health(self) -> dict[str, Any]:
        link = self._link
        return {
            "bus": "redis",
            "ok": link.up,
            "worker": self.worker_id,
            "reconnects": link.reconnects,
            "last_error": link.last_error,
        }

    def close(self) -> None:
        self._stop.set()
        self.notifier.stop()
        if self._beat is not None:
            self._beat.join(5)
        with contextlib.suppress(redis.RedisError):
            self.mailboxes.release(self.worker_id)
            self.presence.leave()
        self._link.close()

    def _resync(self) -> None:
        """After an outage: what happened while we were deaf is in Redis; catch up."""
        self.mailboxes.reregister()
        self.presence.reregister()
        self.mailboxes.settle()
        listener = self.notifier.listener
        if listener is not None:
            for uid in self.mailboxes.attached_uids():
                listener.remote_push(uid)
            listener.presence_changed()

    def _heartbeat(self) -> None:
        next_reap = time.monotonic() + presence.REAP_EVERY_S
        while not self._stop.is_set():
            try:
                self.presence.beat()
                self.mailboxes.touch_attached()
                if time.monotonic() >= next_reap:
                    next_reap = time.monotonic() + presence.REAP_EVERY_S
                    listener = self.notifier.listener
                    if listener is not None:
                        for worker in self.presence.reap(listener.uid_closed_elsewhere):
                            self.mailboxes.release(worker)
            except redis.RedisError as exc:
                self._link.down("heartbeat", exc)
            except Exception:  # a dead heartbeat would get this worker's uids reaped
                logger.exception("the heartbeat or the reaper failed; going on")
            self._stop.wait(presence.HEARTBEAT_S)


__all__ = ["DEAD_WORKER_BOUND_S", "RedisBus"]
