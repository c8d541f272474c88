"""Which concurrency the process runs on: real threads, or gevent greenlets.

flask_sente uses the ``threading`` and ``selectors`` modules only. Under gevent (for example
``gunicorn -k gevent``, which monkey-patches them) the same code runs on greenlets, so there
is one code path for both.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger("flask_sente.runtime")

#: A thread (or greenlet) that pushes for longer than this lets the others run.
PACE_S = 0.001


class Pacer:
    """Lets other threads run when one pushes for long.

    A handler pushing thousands of events keeps its thread busy for milliseconds: under
    gevent no other greenlet runs meanwhile (not the timer that flushes the batches, nor the
    connections writing them), and under threads it holds the GIL for a switch interval at a
    time. :meth:`step`, called after each push, yields once ``PACE_S`` passed since this
    thread last did (``time.sleep(0)``: a switch to the gevent hub, or a release of the GIL),
    so a batch leaves within a few milliseconds of its window whatever else pushes.
    ``waiting(now)``, when given, says whether anyone waits for the turn: real threads yield
    only then, since each release of the GIL costs a switch between threads."""

    def __init__(self, waiting: Callable[[float], bool] | None = None) -> None:
        self._local = threading.local()
        self._waiting = waiting

    def step(self) -> None:
        now = time.monotonic()
        since = getattr(self._local, "since", None)
        if since is None:
            self._local.since = now
        elif now - since >= PACE_S and (self._waiting is None or self._waiting(now)):
            time.sleep(0)
            self._local.since = time.monotonic()


def concurrency_mode() -> str:
    """``"gevent"`` when the threading module is monkey-patched by gevent, else ``"threading"``."""
    try:
        from gevent import monkey
    except ImportError:
        return "threading"
    return "gevent" if monkey.is_module_patched("threading") else "threading"
