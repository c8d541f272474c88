"""What a server event handler receives: the event message and the request snapshot.

A WebSocket carries many events over one HTTP request, so handlers get a frozen snapshot of
the connecting request (Sente's ``:ring-req``) rather than Flask's ``request``, which is
gone by the time a handler runs on another thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from .protocol import event_data

_BINARY_FLAGS = ("true", "1")
_FORM = "application/x-www-form-urlencoded"


class _Cookies(Mapping[str, str]):
    """A request's cookies, parsed from its ``Cookie`` header when first read (most
    channel-socket requests never read them)."""

    __slots__ = ("_header", "_parsed")

    def __init__(self, header: str) -> None:
        self._header = header
        self._parsed: dict[str, str] | None = None

    def _cookies(self) -> dict[str, str]:
        if self._parsed is None:
            # imported here: the Python client imports this module and must not load werkzeug
            from werkzeug.http import parse_cookie

            self._parsed = dict(parse_cookie(self._header).items())
        return self._parsed

    def __getitem__(self, name: str) -> str:
        return self._cookies()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._cookies())

    def __len__(self) -> int:
        return len(self._cookies())

    def __repr__(self) -> str:
        return repr(self._cookies())


@dataclass(frozen=True, slots=True)
class RequestSnapshot:
    """The parts of a connecting request that outlive it."""

    method: str
    path: str
    args: Mapping[str, str]
    headers: Mapping[str, str]
    cookies: Mapping[str, str]
    remote_addr: str | None
    session: Mapping[str, Any]
    client_id: str | None
    form: Mapping[str, str] = field(default_factory=dict)

    def param(self, name: str) -> str | None:
        """A query or form parameter, as Sente reads ``(:params req)``."""
        value = self.args.get(name)
        return value if value is not None else self.form.get(name)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @classmethod
    def of(
        cls, environ: Mapping[str, Any], *, path: str, session: Mapping[str, Any], body: bytes
    ) -> RequestSnapshot:
        """The snapshot of a WSGI request, read from its environ as werkzeug reads it
        (the first value of a repeated query parameter; ``body`` parsed as a form unless the
        request is binary). ``session`` is kept as given: a copy, or a mapping that reads
        the session when first used."""
        args: dict[str, str] = {}
        query = environ.get("QUERY_STRING", "").encode("latin-1").decode()
        for key, value in parse_qsl(query, keep_blank_values=True, errors="werkzeug.url_quote"):
            args.setdefault(key, value)
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_") and key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH")
        }
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").lower()] = environ[key]
        form: dict[str, str] = {}
        if body and args.get("binary?", "").lower() not in _BINARY_FLAGS:
            mimetype = headers.get("content-type", _FORM).split(";", 1)[0].strip().lower()
            if mimetype != "application/octet-stream":
                form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return cls(
            method=environ.get("REQUEST_METHOD", "GET"),
            path=path,
            args=args,
            headers=headers,
            cookies=_Cookies(environ.get("HTTP_COOKIE", "")),
            remote_addr=environ.get("REMOTE_ADDR"),
            session=session,
            client_id=args.get("client-id") or form.get("client-id"),
            form=form,
        )


@dataclass(frozen=True, slots=True)
class EventMsg:
    """One event from a client (or an internal one such as ``chsk/uidport-open``).

    ``reply`` is None when the client asked for no reply; otherwise calling it sends the
    reply and returns whether it was sent. ``send`` pushes to any uid, like ``Sente.send``.
    """

    event: list[Any]
    uid: Any
    client_id: str | None
    request: RequestSnapshot | None
    reply: Callable[[Any], bool] | None
    send: Callable[..., None]
    get_connected_uids: Callable[[], Mapping[str, frozenset[Any]]] | None = None

    @property
    def connected_uids(self) -> Mapping[str, frozenset[Any]] | None:
        """Sente's ``:connected-uids``: a snapshot, taken when read (not for every event)."""
        return None if self.get_connected_uids is None else self.get_connected_uids()

    @property
    def id(self) -> str:
        return str(self.event[0])

    @property
    def data(self) -> Any:
        return event_data(self.event)


def is_server_event_msg(x: Any) -> bool:
    """Whether ``x`` is an event message as server handlers receive it."""
    return isinstance(x, EventMsg)


is_event_msg = is_server_event_msg


Handler = Callable[[EventMsg], Any]
