"""The one-process bus: mailboxes and presence in memory. The default; no set-up."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from ..batching import Outgoing
from ..mailbox import Lost, Mailbox, MailRoom
from ..scheduler import Scheduler
from . import BusListener, ConnectedUids


class LocalBus:
    name = "local"

    def __init__(self, scheduler: Scheduler, *, backlog: int, window_s: float, lost: Lost) -> None:
        self._scheduler = scheduler
        self._lock = threading.Lock()
        self._room = MailRoom(max_events=backlog, window_s=window_s, lost=lost)
        self._open: dict[str, set[Any]] = {"ws": set(), "ajax": set()}
        self._snapshot: ConnectedUids | None = None

    # ------------------------------------------------------------------ mailboxes

    def ensure_mailbox(self, uid: Any, client_id: str) -> None:
        with self._lock:
            box = self._room.get_or_create(uid, client_id)
            if box.idle_since is None and not box.attached:
                self._idle(box)

    def knows(self, uid: Any, client_id: str) -> bool:
        with self._lock:
            return self._room.get(uid, client_id) is not None

    def push(self, uid: Any, item: Outgoing) -> bool:
        now = time.monotonic()
        with self._lock:
            boxes = self._room.of(uid)
            for box in boxes:
                self._room.push(box, item, now)
        return bool(boxes)

    def push_many(self, items: Sequence[tuple[Any, Outgoing]]) -> list[bool]:
        return [self.push(uid, item) for uid, item in items]

    def close_uid(self, uid: Any) -> None:
        """Only this process has connections: the server closed them already."""

    def position(self, uid: Any, client_id: str, reported: tuple[str, int] | None) -> int:
        with self._lock:
            return self._room.get_or_create(uid, client_id).start_seq(reported)

    def read(self, uid: Any, client_id: str, after: int) -> tuple[str, list[tuple[int, Outgoing]]]:
        with self._lock:
            box = self._room.get(uid, client_id)
            return ("", []) if box is None else (box.epoch, box.after(after))

    def delivered(self, uid: Any, client_id: str, seq: int) -> None:
        with self._lock:
            box = self._room.get(uid, client_id)
            if box is not None:
                box.mark_delivered(seq)

    def attach(self, uid: Any, client_id: str) -> None:
        with self._lock:
            box = self._room.get_or_create(uid, client_id)
            box.attached += 1
            box.idle_since = None

    def detach(self, uid: Any, client_id: str) -> None:
        with self._lock:
            box = self._room.get(uid, client_id)
            if box is not None:
                box.attached = max(0, box.attached - 1)
                if not box.attached:
                    self._idle(box)

    def _idle(self, box: Mailbox) -> None:
        box.idle_since = since = time.monotonic()

        def expire() -> None:
            with self._lock:
                if box.idle_since == since:
                    self._room.expire_if_idle(box, time.monotonic())

        self._scheduler.call_later(
            self._room.window_s,
            expire,
            what="a mailbox's expiry",
            uid=box.uid,
            client_id=box.client_id,
        )

    # ------------------------------------------------------------------ presence

    def opened(self, uid: Any, kind: str) -> bool:
        with self._lock:
            was = uid in self._open["ws"] or uid in self._open["ajax"]
            self._open[kind].add(uid)
            self._snapshot = None
            return not was

    def closed(self, uid: Any, kind: str) -> bool:
        with self._lock:
            self._open[kind].discard(uid)
            self._snapshot = None
            return uid not in self._open["ws"] and uid not in self._open["ajax"]

    def connected_uids(self) -> ConnectedUids:
        with self._lock:
            if self._snapshot is None:
                ws, ajax = frozenset(self._open["ws"]), frozenset(self._open["ajax"])
                self._snapshot = {"ws": ws, "ajax": ajax, "any": ws | ajax}
            return self._snapshot

    # ------------------------------------------------------------------ lifecycle

    def start(self, listener: BusListener) -> None:
        """Nothing arrives from elsewhere in one process."""

    def health(self) -> dict[str, Any]:
        return {"bus": "local", "ok": True}

    def close(self) -> None:
        """Nothing to release."""
