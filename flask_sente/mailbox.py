"""Per-client mailboxes: every push a client should get, numbered, kept for a while.

A mailbox belongs to one client (uid, client-id), whatever its transport. Each pushed event
gets the next sequence number of the mailbox; a connection (an *outlet*) takes the events
after the last one it sent. The backlog stays for ``recovery_window`` seconds, so a
flask_sente client that reports the last number it saw (``fs-last-seq``) gets what it
missed after a reconnect, and a Sente client gets what was pushed while it was between two
long-polls or reconnecting. The backlog is bounded by count and age; events that leave it
without having been sent are reported as undelivered.

Pure bookkeeping: the caller holds the lock and passes the clock in. The local bus keeps
these in memory; the Redis bus keeps the same structure in Redis.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

Lost = Callable[[Any, list[Any], str], None]


def parse_last_seq(text: str | None) -> tuple[str, int] | None:
    """``"<epoch>:<n>"`` as ``(epoch, n)``; None for ``"-"``, junk, or no parameter."""
    if not text or ":" not in text:
        return None
    epoch, _, n = text.rpartition(":")
    if not epoch or not n.isdigit() or len(n) > 18:
        return None
    return epoch, int(n)


def start_position(reported: tuple[str, int] | None, epoch: str, seq: int, delivered: int) -> int:
    """Where a new connection starts reading a mailbox.

    ``reported`` is None for a client that reports nothing (Sente's): after what earlier
    connections were given. A reporting client gets what follows its report when the report
    is of this mailbox; any other report (``"-"``, another epoch) has seen nothing of this
    mailbox: the whole backlog. A report past the last number is not trusted."""
    if reported is None:
        return delivered
    if reported[0] != epoch:
        return 0
    return reported[1] if reported[1] <= seq else delivered


#: What a reporting client that has seen nothing of any mailbox reports (``"-"``).
NOTHING_SEEN = ("", 0)


@dataclass(eq=False)
class Mailbox:
    uid: Any
    client_id: str
    epoch: str = field(default_factory=lambda: secrets.token_hex(4))
    seq: int = 0
    delivered: int = 0
    backlog: deque[tuple[int, float, Any]] = field(default_factory=deque)
    #: How many live connections use the mailbox (on this process).
    attached: int = 0
    idle_since: float | None = None

    def append(
        self, event: Any, now: float, *, max_events: int, max_age_s: float, lost: Lost
    ) -> int:
        self.seq += 1
        self.backlog.append((self.seq, now, event))
        self.trim(now, max_events=max_events, max_age_s=max_age_s, lost=lost)
        return self.seq

    def trim(self, now: float, *, max_events: int, max_age_s: float, lost: Lost) -> None:
        dropped: list[Any] = []
        while self.backlog and (
            len(self.backlog) > max_events or now - self.backlog[0][1] > max_age_s
        ):
            seq, _, event = self.backlog.popleft()
            if seq > self.delivered:
                dropped.append(event)
        if dropped:
            self.delivered = max(
                self.delivered, self.backlog[0][0] - 1 if self.backlog else self.seq
            )
            lost(self.uid, dropped, f"client {self.client_id}'s backlog overflowed before delivery")

    def after(self, seq: int) -> list[tuple[int, Any]]:
        """The backlog's events numbered above ``seq``, oldest first."""
        if not self.backlog or self.backlog[-1][0] <= seq:
            return []
        start = max(0, seq + 1 - self.backlog[0][0])
        # numbers run on one by one: skip to the first wanted without copying the backlog
        return [(s, e) for s, _, e in islice(self.backlog, start, None)]

    def start_seq(self, reported: tuple[str, int] | None) -> int:
        """Where a new outlet starts (see :func:`start_position`)."""
        return start_position(reported, self.epoch, self.seq, self.delivered)

    def mark_delivered(self, seq: int) -> None:
        self.delivered = max(self.delivered, seq)

    def undelivered(self) -> list[Any]:
        return [e for s, _, e in self.backlog if s > self.delivered]


class MailRoom:
    """Every mailbox, by uid and client-id."""

    def __init__(self, *, max_events: int, window_s: float, lost: Lost) -> None:
        self._by_uid: dict[Any, dict[str, Mailbox]] = {}
        self.max_events = max_events
        self.window_s = window_s
        self._lost = lost

    def get(self, uid: Any, client_id: str) -> Mailbox | None:
        return self._by_uid.get(uid, {}).get(client_id)

    def get_or_create(self, uid: Any, client_id: str) -> Mailbox:
        by_client = self._by_uid.setdefault(uid, {})
        box = by_client.get(client_id)
        if box is None:
            box = by_client[client_id] = Mailbox(uid, client_id)
        return box

    def of(self, uid: Any) -> list[Mailbox]:
        return list(self._by_uid.get(uid, {}).values())

    def push(self, box: Mailbox, event: Any, now: float) -> int:
        return box.append(
            event, now, max_events=self.max_events, max_age_s=self.window_s, lost=self._lost
        )

    def expire_if_idle(self, box: Mailbox, now: float) -> bool:
        """Drop ``box`` when it has been without a connection for the whole window."""
        if (
            box.attached == 0
            and box.idle_since is not None
            and now - box.idle_since >= self.window_s
        ):
            self._remove(box)
            return True
        return False

    def _remove(self, box: Mailbox) -> None:
        by_client = self._by_uid.get(box.uid)
        if by_client is None or by_client.get(box.client_id) is not box:
            return
        del by_client[box.client_id]
        if not by_client:
            del self._by_uid[box.uid]
        pending = box.undelivered()
        if pending:
            self._lost(
                box.uid,
                pending,
                f"client {box.client_id} did not come back within the recovery window",
            )
