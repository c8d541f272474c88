"""The client's state map: read-only to users, watchable, and waitable.

Sente keeps the state in an atom that users watch but never ``swap!``; here it is a
:class:`ClientState`, a ``Mapping`` with Sente's keys spelled as Sente spells them
(``"open?"``, ``"ever-opened?"``, ``"last-close"``...; see :mod:`.state_map`). The protocol
changes the map; the client's runner shows each new one here and calls the watches. Scripts
can block on it with :meth:`ClientState.wait_for`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["ClientState", "WatchFn", "now_udt"]

#: A watch: ``fn(key, state, old, new)``, as Clojure's ``add-watch`` calls it.
WatchFn = Callable[[Any, "ClientState", dict[str, Any], dict[str, Any]], None]


def now_udt() -> int:
    """Epoch milliseconds, the ``udt`` of Sente's state values."""
    return int(time.time() * 1000)


class ClientState(Mapping[str, Any]):
    """A read-only, watchable view of the client's state.

    Keys, as in Sente's API text: ``type``, ``open?``, ``ever-opened?``, ``first-open?``
    (true while the current open is the first one), ``uid``, ``handshake-data``,
    ``last-ws-error``, ``last-ws-close``, ``last-close`` (``{"udt", "reason"}``) and
    ``udt-next-reconnect``. Absent keys read as missing, as in Sente's map.
    """

    def __init__(self, initial: Mapping[str, Any]) -> None:
        self._value: dict[str, Any] = dict(initial)
        self._cond = threading.Condition(threading.Lock())
        self._watches: dict[Any, WatchFn] = {}

    def __getitem__(self, key: str) -> Any:
        return self._value[key]

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self._value))

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"ClientState({self._value!r})"

    def snapshot(self) -> dict[str, Any]:
        """A copy of the current map, consistent at one instant."""
        return dict(self._value)

    def add_watch(self, key: Any, fn: WatchFn) -> None:
        """Call ``fn(key, state, old, new)`` after every change, on the client's callback thread."""
        with self._cond:
            self._watches[key] = fn

    def remove_watch(self, key: Any) -> None:
        with self._cond:
            self._watches.pop(key, None)

    def wait_for(
        self, predicate: Callable[[Mapping[str, Any]], bool], timeout: float | None
    ) -> bool:
        """Block until ``predicate(state)`` holds or ``timeout`` seconds pass; returns which.

        Meant for scripts and tests: ``client.state.wait_for(lambda s: s["open?"], 5)``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not predicate(self._value):
                if deadline is None:
                    self._cond.wait()
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def _replace(self, new: dict[str, Any]) -> list[tuple[Any, WatchFn]]:
        """Show ``new`` (the protocol's new map, never changed in place), wake the waiters;
        the watches to call."""
        with self._cond:
            self._value = new
            self._cond.notify_all()
            return list(self._watches.items())
