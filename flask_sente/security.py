"""The checks every channel-socket request passes, in Sente's order (spec 4.6).

1. ``reject_fn``: a non-None return *is* the response.
2. CSRF: the client's token (``csrf-token`` parameter, ``X-CSRF-Token`` or ``X-XSRF-Token``
   header) must match the reference from ``csrf_token_fn``; a None reference fails.
3. Origin: unless ``allowed_origins`` is ``"all"``, the ``Origin`` header (or, without one,
   the ``Referer``) must belong to an allowed origin.
4. ``authorized_fn``: a falsy return rejects with ``unauthorized_fn``'s response (401).
5. ``maybe_unauthorized_fn`` (Sente's deprecated ``:?unauthorized-fn``): a non-None return
   is the response.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Collection
from typing import Any, Protocol

from .events import RequestSnapshot
from .protocol import SKIP_CSRF_CHECK

logger = logging.getLogger("flask_sente.security")

ALL_ORIGINS = "all"


def client_csrf_token(req: RequestSnapshot) -> str | None:
    """The token the client sent, looked up where Sente looks."""
    return req.param("csrf-token") or req.header("x-csrf-token") or req.header("x-xsrf-token")


def csrf_ok(reference: Any, client_token: str | None) -> bool:
    """Compare tokens in constant time. ``reference`` may also be a validator callable."""
    if isinstance(reference, str) and reference == SKIP_CSRF_CHECK:
        return True
    if reference is None or not client_token:
        return False
    if callable(reference):
        return bool(reference(client_token))
    return hmac.compare_digest(str(reference).encode(), client_token.encode())


class HasHeaders(Protocol):
    """A request with a ``headers`` mapping: Flask's ``request``, a Werkzeug request."""

    @property
    def headers(self) -> Any: ...


def allow_origin(
    allowed_origins: str | Collection[str], request: RequestSnapshot | HasHeaders
) -> bool:
    """True when ``request`` may connect under ``allowed_origins`` (``"all"`` or a set).

    Sente's ``allow-origin?``: the ``Origin`` header must be an allowed origin; without one,
    the ``Referer`` must start with one. ``request`` is a :class:`RequestSnapshot` (what the
    ``*_fn`` options get) or Flask's ``request``, for a check of your own in a view."""
    if allowed_origins == ALL_ORIGINS:
        return True
    origin = _header(request, "origin")
    if origin is not None:
        return origin in allowed_origins
    referer = _header(request, "referer")
    if referer is None:
        return False
    return any(referer.startswith(allowed.rstrip("/") + "/") for allowed in allowed_origins)


def _header(request: RequestSnapshot | HasHeaders, name: str) -> str | None:
    if isinstance(request, RequestSnapshot):
        return request.header(name)
    value = request.headers.get(name)
    return None if value is None else str(value)


def check_request(
    req: RequestSnapshot,
    *,
    reject_fn: Callable[[RequestSnapshot], Any] | None,
    csrf_token_fn: Callable[[RequestSnapshot], Any] | None,
    bad_csrf_fn: Callable[[RequestSnapshot], Any],
    allowed_origins: str | Collection[str],
    bad_origin_fn: Callable[[RequestSnapshot], Any],
    authorized_fn: Callable[[RequestSnapshot], Any] | None,
    unauthorized_fn: Callable[[RequestSnapshot], Any],
    maybe_unauthorized_fn: Callable[[RequestSnapshot], Any] | None,
) -> Any:
    """None when the request passes every check, else the rejection response."""
    if reject_fn is not None:
        rejection = reject_fn(req)
        if rejection is not None:
            logger.info("request from %s rejected by reject_fn", req.remote_addr)
            return rejection
    if csrf_token_fn is not None and not csrf_ok(csrf_token_fn(req), client_csrf_token(req)):
        logger.info("request from %s rejected: bad CSRF token", req.remote_addr)
        return bad_csrf_fn(req)
    if not allow_origin(allowed_origins, req):
        logger.info(
            "request from %s rejected: origin %r / referer %r is not in allowed_origins",
            req.remote_addr,
            req.header("origin"),
            req.header("referer"),
        )
        return bad_origin_fn(req)
    if authorized_fn is not None and not authorized_fn(req):
        logger.info("request from %s rejected: authorized_fn said no", req.remote_addr)
        return unauthorized_fn(req)
    if maybe_unauthorized_fn is not None:
        rejection = maybe_unauthorized_fn(req)
        if rejection is not None:
            logger.info("request from %s rejected by maybe_unauthorized_fn", req.remote_addr)
            return rejection
    return None
