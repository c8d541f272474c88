"""Pushes, from ``send`` to a connection: mailboxes, outlets and batching windows.

``send(uid, event)`` numbers the event into the mailbox of every client of the uid. Each
client's live connection (its outlet) is then flushed after its batching window (30 ms for
a WebSocket, 100 ms for Ajax, as Sente), or at once with ``flush=True``; a flush takes every
event after the last one the outlet sent, so events leave in call order. A client without a
live connection keeps its events in its mailbox until it comes back (see
:mod:`flask_sente.mailbox`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .mailbox import Lost, Mailbox, MailRoom, Outlet, parse_last_seq
from .scheduler import Scheduler

logger = logging.getLogger("flask_sente.delivery")

#: ``pack_batch(events, tag)``: the packed push message; ``tag`` is ``"<epoch>:<n>"`` for
#: clients that report what they saw, else None.
PackBatch = Callable[[list[Any], str | None], str | bytes]
#: ``send(packed, last_seq) -> bool``: hand a packed batch to a connection.
SendPacked = Callable[[str | bytes, int], bool]


class Delivery:
    """Thread-safe; one lock guards every mailbox."""

    def __init__(
        self,
        scheduler: Scheduler,
        *,
        pack_batch: PackBatch,
        windows_s: dict[str, float],
        backlog: int,
        window_s: float,
        lost: Lost,
    ) -> None:
        self.lock = threading.RLock()
        self._scheduler = scheduler
        self._pack_batch = pack_batch
        self._windows_s = windows_s
        self._lost = lost
        self.room = MailRoom(max_events=backlog, window_s=window_s, lost=lost)
        self._senders: dict[int, SendPacked] = {}

    # ------------------------------------------------------------------ pushing

    def push(self, uid: Any, event: list[Any], *, flush: bool = False) -> bool:
        """Queue ``event`` for every client of ``uid``; False when ``uid`` has none."""
        now = time.monotonic()
        with self.lock:
            boxes = self.room.of(uid)
            for box in boxes:
                self.room.push(box, event, now)
                outlet = box.outlet
                if outlet is None:
                    continue
                if flush:
                    self._flush(box, outlet)
                elif not outlet.flush_pending:
                    outlet.flush_pending = True
                    self._schedule_flush(box, outlet)
        if not boxes:
            self._lost(uid, [event], "the uid has no connection")
        return bool(boxes)

    def has_uid(self, uid: Any) -> bool:
        with self.lock:
            return self.room.has(uid)

    # ------------------------------------------------------------------ connections

    def ensure_mailbox(self, uid: Any, client_id: str) -> None:
        """A client that handshook: keep pushes for it until its first poll."""
        with self.lock:
            box = self.room.get_or_create(uid, client_id)
            if box.outlet is None:
                self._idle(box)

    def open(
        self,
        uid: Any,
        client_id: str,
        kind: str,
        conn: Any,
        send: SendPacked,
        *,
        last_seq: str | None,
    ) -> tuple[Outlet, Outlet | None]:
        """Make ``conn`` the client's outlet and send it the backlog it lacks.

        ``last_seq`` is the client's ``fs-last-seq`` parameter (None for Sente clients).
        Returns the new outlet and the one it replaced."""
        with self.lock:
            box = self.room.get_or_create(uid, client_id)
            reported = parse_last_seq(last_seq)
            outlet = Outlet(kind, conn, box.start_seq(reported), reporting=last_seq is not None)
            previous, box.outlet = box.outlet, outlet
            box.idle_since = None
            self._senders[id(outlet)] = send
            self._flush(box, outlet)
        return outlet, previous

    def close(
        self, uid: Any, client_id: str, outlet: Outlet, *, sent_up_to: int | None = None
    ) -> None:
        """The outlet's connection ended; ``sent_up_to`` confirms a written Ajax answer."""
        with self.lock:
            self._senders.pop(id(outlet), None)
            box = self.room.get(uid, client_id)
            if box is None:
                return
            if sent_up_to is not None:
                box.mark_delivered(sent_up_to)
            if box.outlet is outlet:
                box.outlet = None
                self._idle(box)

    # ------------------------------------------------------------------ internals

    def _schedule_flush(self, box: Mailbox, outlet: Outlet) -> None:
        def timed_flush() -> None:
            with self.lock:
                outlet.flush_pending = False
                if box.outlet is outlet:
                    self._flush(box, outlet)

        self._scheduler.call_later(self._windows_s[outlet.kind], timed_flush)

    def _flush(self, box: Mailbox, outlet: Outlet) -> None:
        if outlet.refused:
            return
        pending = box.after(outlet.sent_seq)
        if not pending:
            return
        first, last = pending[0][0], pending[-1][0]
        if outlet.reporting and first != outlet.sent_seq + 1 and outlet.sent_seq > 0:
            logger.warning(
                "client %s missed %d event(s) no longer in its backlog",
                box.client_id,
                first - outlet.sent_seq - 1,
            )
        tag = f"{box.epoch}:{last}" if outlet.reporting else None
        send = self._senders.get(id(outlet))
        if send is None:
            return
        if send(self._pack_batch([e for _, e in pending], tag), last):
            outlet.sent_seq = last
            if outlet.kind == "ws":
                box.mark_delivered(last)
        else:
            outlet.refused = True  # the events stay in the mailbox for the next connection

    def _idle(self, box: Mailbox) -> None:
        box.idle_since = since = time.monotonic()

        def expire() -> None:
            with self.lock:
                if box.idle_since == since:
                    self.room.expire_if_idle(box, time.monotonic())

        self._scheduler.call_later(self.room.window_s, expire)
