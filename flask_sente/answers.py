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

from .errors import PackError
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


@dataclass(frozen=True, slots=True)
class ReplyFailed:
    """A handler's reply to an Ajax POST that the packer could not write."""

    reason: str


def poll_answer(value: Any, pack: Pack) -> Answer | bytes:
    """A long-poll's answer: its push batch or ``chsk/timeout``, or, once the server closed
    it, :data:`UNREADABLE_END` (raw bytes to write instead of a response)."""
    if isinstance(value, PollBatch):
        return 200, value.packed
    if value is CLOSED_BY_SERVER or value is CLIENT_GONE:
        return UNREADABLE_END
    return 200, pack(value)


def post_answer(value: Any, pack: Pack) -> Answer:
    """A POST's answer once its wait ended: the reply, ``chsk/timeout`` (as Sente), a 500 for
    a reply the packer could not write, or a 503 when the server shut down meanwhile."""
    if isinstance(value, Packed):
        return 200, value.data
    if isinstance(value, ReplyFailed):
        return 500, f"the handler's reply could not be packed: {value.reason}"
    if value is CLOSED_BY_SERVER:
        return 503, SHUTTING_DOWN
    return 200, pack(value)


class PostReply:
    """The ``reply`` of an Ajax POST's event message. It packs on the handler's thread, so a
    reply the packer cannot write raises there (as over WebSocket); the handler may catch
    that and reply again. Once the handler is done (:meth:`handled`) without a reply that
    could be written, the POST gets a 500 with the reason."""

    __slots__ = ("_failure", "_pack", "_waiter")

    def __init__(self, waiter: OneShot, pack: Pack) -> None:
        self._waiter = waiter
        self._pack = pack
        self._failure: str | None = None

    def __call__(self, value: Any) -> bool:
        try:
            packed = self._pack(value)
        except PackError as exc:
            self._failure = str(exc)
            raise
        return self._waiter.offer(Packed(packed))

    def handled(self) -> None:
        """The handler returned or raised."""
        if self._failure is not None:
            self._waiter.offer(ReplyFailed(self._failure))
