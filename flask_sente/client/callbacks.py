"""Callbacks waiting for a reply, each with its deadline: the protocol's table, pure.

A WebSocket send with a callback is filed under a fresh 6-hex cb-uuid and answered when a
``[reply cb-uuid]`` frame arrives; an Ajax send is answered by its POST's response. Either
way the first answer wins: the reply, ``chsk/timeout`` once the deadline passes, or
``chsk/closed`` when the connection that could carry the reply is gone. The table only keeps
the books: who answers, and when, is :class:`~.protocol.ClientProtocol`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Pending", "PendingCallbacks"]


@dataclass(frozen=True, slots=True)
class Pending:
    """One callback: the caller's ``handle`` (opaque here), when it times out, and the
    ``link`` (WebSocket connection or Ajax POST) its reply must come over."""

    cb_uuid: str
    handle: object
    deadline: float
    link: int


class PendingCallbacks:
    """The unanswered callbacks, by cb-uuid."""

    def __init__(self, new_cb_uuid: Callable[[], str]) -> None:
        self._new_cb_uuid = new_cb_uuid
        self._pending: dict[str, Pending] = {}

    def new_uuid(self) -> str:
        """A cb-uuid no waiting callback has."""
        cb_uuid = self._new_cb_uuid()
        while cb_uuid in self._pending:
            cb_uuid = self._new_cb_uuid()
        return cb_uuid

    def add(self, cb_uuid: str, handle: object, deadline: float, link: int) -> None:
        self._pending[cb_uuid] = Pending(cb_uuid, handle, deadline, link)

    def pop(self, cb_uuid: object) -> Pending | None:
        """The callback filed under ``cb_uuid``, taken off; None when there is none."""
        return self._pending.pop(cb_uuid, None) if isinstance(cb_uuid, str) else None

    def pop_link(self, link: int) -> list[Pending]:
        """Take off every callback whose reply was to come over ``link``."""
        gone = [p for p in self._pending.values() if p.link == link]
        for pending in gone:
            del self._pending[pending.cb_uuid]
        return gone

    def pop_due(self, now: float) -> list[Pending]:
        """Take off every callback whose deadline has passed, the earliest first."""
        due = sorted((p for p in self._pending.values() if p.deadline <= now), key=_deadline)
        for pending in due:
            del self._pending[pending.cb_uuid]
        return due

    def pop_all(self) -> list[Pending]:
        gone = list(self._pending.values())
        self._pending.clear()
        return gone

    def next_deadline(self) -> float | None:
        return min((p.deadline for p in self._pending.values()), default=None)

    def __contains__(self, cb_uuid: object) -> bool:
        return cb_uuid in self._pending

    def __len__(self) -> int:
        return len(self._pending)


def _deadline(pending: Pending) -> float:
    return pending.deadline
