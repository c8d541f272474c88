"""Push batches from events packed once, when they were sent.

``send`` packs its event at once, so an event the packer cannot write is refused at the
call (:class:`~flask_sente.errors.PackError`), before anything is queued; mailboxes keep
the packed form (:class:`Outgoing`). A flush then writes the batch ``[[ev1 ... evk] nil]``
(``[... nil "<epoch>:<n>"]`` for clients that report what they saw):

* json and edn write a vector as its elements' text joined, so the batch is the packed
  events joined: the same bytes as packing the batch whole, without packing anything again;
* other packers are packed anew from the events: binary formats carry state across one
  message (msgpack's key cache, gzip's stream), so their events cannot simply be joined.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import protocol
from .errors import PackError, SenteError
from .packers import EdnPacker, JsonPacker, Packer
from .protocol import assert_event, normalize_event, pack, push_batch

_UNREAD = object()

#: Packers whose vectors are their elements joined: (separator, how nil is written).
_JOINABLE: dict[type, tuple[str, str]] = {JsonPacker: (",", "null"), EdnPacker: (" ", "nil")}


def pack_value(packer: Packer, value: Any) -> str | bytes:
    """``packer.pack(value)``; whatever a packer raises on a value it cannot write is a
    :class:`PackError` (third-party packers may raise ``TypeError`` and the like)."""
    try:
        return packer.pack(value)
    except SenteError:
        raise
    except Exception as exc:
        raise PackError(f"{packer!r} cannot write {_preview(value)}: {exc}") from exc


class Outgoing:
    """One pushed event, valid and packed.

    A mailbox in Redis keeps only the packed form: ``event`` is then read back from it
    when it is needed (a packer that cannot join, a report of an undelivered push).
    """

    __slots__ = ("_event", "_packer", "packed")

    def __init__(self, packed: str | bytes, event: Any = _UNREAD, packer: Packer | None = None):
        self.packed = packed
        self._event = event
        self._packer = packer

    @classmethod
    def of(cls, packer: Packer, event: Any) -> Outgoing:
        """``event`` checked, normalized and packed: what ``send`` queues. Raises
        :class:`~flask_sente.errors.InvalidEvent` for what is not an event and
        :class:`PackError` for an event the packer cannot write."""
        ev = normalize_event(assert_event(event))
        return cls(pack_value(packer, ev), ev)

    @classmethod
    def unread(cls, packer: Packer, packed: str | bytes) -> Outgoing:
        """An event known only by its packed form."""
        return cls(packed, _UNREAD, packer)

    @property
    def event(self) -> Any:
        """The event; raises :class:`~flask_sente.errors.UnpackError` when a packed form
        kept elsewhere cannot be read (written by a process with another packer)."""
        if self._event is _UNREAD:
            assert self._packer is not None
            self._event = self._packer.unpack(self.packed)
        return self._event

    def reported(self) -> Any:
        """What an undelivered-push report shows: the event, else its packed form."""
        try:
            return self.event
        except SenteError:
            return self.packed

    def __repr__(self) -> str:
        return f"Outgoing({_preview(self.packed)})"


def reported(items: Sequence[Any]) -> list[Any]:
    """Undelivered pushes as events, whether they are :class:`Outgoing` or plain events."""
    return [item.reported() if isinstance(item, Outgoing) else item for item in items]


class BatchWriter:
    """Writes push batches of :class:`Outgoing` events for one packer and wire format."""

    def __init__(self, packer: Packer, *, legacy: bool | None) -> None:
        """``legacy``: write Sente's v1 format; None follows
        :data:`flask_sente.protocol.WRITE_LEGACY_PACK_FORMAT` at each write."""
        self._packer = packer
        self._legacy = legacy
        self._joint = _JOINABLE.get(type(packer))

    @property
    def joins(self) -> bool:
        """Whether batches are the packed events joined (else packed anew)."""
        return self._joint is not None

    def write(self, items: Sequence[Outgoing], tag: str | None) -> str | bytes:
        """The packed push message of ``items``; ``tag`` is ``"<epoch>:<n>"`` or None.

        Raises :class:`PackError`, :class:`~flask_sente.errors.UnpackError` or
        :class:`~flask_sente.errors.InvalidEvent` for an event that cannot be written."""
        if self._joint is None:
            events = push_batch(item.event for item in items)
            return pack(self._packer, events, None, tag=tag, legacy=self._legacy)
        separator, nil = self._joint
        vector = "[" + separator.join([item.packed for item in items]) + "]"  # type: ignore[misc]
        legacy = protocol.WRITE_LEGACY_PACK_FORMAT if self._legacy is None else self._legacy
        if legacy:
            return "-" + vector
        if tag is None:
            return "[" + vector + separator + nil + "]"
        return "[" + vector + separator + nil + separator + str(self._packer.pack(tag)) + "]"


def _preview(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
