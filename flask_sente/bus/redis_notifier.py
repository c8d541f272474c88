"""Pub/sub between workers: who pushed to which uid, closes, presence changes.

One thread per worker holds the subscription (the only long-lived Redis connection) and
turns each message into a call on the :class:`~flask_sente.bus.BusListener`. It listens on
two channels:

- ``<channel>:w:<worker>``, its own: ``push`` and the uids (one a line) of a batch of
  pushes to uids it holds a connection of. A push notifies only those workers, so a
  worker's cost grows with its own clients' traffic, not with the cluster's.
- ``<channel>:events``, everyone's: ``presence <origin> -`` and ``close <origin> <uid>``.

Pub/sub forgets what it sent while a worker was not listening, so after an outage the
notifier calls ``on_back`` to catch up from what Redis keeps.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import redis

from . import BusListener
from .redis_link import Link, uid_key, uid_of

logger = logging.getLogger("flask_sente.bus.redis")

#: Longest wait between two attempts to resubscribe.
MAX_BACKOFF_S = 2.0


class Notifier:
    def __init__(
        self,
        link: Link,
        *,
        prefix: str,
        worker_id: str,
        on_presence: Callable[[], None],
        on_back: Callable[[], None],
    ) -> None:
        self._link = link
        self._channel = prefix + "events"
        self._own_channel = f"{prefix}w:{worker_id}"
        self._worker_id = worker_id
        self._on_presence = on_presence
        self._on_back = on_back
        self.listener: BusListener | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def close_uid(self, uid: Any) -> None:
        """Tell every worker to close the uid's connections."""
        try:
            self._link.redis.publish(self._channel, f"close {self._worker_id} {uid_key(uid)}")
        except redis.RedisError as exc:
            self._link.down("close_uid", exc)

    def start(self, listener: BusListener) -> None:
        self.listener = listener
        self._thread = threading.Thread(
            target=self._subscribe, name="flask_sente-redis-sub", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _subscribe(self) -> None:
        link = self._link
        backoff = 0.1
        while not self._stop.is_set():
            pubsub = link.redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self._channel, self._own_channel)
                if not link.up:
                    link.up = True
                    if link.last_error is not None:
                        # only after an outage: re-registering on the first subscription
                        # would race the worker's own first presence calls
                        link.reconnects += 1
                        logger.warning("Redis reachable again; resubscribed")
                        self._on_back()
                backoff = 0.1
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    try:  # a dead subscriber would leave this worker deaf to every push
                        if message is not None:
                            self._on_message(str(message["data"]))
                    except Exception:
                        logger.exception("cannot handle %r; the subscription goes on", message)
            except redis.RedisError as exc:
                link.down("subscription", exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            finally:
                with contextlib.suppress(redis.RedisError):
                    pubsub.close()

    def _on_message(self, data: str) -> None:
        listener = self.listener
        if listener is None:
            return
        if data.startswith("push\n"):
            for u in set(data.split("\n")[1:]):
                listener.remote_push(uid_of(u))
            return
        kind, origin, rest = ([*data.split(" ", 2), "", ""])[:3]
        if kind == "presence":
            self._on_presence()
            listener.presence_changed()
        elif kind == "close" and origin != self._worker_id:  # ours: already closed here
            listener.remote_close(uid_of(rest))
