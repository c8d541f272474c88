"""The Redis connection a bus shares among its parts, and how it reports outages.

Every part of the Redis bus (mailboxes, presence, the notifier) talks to Redis through one
:class:`Link`: one bounded pool of connections, and one view of whether Redis answers. A
part that meets an error calls :meth:`Link.down`; the notifier, which holds the one
long-lived connection, declares Redis reachable again when it resubscribes.

``url`` is ``redis://``, ``rediss://`` or ``unix://`` for one server, or
``redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]`` for a master that
Sentinel watches: each new connection asks the sentinels where the master is, so after a
failover the pool reconnects to the new one. redis-py's own retries are off: a command that
failed is reported, never silently run twice (a push retried after a lost answer would be
stored twice).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError, Sentinel, SentinelConnectionPool

from ..errors import ConfigError

logger = logging.getLogger("flask_sente.bus.redis")

SENTINEL_SCHEME = "redis+sentinel://"


def uid_key(uid: Any) -> str:
    """A uid as it appears in keys and messages: compact JSON (``42`` and ``"42"`` differ)."""
    return json.dumps(uid, separators=(",", ":"), ensure_ascii=False)


def uid_of(key: str) -> Any:
    return json.loads(key)


def never_sent(exc: Exception) -> bool:
    """Whether a failed command surely never reached Redis: no connection could be made
    (refused, no master known, the pool exhausted). Otherwise its answer was lost and it
    may have run."""
    if isinstance(exc, MasterNotFoundError):
        return True
    text = str(exc)
    return " connecting to " in text or "Timeout connecting" in text or "No connection" in text


@dataclass(frozen=True)
class SentinelUrl:
    sentinels: list[tuple[str, int]]
    service: str
    db: int
    password: str | None


def parse_sentinel_url(url: str) -> SentinelUrl:
    """``redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]``."""
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    password = unquote(userinfo.partition(":")[2]) if userinfo else None
    sentinels = []
    for item in hosts.split(","):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"{url!r}: each sentinel must be HOST:PORT, got {item!r}")
        sentinels.append((host.strip("[]"), int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ConfigError(f"{url!r}: the path must be /SERVICE or /SERVICE/DB")
    return SentinelUrl(sentinels, path[0], int(path[1]) if len(path) == 2 else 0, password)


class BlockingSentinelPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """Sentinel's pool, bounded like :class:`redis.BlockingConnectionPool`: a caller waits
    for a free connection instead of failing."""


class Link:
    """One pool of at most ``max_connections`` connections, and the outage state."""

    def __init__(self, url: str, *, max_connections: int) -> None:
        self.url = url
        options: dict[str, Any] = {
            "max_connections": max_connections,
            "timeout": 5,
            "socket_timeout": 5,
            "socket_connect_timeout": 2,
            "decode_responses": True,
            "retry": Retry(NoBackoff(), 0),
        }
        if url.startswith(SENTINEL_SCHEME):
            where = parse_sentinel_url(url)
            sentinel = Sentinel(
                where.sentinels,
                socket_timeout=2,
                socket_connect_timeout=2,
                retry=Retry(NoBackoff(), 0),
            )
            self.redis = sentinel.master_for(
                where.service,
                connection_pool_class=BlockingSentinelPool,
                db=where.db,
                password=where.password,
                **options,
            )
        else:
            pool = redis.BlockingConnectionPool.from_url(url, **options)
            self.redis = redis.Redis(connection_pool=pool)
        self.up = False
        self.last_error: str | None = None
        self.reconnects = 0

    def down(self, what: str, exc: Exception) -> None:
        if self.up or self.last_error is None:
            logger.warning("Redis unreachable (%s): %s; retrying with backoff", what, exc)
        self.up = False
        self.last_error = f"{what}: {exc}"

    def close(self) -> None:
        self.redis.close()
