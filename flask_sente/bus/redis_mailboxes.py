"""Clients' mailboxes in Redis: numbered pushes, the backlog, the delivered mark.

Keys (all under ``<channel>:``; ``U`` is the uid as JSON, ``C`` a client-id)::

    clients:U      set of the uid's client-ids that have a mailbox
    mb:U:C         hash: epoch, seq (last number given), delivered
    log:U:C        stream: one entry per pushed event, id "<seq>-1", field e = packed

Every key expires ``window`` after the last use; the mailboxes of clients connected to a
live worker are kept by its heartbeat (:meth:`RedisMailboxes.touch_attached`).
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

import redis

from ..errors import BrokerUnavailable
from ..mailbox import start_position
from .redis_link import Link, uid_key, uid_of
from .redis_scripts import DELIVERED, ENSURE, PUSH


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
    ) -> None:
        self._link = link
        self._redis = link.redis
        self._prefix = prefix
        self._packer = packer
        self._backlog = backlog
        self._ttl_ms = int(window_s * 1000) + 60_000
        self._worker_id = worker_id
        self._push = self._redis.register_script(PUSH)
        self._ensure = self._redis.register_script(ENSURE)
        self._delivered = self._redis.register_script(DELIVERED)
        self._lock = threading.Lock()
        self._attached: dict[tuple[str, str], int] = {}

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

    def push(self, uid: Any, event: list[Any]) -> bool:
        u = uid_key(uid)
        packed = self._packer.pack(event)
        try:
            n = self._push(
                keys=[self._clients(u)],
                args=[self._prefix, u, packed, self._backlog, self._ttl_ms, self._worker_id],
            )
        except redis.RedisError as exc:
            self._link.down("push", exc)
            raise BrokerUnavailable(str(exc)) from exc
        return int(n) > 0

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

    def read(self, uid: Any, client_id: str, after: int) -> tuple[str, list[tuple[int, Any]]]:
        u = uid_key(uid)
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.hget(self._mb(u, client_id), "epoch")
            pipe.xrange(self._log(u, client_id), f"({after}-1", "+", count=self._backlog)
            epoch, entries = pipe.execute()
        except redis.RedisError as exc:
            self._link.down("read", exc)
            return "", []
        events = []
        for entry_id, fields in entries:
            seq = int(entry_id.split("-", 1)[0])
            events.append((seq, self._packer.unpack(fields["e"])))
        return epoch or "", events

    def delivered(self, uid: Any, client_id: str, seq: int) -> None:
        try:
            self._delivered(keys=[self._mb(uid_key(uid), client_id)], args=[seq])
        except redis.RedisError as exc:
            self._link.down("delivered", exc)

    def attach(self, uid: Any, client_id: str) -> None:
        key = (uid_key(uid), client_id)
        with self._lock:
            self._attached[key] = self._attached.get(key, 0) + 1

    def detach(self, uid: Any, client_id: str) -> None:
        key = (uid_key(uid), client_id)
        with self._lock:
            n = self._attached.get(key, 0) - 1
            if n > 0:
                self._attached[key] = n
            else:
                self._attached.pop(key, None)
        self._touch([key])

    def attached_uids(self) -> set[Any]:
        with self._lock:
            return {uid_of(u) for u, _ in self._attached}

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
            pipe.execute()
        except redis.RedisError as exc:
            self._link.down("refresh", exc)

    def reregister(self) -> None:
        """A restarted Redis has forgotten the mailboxes of our clients: make them again."""
        with self._lock:
            attached = list(self._attached)
        for u, client_id in attached:
            self.ensure(uid_of(u), client_id)
