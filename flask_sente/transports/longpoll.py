"""The server side of Ajax: a long-poll waiting for pushes, and a POST waiting for a reply.

Each is completed exactly once, by whichever comes first: a delivery from another thread,
the timeout, or the client going away. A lock makes "first" well defined, so a push that
loses the race stays queued for the client's next poll instead of vanishing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_PENDING = object()
#: The value of a long-poll whose client disconnected before it was answered.
CLIENT_GONE = object()
#: The value of a long-poll ended by ``["chsk/close"]`` or server shutdown.
CLOSED_BY_SERVER = object()
#: How long a waiter past its timeout waits for a held value to be released.
_RELEASE_WAIT_S = 5.0


class OneShot:
    """A value set at most once; waiting for it is bounded by a timeout. The event a waiter
    sleeps on is made only when someone has to wait (most values come before anyone does).

    A value may also be *held* first (:meth:`hold`) and let go later (:meth:`release`): it
    is then taken, so no timeout or departure can replace it, but not yet done, so nobody
    answers with it. A push batch is held while the bus records it as delivered: a client
    answered before that could poll again, here or on another worker, and be sent it twice.
    """

    __slots__ = ("_event", "_held", "_lock", "_value", "notify")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._event: threading.Event | None = None
        self._value: Any = _PENDING
        self._held = False
        #: Called (from the completing thread) once the value is set.
        self.notify: Callable[[], None] = _nothing

    def offer(self, value: Any) -> bool:
        """Set the value; False when it was already set."""
        with self._lock:
            if self._value is not _PENDING:
                return False
            self._value = value
            event = self._event
        if event is not None:
            event.set()
        self.notify()
        return True

    def hold(self, value: Any) -> bool:
        """Take ``value`` without completing: False when a value was already set."""
        with self._lock:
            if self._value is not _PENDING:
                return False
            self._value, self._held = value, True
        return True

    def release(self) -> None:
        """Complete with the held value (nothing when none is held)."""
        with self._lock:
            if not self._held:
                return
            self._held = False
            event = self._event
        if event is not None:
            event.set()
        self.notify()

    def wait(self, timeout_s: float, on_timeout: Any) -> Any:
        """The value, or ``on_timeout`` (set as the value) when nothing came in time."""
        if not self.settled_within(timeout_s) and not self.offer(on_timeout):
            self.settled_within(_RELEASE_WAIT_S)  # a held value: released within a round trip
        return self._value

    def settled_within(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the value without giving one up."""
        with self._lock:
            if self._value is not _PENDING and not self._held:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout_s)

    @property
    def done(self) -> bool:
        return self._value is not _PENDING and not self._held

    @property
    def held(self) -> bool:
        """A value is held: taken, to be released (see the class)."""
        return self._held

    @property
    def value(self) -> Any:
        """The value, held or not; None while there is none."""
        return None if self._value is _PENDING else self._value


class LongPoll(OneShot):
    """A waiting Ajax GET. Its value: a list of events, a reply value, or a sentinel.

    ``label`` names it in the log (whose request it is)."""

    __slots__ = ("label",)

    kind = "ajax"

    def __init__(self, label: str = "an Ajax request") -> None:
        super().__init__()
        self.label = label

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.offer(CLOSED_BY_SERVER)


def _nothing() -> None:
    return None
