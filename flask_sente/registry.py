"""Who is connected: transport -> uid -> client-id -> slot, and the ``connected_uids`` view.

Each (uid, client-id) pair has one slot per transport, as in Sente (spec 4.2). A slot
outlives its connection for the close grace period, so a page reload or the gap between two
long-polls does not drop the uid. When the grace runs out, the slot goes, and the uid leaves
``connected_uids`` once it has no slot left of any kind. (Pushes wait in mailboxes, see
:mod:`flask_sente.mailbox`; this module only says who is connected.)
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .bus import Bus, ConnectedUids
from .scheduler import Scheduler

logger = logging.getLogger("flask_sente.registry")

KINDS = ("ws", "ajax")


class Slot:
    """One client-id of one uid on one transport."""

    __slots__ = ("client_id", "conn", "conn_id", "kind", "opened", "request", "udt", "uid")

    def __init__(self, kind: str, uid: Any, client_id: str) -> None:
        self.kind = kind
        self.uid = uid
        self.client_id = client_id
        self.conn: Any = None
        self.conn_id = 0
        self.opened = False
        self.udt = time.monotonic()
        #: The request of the latest connection (Sente's ``:ring-req`` of uidport events).
        self.request: Any = None


class Registry:
    """Connection slots and presence. Thread-safe; callbacks run outside its lock."""

    def __init__(
        self,
        scheduler: Scheduler,
        bus: Bus,
        *,
        grace_s: dict[str, float],
        on_uid_open: Callable[[Any, Slot], None],
        on_uid_close: Callable[[Any, Slot], None],
    ) -> None:
        self.lock = threading.RLock()
        self._scheduler = scheduler
        self._bus = bus
        self._grace_s = grace_s
        self._on_uid_open = on_uid_open
        self._on_uid_close = on_uid_close
        self._slots: dict[str, dict[Any, dict[str, Slot]]] = {k: {} for k in KINDS}
        self._open_count: dict[str, dict[Any, int]] = {k: {} for k in KINDS}
        self._conn_ids = itertools.count(1)
        self._watchers: list[Callable[[ConnectedUids, ConnectedUids], None]] = []
        self._last_notified: ConnectedUids | None = None

    # ------------------------------------------------------------------ slots

    def slot(self, kind: str, uid: Any, client_id: str) -> Slot | None:
        with self.lock:
            return self._slots[kind].get(uid, {}).get(client_id)

    def slots(self, kind: str, uid: Any) -> list[Slot]:
        with self.lock:
            return list(self._slots[kind].get(uid, {}).values())

    def all_slots(self, kind: str) -> list[Slot]:
        with self.lock:
            return [s for by_client in self._slots[kind].values() for s in by_client.values()]

    def live_connections(self, uid: Any, *, other_than: str | None = None) -> int:
        """How many live connections ``uid`` has (not counting client ``other_than``)."""
        with self.lock:
            return sum(
                1
                for kind in KINDS
                for client_id, slot in self._slots[kind].get(uid, {}).items()
                if slot.conn is not None and client_id != other_than
            )

    def handshake(self, kind: str, uid: Any, client_id: str) -> Slot:
        """Record a client that handshook without a live connection (an Ajax handshake GET)."""
        with self.lock:
            slot = self._get_or_create(kind, uid, client_id)
            slot.conn = None
            slot.conn_id = next(self._conn_ids)
            slot.udt = time.monotonic()
            conn_id = slot.conn_id
        self._expire_later(slot, conn_id)
        return slot

    def connect(
        self, kind: str, uid: Any, client_id: str, conn: Any, *, request: Any = None
    ) -> tuple[Slot, int]:
        """Install a live connection, opened by ``request``, in its slot; fires
        uidport-open for a new uid."""
        with self.lock:
            slot = self._get_or_create(kind, uid, client_id)
            slot.conn = conn
            slot.request = request
            slot.conn_id = next(self._conn_ids)
            slot.udt = time.monotonic()
            opened_uid = False
            if not slot.opened:
                slot.opened = True
                counts = self._open_count[kind]
                counts[uid] = counts.get(uid, 0) + 1
                if counts[uid] == 1:
                    opened_uid = self._bus.opened(uid, kind)
            conn_id = slot.conn_id
        self._notify(slot)
        if opened_uid:
            self._on_uid_open(uid, slot)
        return slot, conn_id

    def disconnect(self, slot: Slot, conn_id: int) -> None:
        """The connection ``conn_id`` ended; the slot stays for its grace period."""
        with self.lock:
            if slot.conn_id != conn_id:
                return
            slot.conn = None
            slot.udt = time.monotonic()
        self._expire_later(slot, conn_id)

    def _expire_later(self, slot: Slot, conn_id: int) -> None:
        self._scheduler.call_later(
            self._grace_s[slot.kind],
            lambda: self._expire(slot, conn_id),
            what="the close grace",
            uid=slot.uid,
            client_id=slot.client_id,
        )

    def _expire(self, slot: Slot, conn_id: int) -> None:
        with self.lock:
            by_client = self._slots[slot.kind].get(slot.uid)
            if (
                by_client is None
                or by_client.get(slot.client_id) is not slot
                or slot.conn_id != conn_id
                or slot.conn is not None
            ):
                return
            del by_client[slot.client_id]
            if not by_client:
                del self._slots[slot.kind][slot.uid]
            closed_uid = False
            if slot.opened:
                counts = self._open_count[slot.kind]
                counts[slot.uid] -= 1
                if counts[slot.uid] == 0:
                    del counts[slot.uid]
                    closed_uid = self._bus.closed(slot.uid, slot.kind)
        self._notify(slot)
        if closed_uid:
            self._on_uid_close(slot.uid, slot)

    def _get_or_create(self, kind: str, uid: Any, client_id: str) -> Slot:
        by_client = self._slots[kind].setdefault(uid, {})
        slot = by_client.get(client_id)
        if slot is None:
            slot = by_client[client_id] = Slot(kind, uid, client_id)
        return slot

    # ------------------------------------------------------------------ connected_uids

    def connected_uids(self) -> ConnectedUids:
        """A snapshot ``{"ws": ..., "ajax": ..., "any": ...}`` of frozensets, cluster-wide
        when the bus spans several processes."""
        return self._bus.connected_uids()

    def watch(self, fn: Callable[[ConnectedUids, ConnectedUids], None]) -> Callable[[], None]:
        """Call ``fn(old, new)`` after every change; returns a function that stops watching."""
        with self.lock:
            self._watchers.append(fn)
            self._last_notified = self.connected_uids()

        def unwatch() -> None:
            with self.lock:
                if fn in self._watchers:
                    self._watchers.remove(fn)

        return unwatch

    def notify_watchers(self) -> None:
        """Tell the watchers, if ``connected_uids`` changed (here or on another process)."""
        self._notify()

    def _notify(self, slot: Slot | None = None) -> None:
        with self.lock:
            if not self._watchers:
                return
            old = self._last_notified
            new = self.connected_uids()
            if old is None or new is old:
                return
            self._last_notified = new
            watchers = list(self._watchers)
        for fn in watchers:
            try:
                fn(old, new)
            except Exception:
                logger.exception(
                    "the connected_uids watcher %r failed (on a change by uid %r, client %s); "
                    "the other watchers go on",
                    fn,
                    None if slot is None else slot.uid,
                    None if slot is None else slot.client_id,
                )
