"""How a held Ajax request ends, and what its client gets: never a ``200`` without a package.

A long-poll, or a POST waiting for its handler's reply, ends with exactly one value (see
:mod:`flask_sente.transports.longpoll`): a push batch, a packed reply, ``chsk/timeout``,
``CLOSED_BY_SERVER`` (``chsk/close``, shutdown) or ``CLIENT_GONE``. The functions here turn
that value into what the client gets. A Sente client reads a ``200`` by unpacking its body,
so every ``200`` carries a package; a long-poll the server closed fails, as http-kit makes it
fail (transcript finding F11). ``docs/protocol.md`` ("How a request ends") lists every path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .transports.http import Answer
from .transports.longpoll import CLIENT_GONE, CLOSED_BY_SERVER, OneShot

#: Packs a value in the server's ``[value nil]`` wrapper.
Pack = Callable[[Any], str | bytes]

#: What http-kit writes when Sente closes a long-poll it has not answered (transcript
#: finding F11): an empty chunked-encoding terminator, with no status line before it. No
#: HTTP client can read it, so the poll fails, and a Sente client handshakes again at once.
UNREADABLE_END = b"0\r\n\r\n"

SHUTTING_DOWN = "server shutting down: send again once it is back (or to another server)"


@dataclass(frozen=True, slots=True)
class PollBatch:
    """A long-poll's answer: a packed push batch ending at mailbox sequence ``last``."""

    packed: str | bytes
    last: int
    events: list[Any]


@dataclass(frozen=True, slots=True)
class Packed:
    """A handler's reply to an Ajax POST, packed on the handler's thread."""

    data: str | bytes


def poll_answer(value: Any, pack: Pack) -> Answer | bytes:
    """A long-poll's answer: its push batch or ``chsk/timeout``, or, once the server closed
    it, :data:`UNREADABLE_END` (raw bytes to write instead of a response)."""
    if isinstance(value, PollBatch):
        return 200, value.packed
    if value is CLOSED_BY_SERVER or value is CLIENT_GONE:
        return UNREADABLE_END
    return 200, pack(value)


def post_answer(value: Any, pack: Pack) -> Answer:
    """A POST's answer once its wait ended: the reply, ``chsk/timeout`` (as Sente), or a 503
    when the server shut down meanwhile."""
    if isinstance(value, Packed):
        return 200, value.data
    if value is CLOSED_BY_SERVER:
        return 503, SHUTTING_DOWN
    return 200, pack(value)


def packing_reply(waiter: OneShot, pack: Pack) -> Callable[[Any], bool]:
    """The ``reply`` of an Ajax POST's event message. It packs on the handler's thread, so a
    reply the packer cannot write raises :class:`PackError` there, as over WebSocket, and
    takes nothing: the handler may reply again (else the POST ends with ``chsk/timeout``, as
    for any handler that does not reply)."""

    def reply(value: Any) -> bool:
        return waiter.offer(Packed(pack(value)))

    return reply
