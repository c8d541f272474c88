"""Push recovery, the client half (``docs/reliability.md``, "flask_sente clients: recovery").

The client reports the last push it received as the query parameter ``fs-last-seq``:
``"<epoch>:<n>"``, the server mailbox's epoch and the event's sequence number, or ``"-"``
before any. To a client that reports, a flask_sente server numbers each push batch with a
third wrapper element, ``[[ev1 ... evk] nil "<epoch>:<n>"]`` (the batch holds events
``n-k+1 .. n``), and after a reconnect or a poll sends again whatever came after the
report. :class:`Received` keeps the report and drops what was already delivered, so each
push reaches the user once, in order. A 2-element wrapper (a Sente server, an older
flask_sente) carries no number and is delivered whole, as before.

Pure bookkeeping, kept by the client's protocol (:mod:`.context`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..packers import Packer
from ..protocol import Format, detect_format, unpack

__all__ = ["LAST_SEQ_PARAM", "NOTHING_YET", "Received", "parse_seq", "unpack_numbered"]

log = logging.getLogger("flask_sente.client.recovery")

#: The query parameter of WebSocket connects and Ajax GETs.
LAST_SEQ_PARAM = "fs-last-seq"
#: Its value before any numbered push has arrived.
NOTHING_YET = "-"


def parse_seq(value: Any) -> tuple[str, int] | None:
    """``"<epoch>:<n>"`` as ``(epoch, n)``; None for anything else."""
    if not isinstance(value, str):
        return None
    epoch, sep, n = value.rpartition(":")
    if not sep or not epoch or not (n.isascii() and n.isdigit()):
        return None
    return epoch, int(n)


class Received:
    """The epoch and number of the last push delivered, and the filter for new batches."""

    def __init__(self) -> None:
        self.epoch: str | None = None
        self.n = 0

    @property
    def param(self) -> str:
        """The value of ``fs-last-seq``: ``"<epoch>:<n>"``, or ``"-"`` before any."""
        return NOTHING_YET if self.epoch is None else f"{self.epoch}:{self.n}"

    def accept(self, events: Sequence[Any], seq: Any) -> list[Any]:
        """The events of a batch numbered ``seq`` not delivered yet, oldest first.

        A batch of an unknown epoch is a new mailbox (the server forgot this client): all
        of it is kept and its epoch adopted. A missing or unreadable number keeps it all.
        """
        numbered = parse_seq(seq)
        if numbered is None:
            if seq is not None:
                log.warning("a push batch numbered %r, not '<epoch>:<n>'; keeping it all", seq)
            return list(events)
        epoch, n = numbered
        first = n - len(events) + 1
        if epoch != self.epoch:
            if self.epoch is not None:
                log.warning(
                    "the server numbers pushes anew (epoch %s, was %s): it forgot this "
                    "client, and pushes it held may be lost",
                    epoch,
                    self.epoch,
                )
            self.epoch, self.n = epoch, n
            return list(events)
        if first > self.n + 1:
            log.warning(
                "pushes %d to %d never arrived (the server's recovery window or backlog "
                "was exceeded)",
                self.n + 1,
                first - 1,
            )
        fresh = list(events[max(0, self.n - first + 1) :])
        self.n = max(self.n, n)
        return fresh


class _Numbered:
    """The client's packer, keeping the third element of the wrapper it unpacks."""

    def __init__(self, packer: Packer) -> None:
        self._packer = packer
        self.binary = packer.binary
        self.seq: Any = None

    def pack(self, value: Any) -> str | bytes:
        return self._packer.pack(value)

    def unpack(self, data: str | bytes) -> Any:
        wrapper = self._packer.unpack(data)
        if isinstance(wrapper, list | tuple) and len(wrapper) > 2:
            self.seq = wrapper[2]
        return wrapper


def unpack_numbered(packer: Packer, package: str | bytes) -> tuple[Any, Any, Any]:
    """``(value, cb, seq)``: :func:`~flask_sente.protocol.unpack`, which reads a wrapper
    as ``[value cb]`` like Sente, plus the third element a numbered push carries.

    ``seq`` is None for a message without one (and for the v1 format, which has none).
    """
    if detect_format(package) is Format.V1:
        value, cb = unpack(packer, package)
        return value, cb, None
    numbered = _Numbered(packer)
    value, cb = unpack(numbered, package)
    return value, cb, numbered.seq
