"""URLs and form bodies exactly as Sente's clients write them.

Sente encodes with JavaScript's ``encodeURIComponent`` and then turns ``*`` into ``%2A``, so
``handshake?`` goes out as ``handshake%3F`` and spaces as ``%20``; a server (or a proxy log)
sees the same bytes from this client as from a browser.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from ..errors import ConfigError

__all__ = ["encode_component", "form_body", "http_url", "query_string", "ws_url"]

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
