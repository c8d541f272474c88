"""Sente's wire protocol, pure: events, special ids, callback wrapping, packing formats.

Nothing here touches a socket, a thread or a clock, so the server, the Python client
and the tests all share one definition of what goes on the wire (spec sections 2-3).

An *event* is ``[id]`` or ``[id, data]`` where ``id`` is a namespaced id ``"ns/name"``.
In Python, ids are strings; :class:`~flask_sente.values.Keyword` (defined in
:mod:`flask_sente.values`, importable from here too) is the ``str`` subclass that makes the
edn packer write ``:ns/name`` while comparing equal to the plain string.

Every message, both ways, is one packed 2-element wrapper ``[value cb]`` (Sente 1.21+).
Older peers wrote ``"+"``/``"-"``-prefixed (v1) or 1-element (v2) wrappers; all three are read.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from .errors import InvalidEvent, PackError, UnpackError
from .values import Keyword

if TYPE_CHECKING:
    from .packers import Packer


# Special event ids and values (spec section 3).
HANDSHAKE = Keyword("chsk/handshake")
WS_PING = Keyword("chsk/ws-ping")
WS_PONG = Keyword("chsk/ws-pong")
STATE = Keyword("chsk/state")
RECV = Keyword("chsk/recv")
UIDPORT_OPEN = Keyword("chsk/uidport-open")
UIDPORT_CLOSE = Keyword("chsk/uidport-close")
BAD_PACKAGE = Keyword("chsk/bad-package")
BAD_EVENT = Keyword("chsk/bad-event")
TIMEOUT = Keyword("chsk/timeout")
CLOSED = Keyword("chsk/closed")
ERROR = Keyword("chsk/error")
DUMMY_CB_200 = Keyword("chsk/dummy-cb-200")
CLOSE = Keyword("chsk/close")
NIL_UID = Keyword("sente/nil-uid")
ALL_USERS_WITHOUT_UID = Keyword("sente/all-users-without-uid")
SKIP_CSRF_CHECK = Keyword("sente/skip-CSRF-check")

#: The Ajax callback marker Sente 1.21+ writes; ``0`` (v1.18-1.20) and ``ajax-cb`` are read too.
AJAX_CB = Keyword("ajax")
LEGACY_AJAX_CBS: tuple[Any, ...] = (0, Keyword("ajax-cb"))

#: The reply a server gives to a client ``chsk/ws-ping`` carrying a callback.
PONG = "pong"

CB_ERRORS = frozenset({TIMEOUT, CLOSED, ERROR})

#: Module default for writing the legacy v1 format (Sente's ``*write-legacy-pack-format?*``).
#: Servers and clients take a ``write_legacy_pack_format`` option; each call may override both.
WRITE_LEGACY_PACK_FORMAT = False


# ---------------------------------------------------------------------------- events


def _is_vector(x: Any) -> bool:
    return isinstance(x, list | tuple)


def _is_namespaced_id(x: Any) -> bool:
    if not isinstance(x, str):
        return False
    ns, sep, name = x.partition("/")
    return bool(sep and ns and name)


def validate_event(x: Any) -> dict[str, Any] | None:
    """None when ``x`` is a valid ``[id]`` or ``[id, data]`` event, else what is wrong.

    The description mirrors Sente's validation map, e.g.
    ``{"wrong-type": {"expected": "vector", "actual": "str"}}``.
    """
    if not _is_vector(x):
        return {"wrong-type": {"expected": "vector", "actual": type(x).__name__}}
    if len(x) not in (1, 2):
        return {"wrong-length": {"expected": [1, 2], "actual": len(x)}}
    ev_id = x[0]
    if not isinstance(ev_id, str):
        return {"wrong-id-type": {"expected": "namespaced keyword", "actual": type(ev_id).__name__}}
    if not _is_namespaced_id(ev_id):
        return {"unnamespaced-id": {"expected": "namespaced keyword", "actual": str(ev_id)}}
    return None


def is_event(x: Any) -> bool:
    """True when ``x`` is a valid event."""
    return validate_event(x) is None


def assert_event(x: Any) -> Any:
    """Return ``x`` if it is a valid event, else raise :class:`InvalidEvent` (a ``ValueError``)."""
    problem = validate_event(x)
    if problem is not None:
        raise InvalidEvent(x, problem)
    return x


def as_event(x: Any) -> list[Any]:
    """``x`` as a normalized event, or ``["chsk/bad-event", x]`` when it is not one."""
    if validate_event(x) is None:
        return normalize_event(x)
    return [BAD_EVENT, x]


def normalize_event(ev: Sequence[Any]) -> list[Any]:
    """A valid event as a list whose id is a :class:`Keyword` (so edn writes ``:ns/name``)."""
    ev_id = ev[0] if isinstance(ev[0], Keyword) else Keyword(ev[0])
    return [ev_id] if len(ev) == 1 else [ev_id, ev[1]]


def event_id(ev: Sequence[Any]) -> str:
    return str(ev[0])


def event_data(ev: Sequence[Any]) -> Any:
    return ev[1] if len(ev) > 1 else None


def cb_error(reply: Any) -> bool:
    """True exactly when a callback reply is ``chsk/closed``, ``chsk/timeout`` or ``chsk/error``."""
    return isinstance(reply, str) and reply in CB_ERRORS


def cb_success(reply: Any) -> bool:
    """The complement of :func:`cb_error`: any other value, None included, is a reply."""
    return not cb_error(reply)


def new_cb_uuid() -> str:
    """A callback id as Sente makes one: 6 lower-case hex characters."""
    return secrets.token_hex(3)


def has_ajax_cb(cb: Any) -> bool:
    """Whether an Ajax POST's callback slot asks for a reply (``ajax``, ``0`` or ``ajax-cb``)."""
    return cb is not None and cb is not False


# ---------------------------------------------------------------------------- builders


def handshake_event(uid: Any, handshake_data: Any = None) -> list[Any]:
    """``[chsk/handshake [uid nil data]]``; a None uid goes out as ``sente/nil-uid``."""
    return [HANDSHAKE, [NIL_UID if uid is None else uid, None, handshake_data]]


def push_batch(events: Iterable[Sequence[Any]]) -> list[list[Any]]:
    """The value of a server push: always a vector of events, even for one event.

    Raises :class:`InvalidEvent` for anything that is not an event, so that a lone event
    passed where a batch belongs (``push_batch(["a/b", 1])``) fails instead of being split.
    """
    return [normalize_event(assert_event(ev)) for ev in events]


def ajax_post_value(event: Sequence[Any], want_reply: bool) -> tuple[list[Any], Keyword | None]:
    """The value and callback marker of an Ajax POST ``ppstr``."""
    return normalize_event(event), (AJAX_CB if want_reply else None)


# ---------------------------------------------------------------------------- packing


class Format(Enum):
    """The three wrapper formats of spec section 2.5."""

    CURRENT = "current"  # [x cb-or-nil], Sente 1.21+
    V2 = "v2"  # [x] or [x cb], Sente 1.18-1.20
    V1 = "v1"  # "+"/"-" prefixed, Sente <= 1.17


def pack(
    packer: Packer,
    value: Any,
    cb: Any = None,
    *,
    wrap: bool | None = None,
    legacy: bool | None = None,
    tag: str | None = None,
) -> str | bytes:
    """Pack ``value`` with its callback slot into one wire message.

    The current format is ``[value cb]``, with ``cb`` None when there is no callback.
    With ``legacy`` (default :data:`WRITE_LEGACY_PACK_FORMAT`) the v1 format is written:
    ``"+" + pack([value cb])`` when ``wrap`` (default: a callback is present; clients
    always wrap their sends), else ``"-" + pack(value)``.

    ``tag`` adds a third element, ``[value cb tag]``: the mailbox position of a push batch,
    sent only to flask_sente clients that asked for it (docs/reliability.md). Sente peers
    read the first two elements. The legacy format has no room for it and drops it.
    """
    if legacy is None:
        legacy = WRITE_LEGACY_PACK_FORMAT
    if not legacy:
        return packer.pack([value, cb] if tag is None else [value, cb, tag])
    if packer.binary:
        raise PackError(
            "the legacy v1 format is text only; it cannot be written with a binary packer"
        )
    if wrap is None:
        wrap = cb is not None
    if wrap:
        body = packer.pack([value] if cb is None else [value, cb])
        return "+" + str(body)
    return "-" + str(packer.pack(value))


def detect_format(package: str | bytes) -> Format:
    if isinstance(package, str) and package[:1] in ("+", "-"):
        return Format.V1
    return Format.CURRENT


def unpack(packer: Packer, package: str | bytes) -> tuple[Any, Any]:
    """Read one wire message as ``(value, cb)`` in any of the three formats.

    Raises :class:`UnpackError` carrying ``package`` for anything that is not a message.
    """
    try:
        if isinstance(package, str) and package[:1] == "-":
            return packer.unpack(package[1:]), None
        body = package[1:] if isinstance(package, str) and package[:1] == "+" else package
        wrapper = packer.unpack(body)
    except UnpackError as exc:
        if exc.package is package:
            raise
        raise UnpackError(str(exc), package) from exc
    except Exception as exc:  # a packer may fail in many ways on hostile input
        raise UnpackError(f"cannot unpack {_preview(package)}: {exc}", package) from exc
    if wrapper is None:
        return None, None
    if not _is_vector(wrapper):
        raise UnpackError(
            f"a message must be a [value cb] vector, got {type(wrapper).__name__}: "
            f"{_preview(package)}",
            package,
        )
    value = wrapper[0] if len(wrapper) > 0 else None
    cb = wrapper[1] if len(wrapper) > 1 else None
    return value, cb


def _preview(package: str | bytes, limit: int = 80) -> str:
    text = repr(package)
    return text if len(text) <= limit else text[:limit] + "..."


# ---------------------------------------------------------------------------- client side


class MessageKind(Enum):
    """What a server-to-client message is (spec section 2, end)."""

    HANDSHAKE = "handshake"
    PING = "ping"
    REPLY = "reply"
    PUSH = "push"
    TIMEOUT = "timeout"
    DUMMY = "dummy"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class ServerMessage:
    kind: MessageKind
    value: Any
    cb: Any = None

    @property
    def events(self) -> list[Any]:
        """The pushed events of a PUSH message, each normalized."""
        return [as_event(ev) for ev in self.value] if self.kind is MessageKind.PUSH else []

    @property
    def handshake(self) -> tuple[Any, Any]:
        """``(uid, handshake_data)`` of a HANDSHAKE message."""
        body: Any = self.value[1] if len(self.value) > 1 else None
        if not isinstance(body, list | tuple):
            return None, None
        uid = body[0] if len(body) > 0 else None
        data = body[2] if len(body) > 2 else None
        return uid, data


def classify_server_message(value: Any, cb: Any) -> ServerMessage:
    """Tell a handshake, a ping, a callback reply, a push batch and the Ajax markers apart."""
    if _is_vector(value) and value and value[0] == HANDSHAKE:
        return ServerMessage(MessageKind.HANDSHAKE, value)
    if value == WS_PING and isinstance(value, str):
        return ServerMessage(MessageKind.PING, value)
    if cb is not None:
        return ServerMessage(MessageKind.REPLY, value, cb)
    if isinstance(value, str) and value == TIMEOUT:
        return ServerMessage(MessageKind.TIMEOUT, value)
    if isinstance(value, str) and value == DUMMY_CB_200:
        return ServerMessage(MessageKind.DUMMY, value)
    if _is_vector(value):
        return ServerMessage(MessageKind.PUSH, value)
    return ServerMessage(MessageKind.INVALID, value)
