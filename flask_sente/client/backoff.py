"""Reconnect backoff: when the client tries again, on either transport.

:class:`RetrySchedule` is Sente's policy, the same for a WebSocket and for Ajax polls: the
first retry after a loss at once, then attempt ``n`` after ``backoff_ms_fn(n)`` milliseconds,
counting afresh once the channel answers again.

The default ``backoff_ms_fn`` is Sente's binary exponential backoff, with a ceiling.

Sente's default (``enc/exp-backoff``) has no upper bound: the tenth attempt waits 8.5 to
17 minutes, so a client whose server was down for a while comes back long after it. A
script or a service would rather come back within a minute of its server, so
:func:`exp_backoff` caps the wait at :data:`DEFAULT_MAX_MS` (30 s). Pass
``backoff_ms_fn=sente_exp_backoff`` to get Sente's exact, unbounded schedule.
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["DEFAULT_MAX_MS", "RetrySchedule", "exp_backoff", "sente_exp_backoff"]

#: The ceiling of the default backoff: a client retries at least every 30 s.
DEFAULT_MAX_MS = 30_000


def sente_exp_backoff(
    n_attempt: int, *, min_ms: int | None = None, max_ms: int | None = None, factor: int = 1000
) -> int:
    """Milliseconds to wait before attempt ``n_attempt``, exactly as encore computes it.

    ``floor((2**n + rand(2**n)) * 0.5 * factor)`` with ``n`` capped at 36, then clamped to
    ``[min_ms, max_ms]`` when those are given: attempt 2 waits [2, 4) s, 3 waits [4, 8) s...
    """
    n = min(max(n_attempt, 0), 36)
    b = 2.0**n
    t = int((b + random.random() * b) * 0.5 * factor)
    if min_ms is not None and t < min_ms:
        t = min_ms
    if max_ms is not None and t > max_ms:
        t = max_ms
    return t


def exp_backoff(n_attempt: int, *, min_ms: int | None = None, max_ms: int = DEFAULT_MAX_MS) -> int:
    """Sente's backoff capped at ``max_ms`` (30 s): the default ``backoff_ms_fn``."""
    return sente_exp_backoff(n_attempt, min_ms=min_ms, max_ms=max_ms)


class RetrySchedule:
    """How long to wait before each attempt to get the channel back."""

    def __init__(self, backoff_ms_fn: Callable[[int], int]) -> None:
        self._backoff_ms_fn = backoff_ms_fn
        self.attempt = 0

    def next_delay_ms(self) -> int | None:
        """Count one more attempt; the milliseconds to wait before making it, or None for
        the first, which is made at once."""
        self.attempt += 1
        return None if self.attempt == 1 else max(int(self._backoff_ms_fn(self.attempt)), 0)

    def reset(self) -> None:
        """The channel answered: the next loss starts the schedule again."""
        self.attempt = 0
