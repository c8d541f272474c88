"""What the client writes around its messages, exactly as Sente's clients write it: the
WebSocket URL, and the Ajax requests' URLs, headers and form bodies.

Sente encodes with JavaScript's ``encodeURIComponent`` and then turns ``*`` into ``%2A``, so
``handshake?`` goes out as ``handshake%3F`` and spaces as ``%20``; a server (or a proxy log)
sees the same bytes from this client as from a browser. Pure: the caller passes in the
time (``udt``) and the token.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from ..errors import ConfigError

__all__ = [
    "ajax_headers",
    "encode_component",
    "form_body",
    "http_url",
    "poll_url",
    "post_request",
    "query_string",
    "ws_url",
]

#: The ``Content-Type`` of a text Ajax POST (a form) and of a binary one.
FORM = "application/x-www-form-urlencoded;charset=UTF-8"
BINARY = "application/octet-stream"

_SCHEMES = {"ws": ("ws", "http"), "wss": ("wss", "https"), "http": ("ws", "http")}
_SCHEMES["https"] = ("wss", "https")


def encode_component(value: Any) -> str:
    """``encodeURIComponent(String(value))`` with ``*`` as ``%2A``, as Sente sends it."""
    if value is True or value is False:
        value = "true" if value else "false"
    return quote(str(value), safe="!'()~")


def query_string(pairs: Iterable[tuple[Any, Any]]) -> str:
    """``k=v&...`` in order, skipping None values as encore's ``format-query-string`` does."""
    return "&".join(
        f"{encode_component(k)}={encode_component(v)}" for k, v in pairs if v is not None
    )


def form_body(pairs: Iterable[tuple[Any, Any]]) -> str:
    """An ``application/x-www-form-urlencoded`` body as Sente's Ajax POST builds it."""
    return query_string(pairs)


def _split(url: str) -> tuple[str, str, str, str]:
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES or not parts.netloc:
        raise ConfigError(
            f"cannot use {url!r} as a channel socket URL: give an absolute http://, https://, "
            "ws:// or wss:// URL such as http://127.0.0.1:5000/chsk"
        )
    return parts.scheme, parts.netloc, parts.path or "/", parts.query


def ws_url(base: str, params: Mapping[str, Any]) -> str:
    """The WebSocket URL: ``ws:``/``wss:``, then user params, client-id and csrf-token."""
    scheme, netloc, path, query = _split(base)
    extra = query_string(params.items())
    return urlunsplit(
        (_SCHEMES[scheme][0], netloc, path, "&".join(q for q in (query, extra) if q), "")
    )


def http_url(base: str, params: Mapping[str, Any] | None = None) -> str:
    """The Ajax URL: ``http:``/``https:`` with ``params`` as its query string."""
    scheme, netloc, path, query = _split(base)
    extra = query_string(params.items()) if params else ""
    return urlunsplit(
        (_SCHEMES[scheme][1], netloc, path, "&".join(q for q in (query, extra) if q), "")
    )


def ajax_headers(
    headers: Mapping[str, str], csrf_token: str | None, content_type: str | None = None
) -> dict[str, str]:
    """The headers of an Ajax request: Sente's ``X-Requested-With``, the user's, the token."""
    out = {"X-Requested-With": "XMLHTTPRequest", **headers}
    if csrf_token is not None:
        out["X-CSRF-Token"] = csrf_token
    if content_type is not None:
        out["Content-Type"] = content_type
    return out


def poll_url(
    base: str,
    params: Mapping[str, Any],
    *,
    udt: int,
    client_id: str,
    handshake: bool,
    extra: Mapping[str, Any],
) -> str:
    """A long-poll GET's URL: user params, ``udt``, ``client-id``, ``handshake?``, ``extra``."""
    query = {**params, "udt": udt, "client-id": client_id}
    if handshake:
        query["handshake?"] = 1
    query.update(extra)
    return http_url(base, query)


def post_request(
    base: str, package: str | bytes, *, udt: int, client_id: str
) -> tuple[str, bytes, str]:
    """``(url, body, content type)`` of an Ajax POST: a form with ``ppstr`` for text packers,
    the packed bytes themselves (``binary?=true`` in the URL) for binary ones."""
    fields: list[tuple[str, Any]] = [("udt", udt), ("client-id", client_id)]
    if isinstance(package, bytes):
        return http_url(base, dict([*fields, ("binary?", "true")])), package, BINARY
    return http_url(base), form_body([*fields, ("ppstr", package)]).encode(), FORM
