"""Which events may be handled on the thread that received them, without breaking order.

A handler that answers in microseconds costs less to run where its event arrived (the event
loop, a request's thread, a connection's greenlet) than to hand to a worker thread and hand
its reply back. Two rules keep that safe, and this module keeps the books for both:

- :class:`Lanes`: one client's events are handled one after another, in arrival order. An
  event runs where it arrived only when nothing of its client is queued or running; events
  that come meanwhile wait in its lane and go to the client's worker once it is done.
- :class:`Quickness`: only handlers that have been quick run where their event arrived: a
  handler's first events go to the workers, and once it was quick a few times in a row its
  events run in place. A run over ``budget_s`` sends them to the workers again, until it
  has been quick there ``forgive_after`` times in a row.

Pure bookkeeping: no threads, no clock; the router calls it under its lock.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

M = TypeVar("M")

#: A handler that runs longer than this where its event arrived goes to the workers.
INLINE_BUDGET_S = 0.005
#: Quick runs in a row after which a handler may run where its events arrive.
TRUST_AFTER = 3
#: ... and after which one that was slow may again.
FORGIVE_AFTER = 100
#: Event ids come from clients: past this many, what was learnt is forgotten.
MAX_KINDS = 4096


class _Lane(Generic[M]):
    __slots__ = ("here", "queued", "waiting")

    def __init__(self, here: bool) -> None:
        #: An event of this client runs on the thread that received it.
        self.here = here
        #: Events of this client handed to its worker and not done yet.
        self.queued = 0
        #: Events that came while one ran in place, in order.
        self.waiting: list[M] = []


class Lanes(Generic[M]):
    """The clients with events queued or running, and what waits behind them."""

    def __init__(self) -> None:
        self._lanes: dict[Hashable, _Lane[M]] = {}

    def __len__(self) -> int:
        return len(self._lanes)

    def claim(self, key: Hashable) -> bool:
        """Run an event of ``key`` in place, if nothing of ``key`` is queued or running."""
        if key in self._lanes:
            return False
        self._lanes[key] = _Lane(here=True)
        return True

    def enqueue(self, key: Hashable, msg: M) -> bool:
        """An event of ``key`` for the workers: True when it goes to the worker now, False
        when it waits for the event running in place (:meth:`release` gives it back)."""
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(here=False)
        if lane.here:
            lane.waiting.append(msg)
            return False
        lane.queued += 1
        return True

    def release(self, key: Hashable) -> list[M]:
        """The event that ran in place is done: the events that waited, for the worker."""
        lane = self._lanes[key]
        waiting, lane.waiting, lane.here = lane.waiting, [], False
        lane.queued = len(waiting)
        if not waiting:
            del self._lanes[key]
        return waiting

    def done(self, key: Hashable) -> None:
        """A worker finished (or lost) one event of ``key``."""
        lane = self._lanes.get(key)
        if lane is None:
            return
        lane.queued -= 1
        if lane.queued <= 0 and not lane.here:
            del self._lanes[key]


class Quickness:
    """Which handlers (by event id) may run in place: those that were quick ``trust_after``
    times in a row (``forgive_after`` times, once they were slow)."""

    def __init__(
        self,
        *,
        budget_s: float = INLINE_BUDGET_S,
        trust_after: int = TRUST_AFTER,
        forgive_after: int = FORGIVE_AFTER,
    ) -> None:
        self.budget_s = budget_s
        self._trust_after = trust_after
        self._forgive_after = forgive_after
        #: Quick runs in a row, per kind.
        self._streak: dict[Hashable, int] = {}
        #: Kinds that were slow once: they need ``forgive_after`` quick runs.
        self._was_slow: set[Hashable] = set()

    def allows(self, kind: Hashable) -> bool:
        needed = self._forgive_after if kind in self._was_slow else self._trust_after
        return self._streak.get(kind, 0) >= needed

    def ran(self, kind: Hashable, seconds: float) -> bool:
        """A handler of ``kind`` ran for ``seconds``; True when that ended its trust."""
        if len(self._streak) >= MAX_KINDS and kind not in self._streak:
            self._streak.clear()
            self._was_slow.clear()
        if seconds > self.budget_s:
            trusted = self.allows(kind)
            self._streak[kind] = 0
            self._was_slow.add(kind)
            return trusted
        self._streak[kind] = self._streak.get(kind, 0) + 1
        return False
