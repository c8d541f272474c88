"""The Redis connection a bus shares among its parts, and how it reports outages.

Every part of the Redis bus (mailboxes, presence, the notifier) talks to Redis through one
:class:`Link`: one bounded pool of connections, and one view of whether Redis answers. A
part that meets an error calls :meth:`Link.down`; the notifier, which holds the one
long-lived connection, declares Redis reachable again when it resubscribes.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis

logger = logging.getLogger("flask_sente.bus.redis")


def uid_key(uid: Any) -> str:
    """A uid as it appears in keys and messages: compact JSON (``42`` and ``"42"`` differ)."""
    return json.dumps(uid, separators=(",", ":"), ensure_ascii=False)


def uid_of(key: str) -> Any:
    return json.loads(key)


class Link:
    """One pool of at most ``max_connections`` connections, and the outage state."""

    def __init__(self, url: str, *, max_connections: int) -> None:
        self.url = url
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=5,
            socket_timeout=5,
            socket_connect_timeout=2,
            decode_responses=True,
        )
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
