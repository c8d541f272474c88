"""Clients' mailboxes in Redis: numbered pushes, the backlog, the delivered mark.

Keys (all under ``<channel>:``; ``U`` is the uid as JSON, ``C`` a client-id, ``W`` a worker)::

    clients:U      set of the uid's client-ids that have a mailbox
    mb:U:C         hash: epoch, seq (last number given), delivered
    log:U:C        stream: one entry per pushed event, id "<seq>-1", e = packed, i = push id
    at:U           hash: worker -> how many of its connections take the uid's pushes
    held:W         set of the uids in whose ``at:U`` worker W counts (for the reaper)

Every key expires ``window`` after the last use; the mailboxes of clients connected to a
live worker are kept by its heartbeat (:meth:`RedisMailboxes.touch_attached`).

A push whose answer was lost (the connection broke after the command went out, as when the
master dies) may or may not have been stored. It is kept as *unsure* and looked up by its
push id once Redis answers again (:meth:`RedisMailboxes.settle`): found, it is delivered
like any other; not found, it is reported lost. It is never delivered twice.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections.abc import Sequence
from typing import Any

import redis

from ..batching import Outgoing
from ..errors import BrokerUnavailable
from ..mailbox import Lost, start_position
from .redis_link import Link, never_sent, uid_key, uid_of
from .redis_scripts import DELIVERED, ENSURE, FOUND, HOLD, PUSH, READ, RELEASE_WORKER


class RedisMailboxes:
    def __init__(
        self,
        link: Link,
        *,
        prefix: str,
        packer: Any,
        backlog: int,
        window_s: float,
        worker_id: str,
        lost: Lost,
    ) -> None:
        self._link = link
        self._redis = link.redis
        self._prefix = prefix
        self._packer = packer
        self._backlog = backlog
        self._ttl_ms = int(window_s * 1000) + 60_000
        self._worker_id = worker_id
        self._lost = lost
        self._push = self._redis.register_script(PUSH)
        self._found = self._redis.register_script(FOUND)
        self._read = self._redis.register_script(READ)
        self._ensure = self._redis.register_script(ENSURE)
        self._delivered = self._redis.register_script(DELIVERED)
        self._hold = self._redis.register_script(HOLD)
        self._release = self._redis.register_script(RELEASE_WORKER)
        self._lock = threading.Lock()
        self._attached: dict[tuple[str, str], int] = {}
        self._held: dict[str, int] = {}
        self._batches = itertools.count(1)
        #: Pushes that may or may not be in Redis: (uid key, push id, uid, event).
        self._unsure: list[tuple[str, str, Any, Outgoing]] = []

    def _mb(self, u: str, client_id: str) -> str:
        return f"{self._prefix}mb:{u}:{client_id}"

    def _log(self, u: str, client_id: str) -> str:
        return f"{self._prefix}log:{u}:{client_id}"

    def _clients(self, u: str) -> str:
        return f"{self._prefix}clients:{u}"

    def ensure(self, uid: Any, client_id: str) -> None:
        u = uid_key(uid)
        try:
            self._ensure(
                keys=[self._mb(u, client_id), self._clients(u), self._log(u, client_id)],
                args=[secrets.token_hex(4), client_id, self._ttl_ms],
            )
        except redis.RedisError as exc:
            self._link.down("ensure_mailbox", exc)

    def knows(self, uid: Any, client_id: str) -> bool:
        """Whether any worker has seen this client (its mailbox exists)."""
        try:
            return bool(self._redis.exists(self._mb(uid_key(uid), client_id)))
        except redis.RedisError as exc:
            self._link.down("knows", exc)
            return False

    # ------------------------------------------------------------------ pushing

    def push_many(self, items: Sequence[tuple[Any, Outgoing]]) -> list[bool]:
        """Store each ``(uid, event)`` in its uid's mailboxes, in order, with one script;
        per item, whether a mailbox took it (an unsure one counts as taken).

        Raises :class:`BrokerUnavailable` when the script cannot have run."""
        if not items:
            return []
        base = f"{self._worker_id}.{next(self._batches)}."
        keyed = [(uid_key(uid), uid, item) for uid, item in items]
        args: list[Any] = [self._prefix, self._backlog, self._ttl_ms, self._worker_id, base]
        for u, _, item in keyed:
            args += (u, item.packed)
        try:
            reached = self._push(args=args)
        except redis.RedisError as exc:
            self._link.down("push", exc)
            if never_sent(exc):
                raise BrokerUnavailable(str(exc)) from exc
            with self._lock:
                self._unsure += [
                    (u, f"{base}{k}", uid, item) for k, (u, uid, item) in enumerate(keyed, 1)
                ]
            return [True] * len(items)
        return [int(n) > 0 for n in reached]

    def push(self, uid: Any, item: Outgoing) -> bool:
        return self.push_many([(uid, item)])[0]

    def settle(self, *, final: bool = False) -> None:
        """Look up the unsure pushes; report those that never got in. Raises when Redis
        does not answer, unless ``final`` (the caller is leaving): then each is reported
        as possibly undelivered."""
        with self._lock:
            unsure, self._unsure = self._unsure, []
        if not unsure:
            return
        args: list[Any] = [self._prefix, self._backlog]
        for u, push_id, _, _ in unsure:
            args += (u, push_id)
        try:
            found = self._found(args=args)
        except redis.RedisError:
            if final:
                for _, _, uid, item in unsure:
                    self._lost(uid, [item], "the message broker failed; the push may be lost")
                return
            with self._lock:
                self._unsure[:0] = unsure
            raise
        for (_, _, uid, item), hit in zip(unsure, found, strict=True):
            if not int(hit):
                self._lost(uid, [item], "the message broker failed before storing the push")

    # ------------------------------------------------------------------ reading

    def position(self, uid: Any, client_id: str, reported: tuple[str, int] | None) -> int:
        u = uid_key(uid)
        self.ensure(uid, client_id)
        try:
            epoch, seq, delivered = self._redis.hmget(
                self._mb(u, client_id), "epoch", "seq", "delivered"
            )
        except redis.RedisError as exc:
            self._link.down("position", exc)
            return 0
        return start_position(reported, str(epoch or ""), int(seq or 0), int(delivered or 0))

    def read(self, uid: Any, client_id: str, after: int) -> tuple[str, list[tuple[int, Outgoing]]]:
        u = uid_key(uid)
        try:
            epoch, entries = self._read(
                keys=[self._mb(u, client_id), self._log(u, client_id)],
                args=[after, self._backlog],
            )
        except redis.RedisError as exc:
            self._link.down("read", exc)
            return "", []
        events = []
        packer = self._packer
        for entry_id, fields in entries:
            seq = int(entry_id.split("-", 1)[0])
            events.append((seq, Outgoing.unread(packer, fields[fields.index("e") + 1])))
        return epoch, events

    def delivered(self, uid: Any, client_id: str, seq: int) -> None:
        try:
            self._delivered(keys=[self._mb(uid_key(uid), client_id)], args=[seq])
        except redis.RedisError as exc:
            self._link.down("delivered", exc)

    # ------------------------------------------------------------------ connections here

    def attach(self, uid: Any, client_id: str) -> None:
        """A connection here takes the client's pushes: this worker must be told of them
        (registered in ``at:U`` before the caller reads the backlog)."""
        u = uid_key(uid)
        with self._lock:
            self._attached[(u, client_id)] = self._attached.get((u, client_id), 0) + 1
            self._held[u] = self._held.get(u, 0) + 1
            first = self._held[u] == 1
        if first:
            self._count_holder(u, +1)

    def detach(self, uid: Any, client_id: str) -> None:
        u = uid_key(uid)
        with self._lock:
            n = self._attached.get((u, client_id), 0) - 1
            if n > 0:
                self._attached[(u, client_id)] = n
            else:
                self._attached.pop((u, client_id), None)
            held = self._held.get(u, 0) - 1
            if held > 0:
                self._held[u] = held
            else:
                self._held.pop(u, None)
        if held == 0:
            self._count_holder(u, -1)
        self._touch([(u, client_id)])

    def _count_holder(self, u: str, delta: int) -> None:
        try:
            self._hold(
                keys=[f"{self._prefix}at:{u}", f"{self._prefix}held:{self._worker_id}"],
                args=[self._worker_id, u, delta, self._ttl_ms],
            )
        except redis.RedisError as exc:
            self._link.down("attach", exc)

    def release(self, worker_id: str) -> None:
        """Worker ``worker_id`` is gone (dead, or this one stopping): stop telling it."""
        self._release(keys=[f"{self._prefix}held:{worker_id}"], args=[self._prefix, worker_id])

    def attached_uids(self) -> set[Any]:
        with self._lock:
            return {uid_of(u) for u in self._held}

    def touch_attached(self) -> None:
        """Mailboxes in use here must not expire: push their deadline back."""
        with self._lock:
            attached = list(self._attached)
        self._touch(attached)

    def _touch(self, keys: list[tuple[str, str]]) -> None:
        if not keys:
            return
        try:
            pipe = self._redis.pipeline(transaction=False)
            for u, client_id in keys:
                for key in (self._mb(u, client_id), self._log(u, client_id), self._clients(u)):
                    pipe.pexpire(key, self._ttl_ms)
                pipe.pexpire(f"{self._prefix}at:{u}", self._ttl_ms)
            pipe.execute()
        except redis.RedisError as exc:
            self._link.down("refresh", exc)

    def reregister(self) -> None:
        """A restarted Redis has forgotten the mailboxes of our clients and where they
        are connected: make them again."""
        with self._lock:
            attached = list(self._attached)
            held = list(self._held)
        for u, client_id in attached:
            self.ensure(uid_of(u), client_id)
        try:
            pipe = self._redis.pipeline(transaction=False)
            for u in held:
                pipe.hset(f"{self._prefix}at:{u}", self._worker_id, 1)
                pipe.sadd(f"{self._prefix}held:{self._worker_id}", u)
            pipe.execute()
        except redis.RedisError as exc:
            self._link.down("reregister", exc)
