"""What passes between the client's protocol and its transports, and the one interface both
transports implement.

:class:`~.protocol.ClientProtocol` decides everything Sente means; a :class:`Transport` only
carries out its commands and reports what happened, through a :class:`TransportListener`:

============================================  ==============================================
command                                       what the transport reports back
============================================  ==============================================
:class:`OpenWebSocket` (a URL, headers)       ``ws_opened``, or ``ws_failed`` (``refused``:
                                              a server answered but would not upgrade);
                                              then ``ws_received`` for each message and
                                              ``ws_closed`` once, with a :class:`WsClose`
:class:`SendFrame` (text or bytes)            nothing: it is written at once, or it raises
:class:`CloseWebSocket` (code, reason)        ``ws_closed`` (unless the socket was cut
                                              silently before)
:class:`CutWebSocket`                         ``ws_closed``, or nothing when ``silently``
:class:`HttpRequest` (GET or POST)            ``http_answered`` (status and body), or
                                              ``http_failed`` (``timed_out``: the read
                                              timeout ran out)
:class:`AbortRequest`                         ``http_failed`` for the request, if it was
                                              still out
============================================  ==============================================

The WebSocket transport (websocket-client) takes the first four, the Ajax transport
(requests) the last two. Each command names its *link*: the connection or request it is
about, numbered by the protocol, which also numbers every report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol

__all__ = [
    "AbortRequest",
    "CloseWebSocket",
    "Command",
    "CutWebSocket",
    "HttpRequest",
    "OpenWebSocket",
    "SendFrame",
    "Transport",
    "TransportListener",
    "WsClose",
]


@dataclass(frozen=True, slots=True)
class WsClose:
    """How a WebSocket ended; ``clean`` means a close frame was received (``wasClean``)."""

    code: int
    reason: str
    clean: bool


@dataclass(frozen=True, slots=True)
class OpenWebSocket:
    """Open a WebSocket to ``url`` (``ws://`` or ``wss://``), sending ``headers`` too."""

    transport: ClassVar[str] = "ws"
    link: int
    url: str
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class SendFrame:
    """Write one message. ``cb_uuid`` is the protocol's own: handed back if the write fails."""

    transport: ClassVar[str] = "ws"
    link: int
    data: str | bytes
    cb_uuid: str | None = None


@dataclass(frozen=True, slots=True)
class CloseWebSocket:
    """Send a close frame. Then cut the socket at once, or, with ``linger``, leave it to the
    peer's answer until the transport is closed (a clean goodbye)."""

    transport: ClassVar[str] = "ws"
    link: int
    code: int
    reason: str
    linger: bool = False


@dataclass(frozen=True, slots=True)
class CutWebSocket:
    """Cut the socket without a close frame, as a failing network would; ``silently``: the
    listener hears nothing more of it and writes vanish, so only a keepalive can find out."""

    transport: ClassVar[str] = "ws"
    link: int
    silently: bool


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One HTTP request; ``timeout_s`` bounds the wait for the answer."""

    transport: ClassVar[str] = "ajax"
    link: int
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None
    timeout_s: float


@dataclass(frozen=True, slots=True)
class AbortRequest:
    """Cut a request short, however far it got."""

    transport: ClassVar[str] = "ajax"
    link: int


Command = OpenWebSocket | SendFrame | CloseWebSocket | CutWebSocket | HttpRequest | AbortRequest


class TransportListener(Protocol):
    """Who hears what a transport's connections and requests did (the client's runner)."""

    def ws_opened(self, link: int) -> None: ...

    def ws_failed(self, link: int, error: BaseException, *, refused: bool) -> None: ...

    def ws_received(self, link: int, data: str | bytes) -> None: ...

    def ws_closed(self, link: int, close: WsClose, error: BaseException | None) -> None: ...

    def http_answered(self, link: int, status: int, body: bytes) -> None: ...

    def http_failed(self, link: int, error: BaseException, *, timed_out: bool) -> None: ...


class Transport(Protocol):
    """Carries out the commands of one kind (``kind``: ``"ws"`` or ``"ajax"``)."""

    kind: str

    def perform(self, command: Command) -> None:
        """Carry out ``command`` without waiting for its outcome, which is reported to the
        listener from the transport's own threads. A :class:`SendFrame` is written before
        this returns, and raises when it cannot be."""
        ...

    def close(self, timeout: float) -> None:
        """Give what is still open up to ``timeout`` seconds to end (a lingering close),
        then cut it, and wait (bounded) for the transport's threads."""
        ...
