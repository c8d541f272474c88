"""The server side of Ajax: a long-poll waiting for pushes, and a POST waiting for a reply.

Each is completed exactly once, by whichever comes first: a delivery from another thread,
or the timeout on the waiting request thread. A lock makes "first" well defined, so a push
that loses the race stays queued for the client's next poll instead of vanishing.
"""

from __future__ import annotations

import threading
from typing import Any

_PENDING = object()


class OneShot:
    """A value set at most once; waiting for it is bounded by a timeout."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._value: Any = _PENDING

    def offer(self, value: Any) -> bool:
        """Set the value; False when it was already set."""
        with self._lock:
            if self._value is not _PENDING:
                return False
            self._value = value
        self._done.set()
        return True

    def wait(self, timeout_s: float, on_timeout: Any) -> Any:
        """The value, or ``on_timeout`` (set as the value) when nothing came in time."""
        self._done.wait(timeout_s)
        self.offer(on_timeout)
        return self._value

    @property
    def done(self) -> bool:
        return self._value is not _PENDING


class LongPoll(OneShot):
    """A waiting Ajax GET. Its value is a list of events, or ``CLOSED_BY_SERVER``."""

    kind = "ajax"

    def close(self) -> None:
        self.offer(CLOSED_BY_SERVER)


CLOSED_BY_SERVER = object()
