"""Pushes, from ``send`` to a connection: outlets and batching windows over the bus.

``send(uid, event)`` puts the event, packed once (:mod:`flask_sente.batching`), in the
mailbox of every client of the uid (on the bus: in memory, or in Redis for every worker).
Each client's live connection here (its *outlet*) is then flushed after its batching window
(30 ms for a WebSocket, 100 ms for Ajax, as Sente), or at once with ``flush=True``. A flush
takes every event after the last one the outlet sent, so events leave in call order. A
client without a live connection keeps its events in its mailbox until it comes back (see
:mod:`flask_sente.mailbox`).

Nothing on this path stops silently. An event that cannot be written at flush time (read
back from a mailbox another process filled) is dropped, reported as undelivered, and the
events after it go on. Any other failure of a flush is logged with the connection and
handed to ``on_fault``, which closes that connection with a reason the client sees; the
events stay in the mailbox for the client's next connection.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .batching import Outgoing
from .bus import Bus
from .errors import InvalidEvent, PackError, UnpackError
from .mailbox import NOTHING_SEEN, Lost, parse_last_seq
from .scheduler import Scheduler

logger = logging.getLogger("flask_sente.delivery")

#: ``write_batch(items, tag)``: the packed push message; ``tag`` is ``"<epoch>:<n>"`` for
#: clients that report what they saw, else None.
WriteBatch = Callable[[list[Outgoing], str | None], str | bytes]
#: ``send(packed, last_seq, items) -> bool``: hand a packed batch to a connection.
SendPacked = Callable[[str | bytes, int, list[Outgoing]], bool]
#: ``on_fault(outlet, reason)``: close the outlet's connection, telling the client why.
OnFault = Callable[["Outlet", str], None]

#: What an event that cannot be written raises (from :meth:`BatchWriter.write`).
_UNWRITABLE = (PackError, UnpackError, InvalidEvent)
#: A WebSocket batch leaves at once when it holds this many events, however young its
#: window: the window bounds how long an event waits, this how long a burst delays its first
#: events (and how much a client reads at a time). Sente waits for the window whatever comes.
#: An Ajax batch waits for its window (it ends the client's poll).
BATCH_MAX_EVENTS = 64
#: The close reason a client sees when its connection failed on our side.
FAULT_REASON = "internal server error while delivering; reconnect to get the rest"


@dataclass(eq=False)
class Outlet:
    """One live connection here, taking events from its client's mailbox."""

    uid: Any
    client_id: str
    kind: str
    send: SendPacked
    sent_seq: int
    reporting: bool
    flush_pending: bool = False
    #: Events pushed since its last flush (roughly: a notice from the bus counts one).
    unsent: int = 0
    #: The connection refused a batch (closing, or too slow): nothing more goes to it.
    refused: bool = False
    #: The mailbox epoch seen last; a new one means the mailbox was made anew.
    epoch: str | None = None
    #: Lets go of what ``send`` handed over, once the bus records it as delivered (a
    #: long-poll holds its batch until then, so its client cannot poll again first).
    release: Callable[[], None] | None = None


class Delivery:
    """Thread-safe; one lock guards the outlets of this process."""

    def __init__(
        self,
        bus: Bus,
        scheduler: Scheduler,
        *,
        write_batch: WriteBatch,
        windows_s: dict[str, float],
        lost: Lost,
        on_fault: OnFault,
    ) -> None:
        self.lock = threading.RLock()
        self.bus = bus
        self._scheduler = scheduler
        self._write_batch = write_batch
        self._windows_s = windows_s
        self._lost = lost
        self._on_fault = on_fault
        self._outlets: dict[Any, dict[str, Outlet]] = {}

    # ------------------------------------------------------------------ pushing

    def push(self, uid: Any, item: Outgoing, *, flush: bool = False) -> bool:
        """Queue ``item`` for every client of ``uid``; False when ``uid`` has none."""
        try:
            reached = self.bus.push(uid, item)  # outside the lock: it may be a round trip
        except ConnectionError:
            with self.lock:
                return self._push_locally(uid, item)
        if not reached:
            self._lost(uid, [item], "the uid has no connection")
            return False
        self._wake_outlets(uid, flush=flush)
        return True

    def _push_locally(self, uid: Any, item: Outgoing) -> bool:
        """The broker is down: hand the event to this process's connections of ``uid``
        directly, unnumbered (no recovery for it), and count it lost for the others."""
        outlets = [o for o in self._outlets.get(uid, {}).values() if not o.refused]
        for outlet in outlets:
            try:
                outlet.send(self._write_batch([item], None), outlet.sent_seq, [item])
            except Exception as exc:
                self._fail(outlet, exc)
            finally:
                if outlet.release is not None:
                    outlet.release()
        if not outlets:
            self._lost(uid, [item], "the message broker is unreachable")
        return bool(outlets)

    def remote_push(self, uid: Any) -> None:
        """Another process pushed to ``uid``: flush its outlets here after their window."""
        self._wake_outlets(uid, flush=False)

    def _wake_outlets(self, uid: Any, *, flush: bool) -> None:
        by_client = self._outlets.get(uid)
        if not flush and by_client:
            # Long-polls whose flush is already scheduled need nothing more, and are seen
            # without the lock (the copy is one C call, atomic under the GIL): their flush
            # clears the flag before it reads the mailbox, which already holds this event.
            # Under gevent the lock is the pure-Python RLock, a good part of each push.
            for outlet in tuple(by_client.values()):
                if not outlet.flush_pending or outlet.kind != "ajax":
                    break
            else:
                return
        now: list[Outlet] = []
        with self.lock:
            for outlet in self._outlets.get(uid, {}).values():
                outlet.unsent += 1
                if flush or (outlet.unsent >= BATCH_MAX_EVENTS and outlet.kind == "ws"):
                    outlet.unsent = 0
                    now.append(outlet)
                elif not outlet.flush_pending:
                    outlet.flush_pending = True
                    self._schedule_flush(outlet)
        for outlet in now:
            self._flush(outlet)

    # ------------------------------------------------------------------ connections

    def ensure_mailbox(self, uid: Any, client_id: str) -> None:
        """A client that handshook: keep pushes for it until its first poll."""
        self.bus.ensure_mailbox(uid, client_id)

    def open(
        self,
        uid: Any,
        client_id: str,
        kind: str,
        send: SendPacked,
        *,
        last_seq: str | None,
        release: Callable[[], None] | None = None,
    ) -> tuple[Outlet, Outlet | None]:
        """Make a connection the client's outlet here and send it the backlog it lacks.

        ``last_seq`` is the client's ``fs-last-seq`` parameter (None for Sente clients);
        ``release`` lets go of a batch ``send`` held, once it is recorded as delivered.
        Returns the new outlet and the one it replaced."""
        # the bus may answer over the network: never while holding the lock
        self.bus.attach(uid, client_id)
        reported = None if last_seq is None else parse_last_seq(last_seq) or NOTHING_SEEN
        start = self.bus.position(uid, client_id, reported)
        outlet = Outlet(
            uid, client_id, kind, send, start, reporting=last_seq is not None, release=release
        )
        with self.lock:
            by_client = self._outlets.setdefault(uid, {})
            previous = by_client.get(client_id)
            by_client[client_id] = outlet
            if previous is not None:
                previous.refused = True
        if previous is not None:
            self.bus.detach(uid, client_id)
        self._flush(outlet)
        return outlet, previous

    def close(self, outlet: Outlet) -> None:
        """The outlet's connection ended."""
        with self.lock:
            by_client = self._outlets.get(outlet.uid, {})
            mine = by_client.get(outlet.client_id) is outlet
            if mine:
                del by_client[outlet.client_id]
                if not by_client:
                    del self._outlets[outlet.uid]
        if mine:
            self.bus.detach(outlet.uid, outlet.client_id)

    def live_outlets(self) -> list[Outlet]:
        with self.lock:
            return [o for by_client in self._outlets.values() for o in by_client.values()]

    # ------------------------------------------------------------------ flushing

    def _schedule_flush(self, outlet: Outlet) -> None:
        def timed_flush() -> None:
            with self.lock:
                outlet.flush_pending = False
                outlet.unsent = 0
            self._flush(outlet)

        self._scheduler.call_later(
            self._windows_s[outlet.kind],
            timed_flush,
            what="a flush",
            uid=outlet.uid,
            client_id=outlet.client_id,
        )

    def _flush(self, outlet: Outlet) -> None:
        """Send the outlet what its mailbox holds past what it sent. Called without the
        lock: the mailbox is read first, then the lock is taken to send, so flushes of one
        outlet may overlap and each sends only what is newer than the last one sent."""
        if outlet.refused:
            return
        try:
            self._send_pending(outlet)
        except Exception as exc:
            self._fail(outlet, exc)

    def _send_pending(self, outlet: Outlet) -> None:
        for _ in range(2):  # a second pass only when the mailbox was made anew
            if outlet.refused:
                return
            epoch, pending = self.bus.read(outlet.uid, outlet.client_id, outlet.sent_seq)
            with self.lock:
                if outlet.epoch is None:
                    outlet.epoch = epoch
                elif epoch and epoch != outlet.epoch:
                    # the broker lost the mailbox (a Redis restart): its numbering started again
                    outlet.epoch, outlet.sent_seq = epoch, 0
                    continue
                last, dropped = self._send(outlet, epoch, pending)
            try:
                if last:
                    self.bus.delivered(outlet.uid, outlet.client_id, last)
            finally:
                if outlet.release is not None:
                    outlet.release()
            for item, error in dropped:
                self._lost(
                    outlet.uid,
                    [item],
                    f"it cannot be written for client {outlet.client_id}: {error}",
                )
            return

    def _send(
        self, outlet: Outlet, epoch: str, pending: list[tuple[int, Outgoing]]
    ) -> tuple[int, list[tuple[Outgoing, Exception | None]]]:
        """Hand the events newer than the outlet's last to it (the lock held). Returns the
        number of the last one handed over or dropped (0 for none), and the dropped ones."""
        pending = [(seq, item) for seq, item in pending if seq > outlet.sent_seq]
        dropped: list[tuple[Outgoing, Exception | None]] = []
        if outlet.refused or not pending:
            return 0, dropped
        first = pending[0][0]
        if outlet.reporting and first != outlet.sent_seq + 1 and outlet.sent_seq > 0:
            logger.warning(
                "client %s missed %d event(s) no longer in its backlog",
                outlet.client_id,
                first - outlet.sent_seq - 1,
            )
        start = outlet.sent_seq
        while pending:
            packed, count, error = self._write_prefix(outlet, epoch, pending)
            if packed is None:
                seq, item = pending[0]
                logger.error(
                    "a push to uid %r, client %s cannot be written (%s); dropping it, the "
                    "ones after it go on",
                    outlet.uid,
                    outlet.client_id,
                    error,
                )
                outlet.sent_seq = seq
                dropped.append((item, error))
                pending = pending[1:]
                continue
            batch, pending = pending[:count], pending[count:]
            last = batch[-1][0]
            if not outlet.send(packed, last, [item for _, item in batch]):
                outlet.refused = True  # the events stay in the mailbox for the next connection
                break
            # delivered as soon as handed over: a client polls again only once it has the
            # answer, possibly on another worker, and must not be sent it twice
            outlet.sent_seq = last
            if outlet.kind == "ajax":
                break  # a long-poll carries one answer; the rest waits for the next poll
        return (outlet.sent_seq if outlet.sent_seq != start else 0), dropped

    def _write_prefix(
        self, outlet: Outlet, epoch: str, pending: list[tuple[int, Outgoing]]
    ) -> tuple[str | bytes | None, int, Exception | None]:
        """The longest run of ``pending`` that can be written, as ``(message, count, None)``;
        ``(None, 0, error)`` when its first event cannot be written at all."""
        try:
            return self._batch(outlet, epoch, pending), len(pending), None
        except _UNWRITABLE:
            pass
        for n, entry in enumerate(pending):
            try:
                self._batch(outlet, epoch, [entry])
            except _UNWRITABLE as exc:
                if n == 0:
                    return None, 0, exc
                break
        else:
            n = 1  # each event writes alone but not together: one per batch
        try:
            return self._batch(outlet, epoch, pending[:n]), n, None
        except _UNWRITABLE:
            return self._batch(outlet, epoch, pending[:1]), 1, None

    def _batch(self, outlet: Outlet, epoch: str, entries: list[tuple[int, Outgoing]]) -> Any:
        tag = f"{epoch}:{entries[-1][0]}" if outlet.reporting else None
        return self._write_batch([item for _, item in entries], tag)

    def _fail(self, outlet: Outlet, exc: Exception) -> None:
        """A flush failed for a reason other than its events: close the connection with a
        reason; what it did not get stays in the mailbox for the client's next one."""
        logger.error(
            "delivery to uid %r, client %s (%s) failed; closing the connection",
            outlet.uid,
            outlet.client_id,
            outlet.kind,
            exc_info=exc,
        )
        outlet.refused = True
        try:
            self._on_fault(outlet, FAULT_REASON)
        except Exception:
            logger.exception(
                "closing the connection of uid %r, client %s failed", outlet.uid, outlet.client_id
            )
