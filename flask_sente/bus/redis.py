"""The Redis bus: mailboxes and presence shared by every worker of every machine.

Keys (all under ``<channel>:``; ``U`` is the uid as JSON, ``C`` a client-id)::

    clients:U            set of the uid's client-ids that have a mailbox
    mb:U:C               hash: epoch, seq (last number given), delivered
    log:U:C              stream: one entry per pushed event, id "<seq>-1", field e = packed
    pw:W:KIND            set of uids open on worker W for ws / ajax
    pc:KIND, pc:any      hash: uid -> how many (worker, kind) pairs have it open
    workers, alive:W     the workers, and a heartbeat key per worker (expires)

A push runs one Lua script that appends the event (packed once) to the mailbox of every
client of the uid and publishes ``push <worker> U`` on ``<channel>:events``; each worker's
subscriber thread then flushes its own connections of that uid. Presence changes are
counted atomically, so uidport-open fires on the worker whose connection made the uid
appear in the cluster, and uidport-close on the one whose close made it disappear. A
worker that dies stops refreshing ``alive:W``; within ``DEAD_WORKER_BOUND_S`` another
worker removes its uids (firing uidport-close where that empties them).

Redis connections per worker are bounded: one pool of at most ``max_connections`` (16),
the subscription included, however many client connections the worker holds. When
Redis is unreachable the worker keeps serving its own clients (pushes go straight to its
local connections, without recovery), logs it, and reconnects with backoff.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import threading
import time
from typing import Any

import redis

from ..batching import Outgoing
from ..errors import BrokerUnavailable, ConfigError
from ..mailbox import Lost, start_position
from . import BusListener, ConnectedUids
from .redis_scripts import CLOSE, DELIVERED, ENSURE, OPEN, PUSH

logger = logging.getLogger("flask_sente.bus.redis")

HEARTBEAT_S = 3.0
ALIVE_TTL_S = 10.0
REAP_EVERY_S = 5.0
#: How long a dead worker's uids stay "connected", at most.
DEAD_WORKER_BOUND_S = ALIVE_TTL_S + REAP_EVERY_S


def _uid_key(uid: Any) -> str:
    return json.dumps(uid, separators=(",", ":"), ensure_ascii=False)


def _uid_of(key: str) -> Any:
    return json.loads(key)


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
        self._url = url
        self._prefix = channel + ":"
        self._events_channel = self._prefix + "events"
        self._packer = packer
        self._backlog = backlog
        self._ttl_ms = int(window_s * 1000) + 60_000
        self._lost = lost
        self.worker_id = secrets.token_hex(6)
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=5,
            socket_timeout=5,
            socket_connect_timeout=2,
            decode_responses=True,
        )
        self._redis = redis.Redis(connection_pool=pool)
        self._push = self._redis.register_script(PUSH)
        self._ensure = self._redis.register_script(ENSURE)
        self._delivered = self._redis.register_script(DELIVERED)
        self._open = self._redis.register_script(OPEN)
        self._close = self._redis.register_script(CLOSE)
        self._lock = threading.Lock()
        self._attached: dict[tuple[str, str], int] = {}
        self._local_open: dict[str, set[Any]] = {"ws": set(), "ajax": set()}
        self._snapshot: ConnectedUids | None = None
        self._listener: BusListener | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.up = False
        self.last_error: str | None = None
        self.reconnects = 0

    # ------------------------------------------------------------------ keys

    def _mb(self, u: str, client_id: str) -> str:
        return f"{self._prefix}mb:{u}:{client_id}"

    def _log(self, u: str, client_id: str) -> str:
        return f"{self._prefix}log:{u}:{client_id}"

    def _clients(self, u: str) -> str:
        return f"{self._prefix}clients:{u}"

    def _down(self, what: str, exc: Exception) -> None:
        if self.up or self.last_error is None:
            logger.warning("Redis unreachable (%s): %s; retrying with backoff", what, exc)
        self.up = False
        self.last_error = f"{what}: {exc}"

    # ------------------------------------------------------------------ mailboxes

    def ensure_mailbox(self, uid: Any, client_id: str) -> None:
        u = _uid_key(uid)
        try:
            self._ensure(
                keys=[self._mb(u, client_id), self._clients(u), self._log(u, client_id)],
                args=[secrets.token_hex(4), client_id, self._ttl_ms],
            )
        except redis.RedisError as exc:
            self._down("ensure_mailbox", exc)

    def knows(self, uid: Any, client_id: str) -> bool:
        """Whether any worker has seen this client (its mailbox exists)."""
        try:
            return bool(self._redis.exists(self._mb(_uid_key(uid), client_id)))
        except redis.RedisError as exc:
            self._down("knows", exc)
            return False

    def push(self, uid: Any, item: Outgoing) -> bool:
        u = _uid_key(uid)
        try:
            n = self._push(
                keys=[self._clients(u)],
                args=[self._prefix, u, item.packed, self._backlog, self._ttl_ms, self.worker_id],
            )
        except redis.RedisError as exc:
            self._down("push", exc)
            raise BrokerUnavailable(str(exc)) from exc
        return int(n) > 0

    def close_uid(self, uid: Any) -> None:
        try:
            self._redis.publish(self._events_channel, f"close {self.worker_id} {_uid_key(uid)}")
        except redis.RedisError as exc:
            self._down("close_uid", exc)

    def position(self, uid: Any, client_id: str, reported: tuple[str, int] | None) -> int:
        u = _uid_key(uid)
        self.ensure_mailbox(uid, client_id)
        try:
            epoch, seq, delivered = self._redis.hmget(
                self._mb(u, client_id), "epoch", "seq", "delivered"
            )
        except redis.RedisError as exc:
            self._down("position", exc)
            return 0
        return start_position(reported, str(epoch or ""), int(seq or 0), int(delivered or 0))

    def read(self, uid: Any, client_id: str, after: int) -> tuple[str, list[tuple[int, Outgoing]]]:
        u = _uid_key(uid)
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.hget(self._mb(u, client_id), "epoch")
            pipe.xrange(self._log(u, client_id), f"({after}-1", "+", count=self._backlog)
            epoch, entries = pipe.execute()
        except redis.RedisError as exc:
            self._down("read", exc)
            return "", []
        events = []
        for entry_id, fields in entries:
            seq = int(entry_id.split("-", 1)[0])
            events.append((seq, Outgoing.unread(self._packer, fields["e"])))
        return epoch or "", events

    def delivered(self, uid: Any, client_id: str, seq: int) -> None:
        try:
            self._delivered(keys=[self._mb(_uid_key(uid), client_id)], args=[seq])
        except redis.RedisError as exc:
            self._down("delivered", exc)

    def attach(self, uid: Any, client_id: str) -> None:
        key = (_uid_key(uid), client_id)
        with self._lock:
            self._attached[key] = self._attached.get(key, 0) + 1

    def detach(self, uid: Any, client_id: str) -> None:
        key = (_uid_key(uid), client_id)
        with self._lock:
            n = self._attached.get(key, 0) - 1
            if n > 0:
                self._attached[key] = n
            else:
                self._attached.pop(key, None)
        self._touch([key])

    def _touch(self, keys: list[tuple[str, str]]) -> None:
        """Mailboxes in use here must not expire: push their deadline back."""
        if not keys:
            return
        try:
            pipe = self._redis.pipeline(transaction=False)
            for u, client_id in keys:
                for key in (self._mb(u, client_id), self._log(u, client_id), self._clients(u)):
                    pipe.pexpire(key, self._ttl_ms)
            pipe.execute()
        except redis.RedisError as exc:
            self._down("refresh", exc)

    # ------------------------------------------------------------------ presence

    def _presence_keys(self, kind: str, worker_id: str | None = None) -> list[str]:
        w = worker_id or self.worker_id
        return [f"{self._prefix}pw:{w}:{kind}", f"{self._prefix}pc:{kind}", f"{self._prefix}pc:any"]

    def opened(self, uid: Any, kind: str) -> bool:
        with self._lock:
            was_local = uid in self._local_open["ws"] or uid in self._local_open["ajax"]
            self._local_open[kind].add(uid)
            self._snapshot = None
        try:
            first = self._open(
                keys=self._presence_keys(kind),
                args=[_uid_key(uid), self._events_channel, self.worker_id],
            )
            return bool(first)
        except redis.RedisError as exc:
            self._down("presence", exc)
            return not was_local

    def closed(self, uid: Any, kind: str) -> bool:
        with self._lock:
            self._local_open[kind].discard(uid)
            still_local = uid in self._local_open["ws"] or uid in self._local_open["ajax"]
            self._snapshot = None
        try:
            last = self._close(
                keys=self._presence_keys(kind),
                args=[_uid_key(uid), self._events_channel, self.worker_id],
            )
            return bool(last)
        except redis.RedisError as exc:
            self._down("presence", exc)
            return not still_local

    def connected_uids(self) -> ConnectedUids:
        with self._lock:
            if self._snapshot is not None:
                return self._snapshot
        try:
            pipe = self._redis.pipeline(transaction=False)
            for kind in ("ws", "ajax", "any"):
                pipe.hkeys(f"{self._prefix}pc:{kind}")
            ws, ajax, any_ = ({_uid_of(k) for k in keys} for keys in pipe.execute())
            snapshot = {"ws": frozenset(ws), "ajax": frozenset(ajax), "any": frozenset(any_)}
        except redis.RedisError as exc:
            self._down("connected_uids", exc)
            with self._lock:
                ws_l, ajax_l = (
                    frozenset(self._local_open["ws"]),
                    frozenset(self._local_open["ajax"]),
                )
            return {"ws": ws_l, "ajax": ajax_l, "any": ws_l | ajax_l}
        with self._lock:
            self._snapshot = snapshot
        return snapshot

    # ------------------------------------------------------------------ lifecycle

    def start(self, listener: BusListener) -> None:
        self._listener = listener
        for target, name in ((self._subscribe, "sub"), (self._heartbeat, "beat")):
            thread = threading.Thread(target=target, name=f"flask_sente-redis-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def health(self) -> dict[str, Any]:
        return {
            "bus": "redis",
            "ok": self.up,
            "worker": self.worker_id,
            "reconnects": self.reconnects,
            "last_error": self.last_error,
        }

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        with contextlib.suppress(redis.RedisError):
            # let a live worker reap our uids now rather than after the heartbeat expires
            self._redis.delete(f"{self._prefix}alive:{self.worker_id}")
        self._redis.close()

    def _subscribe(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self._events_channel)
                if not self.up:
                    self.up = True
                    if self.last_error is not None:
                        # only after an outage: re-registering on the first subscription
                        # would race the worker's own first presence calls
                        self.reconnects += 1
                        logger.warning("Redis reachable again; resubscribed")
                        self._resync()
                backoff = 0.1
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    try:  # a dead subscriber would leave this worker deaf to every push
                        if message is not None:
                            self._on_message(str(message["data"]))
                    except Exception:
                        logger.exception("cannot handle %r; the subscription goes on", message)
            except redis.RedisError as exc:
                self._down("subscription", exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(redis.RedisError):
                    pubsub.close()

    def _resync(self) -> None:
        """After (re)subscribing: what happened while we were deaf is in Redis; catch up."""
        with self._lock:
            self._snapshot = None
            attached = list(self._attached)
            open_here = {kind: list(uids) for kind, uids in self._local_open.items()}
        # a restarted Redis has forgotten us: our clients' mailboxes and our open uids
        for u, client_id in attached:
            self.ensure_mailbox(_uid_of(u), client_id)
        for kind, uids in open_here.items():
            for uid in uids:
                self._open(
                    keys=self._presence_keys(kind),
                    args=[_uid_key(uid), self._events_channel, self.worker_id],
                )
        listener = self._listener
        if listener is not None:
            for uid in {_uid_of(u) for u, _ in attached}:
                listener.remote_push(uid)
            listener.presence_changed()

    def _on_message(self, data: str) -> None:
        kind, origin, rest = ([*data.split(" ", 2), "", ""])[:3]
        listener = self._listener
        if listener is None:
            return
        if kind == "presence":
            with self._lock:
                self._snapshot = None
            listener.presence_changed()
        elif origin == self.worker_id:
            return  # our own push or close: already handled here
        elif kind == "push":
            listener.remote_push(_uid_of(rest))
        elif kind == "close":
            listener.remote_close(_uid_of(rest))

    def _heartbeat(self) -> None:
        next_reap = time.monotonic() + REAP_EVERY_S
        while not self._stop.is_set():
            try:
                pipe = self._redis.pipeline(transaction=False)
                pipe.sadd(f"{self._prefix}workers", self.worker_id)
                pipe.set(f"{self._prefix}alive:{self.worker_id}", "1", px=int(ALIVE_TTL_S * 1000))
                pipe.execute()
                with self._lock:
                    attached = list(self._attached)
                self._touch(attached)
                if time.monotonic() >= next_reap:
                    next_reap = time.monotonic() + REAP_EVERY_S
                    self._reap()
            except redis.RedisError as exc:
                self._down("heartbeat", exc)
            except Exception:  # a dead heartbeat would get this worker's uids reaped
                logger.exception("the heartbeat or the reaper failed; going on")
            self._stop.wait(HEARTBEAT_S)

    def _reap(self) -> None:
        """Remove the uids of workers whose heartbeat stopped (one reaper at a time)."""
        if not self._redis.set(f"{self._prefix}reaper", self.worker_id, nx=True, px=4000):
            return
        for worker in map(str, self._redis.smembers(f"{self._prefix}workers")):
            if worker == self.worker_id or self._redis.exists(f"{self._prefix}alive:{worker}"):
                continue
            emptied = []
            for kind in ("ws", "ajax"):
                keys = self._presence_keys(kind, worker)
                for u in map(str, self._redis.smembers(keys[0])):
                    if self._close(keys=keys, args=[u, self._events_channel, self.worker_id]):
                        emptied.append(_uid_of(u))
            self._redis.srem(f"{self._prefix}workers", worker)
            logger.warning(
                "worker %s stopped answering; its %d uid(s) left the cluster", worker, len(emptied)
            )
            listener = self._listener
            if listener is not None:
                for uid in emptied:
                    listener.uid_closed_elsewhere(uid)
