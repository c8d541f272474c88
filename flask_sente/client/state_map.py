"""Sente's client state map, and how the protocol changes it: pure.

The keys are spelled as Sente spells them: ``type``, ``open?``, ``ever-opened?``,
``csrf-token``, ``first-open?`` (true while the current open is the first one), ``uid``,
``handshake-data``, ``last-ws-error``, ``last-ws-close``, ``last-close`` (``{"udt",
"reason"}``) and ``udt-next-reconnect``. Every change gives back the old and the new map, from
which the protocol makes the ``chsk/state`` event (:func:`state_event_maps`) and the runner
updates the :class:`~.state.ClientState` users read. The map is replaced, never mutated, so
the maps handed out stay true.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Change", "StateMap", "state_event_maps"]

#: ``(old, new)``: the map before and after a change.
Change = tuple[dict[str, Any], dict[str, Any]]


def state_event_maps(
    old: Mapping[str, Any], new: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """``[old new open-changed?]`` of a ``chsk/state`` event, exactly as Sente builds it.

    When ``open?`` changed, ``new`` carries the transient keys ``open-changed?``,
    ``opened?``, ``closed?`` and ``first-open?``, each only when true.
    """
    old_map = {k: v for k, v in old.items() if k != "first-open?"}
    new_map = {k: v for k, v in new.items() if k != "first-open?"}
    open_changed = bool(old.get("open?")) != bool(new.get("open?"))
    if open_changed:
        opened = bool(new.get("open?"))
        new_map["open-changed?"] = True
        if opened:
            new_map["opened?"] = True
            if new.get("first-open?"):
                new_map["first-open?"] = True
        else:
            new_map["closed?"] = True
    return old_map, new_map, open_changed


def _keys(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword names as Sente's keys: ``last_ws_error`` is ``last-ws-error``."""
    return {k.replace("_", "-"): v for k, v in changes.items()}


class StateMap:
    """The state map of one client; each method returns the :data:`Change`, or None."""

    def __init__(self, type: str, csrf_token: object) -> None:
        self.value: dict[str, Any] = {
            "type": type,
            "open?": False,
            "ever-opened?": False,
            "csrf-token": csrf_token,
        }

    def get(self, key: str) -> Any:
        return self.value.get(key)

    def update(self, **changes: Any) -> Change | None:
        """Set keys given by their Python names (``udt_next_reconnect=...``)."""
        return self._swap(lambda s: {**s, **_keys(changes)})

    def opened(self) -> Change | None:
        """A long-poll or a POST was answered: the channel looks open."""
        return self._swap(lambda s: {**s, "open?": True})

    def handshake(self, kind: str, uid: Any, data: Any) -> tuple[Change | None, bool]:
        """The channel opened with a handshake; the change, and whether it is the first."""
        first = not self.value.get("ever-opened?")

        def apply(s: dict[str, Any]) -> dict[str, Any]:
            s.pop("udt-next-reconnect", None)
            s.update({"type": kind, "open?": True, "ever-opened?": True})
            s.update({"uid": uid, "handshake-data": data, "first-open?": first})
            return s

        return self._swap(apply), first

    def closed(
        self, udt: int, reason: str, *, force: bool = False, **changes: Any
    ) -> Change | None:
        """The channel closed; ``last-close`` is set only if it was open (or ``force``)."""

        def apply(s: dict[str, Any]) -> dict[str, Any]:
            was_open = s.get("open?")
            s["open?"] = False
            s.pop("first-open?", None)
            s.pop("udt-next-reconnect", None)
            if was_open or force:
                s["last-close"] = {"udt": udt, "reason": reason}
            s.update(_keys(changes))
            return s

        return self._swap(apply)

    def _swap(self, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Change | None:
        old = self.value
        new = fn(dict(old))
        if new == old:
            return None
        self.value = new
        return old, new
