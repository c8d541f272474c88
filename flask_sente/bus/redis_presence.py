"""Presence in Redis: which uids are open where, counted so each event fires once.

Keys (under ``<channel>:``; ``U`` is the uid as JSON, ``W`` a worker id)::

    pw:W:KIND            set of uids open on worker W for ws / ajax
    pc:KIND, pc:any      hash: uid -> how many (worker, kind) pairs have it open
    workers, alive:W     the workers, and a heartbeat key per worker (expires)

Presence changes are counted atomically, so uidport-open fires on the worker whose
connection made the uid appear in the cluster, and uidport-close on the one whose close
made it disappear. A worker that dies stops refreshing ``alive:W``; within
``DEAD_WORKER_BOUND_S`` another worker removes its uids (firing uidport-close where that
empties them).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import redis

from . import ConnectedUids
from .redis_link import Link, uid_key, uid_of
from .redis_scripts import CLOSE, OPEN

logger = logging.getLogger("flask_sente.bus.redis")

HEARTBEAT_S = 3.0
ALIVE_TTL_S = 10.0
REAP_EVERY_S = 5.0
#: How long a dead worker's uids stay "connected", at most.
DEAD_WORKER_BOUND_S = ALIVE_TTL_S + REAP_EVERY_S


class RedisPresence:
    def __init__(self, link: Link, *, prefix: str, worker_id: str) -> None:
        self._link = link
        self._redis = link.redis
        self._prefix = prefix
        self._events_channel = prefix + "events"
        self._worker_id = worker_id
        self._open = self._redis.register_script(OPEN)
        self._close = self._redis.register_script(CLOSE)
        self._lock = threading.Lock()
        self._local_open: dict[str, set[Any]] = {"ws": set(), "ajax": set()}
        self._snapshot: ConnectedUids | None = None

    def _keys(self, kind: str, worker_id: str | None = None) -> list[str]:
        w = worker_id or self._worker_id
        return [f"{self._prefix}pw:{w}:{kind}", f"{self._prefix}pc:{kind}", f"{self._prefix}pc:any"]

    def opened(self, uid: Any, kind: str) -> bool:
        with self._lock:
            was_local = uid in self._local_open["ws"] or uid in self._local_open["ajax"]
            self._local_open[kind].add(uid)
            self._snapshot = None
        try:
            first = self._open(
                keys=self._keys(kind), args=[uid_key(uid), self._events_channel, self._worker_id]
            )
            return bool(first)
        except redis.RedisError as exc:
            self._link.down("presence", exc)
            return not was_local

    def closed(self, uid: Any, kind: str) -> bool:
        with self._lock:
            self._local_open[kind].discard(uid)
            still_local = uid in self._local_open["ws"] or uid in self._local_open["ajax"]
            self._snapshot = None
        try:
            last = self._close(
                keys=self._keys(kind), args=[uid_key(uid), self._events_channel, self._worker_id]
            )
            return bool(last)
        except redis.RedisError as exc:
            self._link.down("presence", exc)
            return not still_local

    def changed(self) -> None:
        """Another worker changed presence: the next ``connected_uids`` asks Redis."""
        with self._lock:
            self._snapshot = None

    def connected_uids(self) -> ConnectedUids:
        with self._lock:
            if self._snapshot is not None:
                return self._snapshot
        try:
            pipe = self._redis.pipeline(transaction=False)
            for kind in ("ws", "ajax", "any"):
                pipe.hkeys(f"{self._prefix}pc:{kind}")
            ws, ajax, any_ = ({uid_of(k) for k in keys} for keys in pipe.execute())
            snapshot = {"ws": frozenset(ws), "ajax": frozenset(ajax), "any": frozenset(any_)}
        except redis.RedisError as exc:
            self._link.down("connected_uids", exc)
            with self._lock:
                ws_l, ajax_l = (
                    frozenset(self._local_open["ws"]),
                    frozenset(self._local_open["ajax"]),
                )
            return {"ws": ws_l, "ajax": ajax_l, "any": ws_l | ajax_l}
        with self._lock:
            self._snapshot = snapshot
        return snapshot

    def reregister(self) -> None:
        """A restarted Redis has forgotten our open uids: count them again."""
        with self._lock:
            self._snapshot = None
            open_here = {kind: list(uids) for kind, uids in self._local_open.items()}
        for kind, uids in open_here.items():
            for uid in uids:
                self._open(
                    keys=self._keys(kind),
                    args=[uid_key(uid), self._events_channel, self._worker_id],
                )

    # ------------------------------------------------------------------ liveness

    def beat(self) -> None:
        """Say this worker is alive (for ``ALIVE_TTL_S``)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.sadd(f"{self._prefix}workers", self._worker_id)
        pipe.set(f"{self._prefix}alive:{self._worker_id}", "1", px=int(ALIVE_TTL_S * 1000))
        pipe.execute()

    def leave(self) -> None:
        """Stopping cleanly: let a live worker reap our uids now, not after the expiry."""
        self._redis.delete(f"{self._prefix}alive:{self._worker_id}")

    def reap(self, closed_elsewhere: Callable[[Any], None]) -> list[str]:
        """Remove the uids of workers whose heartbeat stopped (one reaper at a time);
        returns those workers."""
        if not self._redis.set(f"{self._prefix}reaper", self._worker_id, nx=True, px=4000):
            return []
        dead = []
        for worker in map(str, self._redis.smembers(f"{self._prefix}workers")):
            if worker == self._worker_id or self._redis.exists(f"{self._prefix}alive:{worker}"):
                continue
            emptied = []
            for kind in ("ws", "ajax"):
                keys = self._keys(kind, worker)
                for u in map(str, self._redis.smembers(keys[0])):
                    if self._close(keys=keys, args=[u, self._events_channel, self._worker_id]):
                        emptied.append(uid_of(u))
            self._redis.srem(f"{self._prefix}workers", worker)
            dead.append(worker)
            logger.warning(
                "worker %s stopped answering; its %d uid(s) left the cluster", worker, len(emptied)
            )
            for uid in emptied:
                closed_elsewhere(uid)
        return dead
