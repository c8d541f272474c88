"""One request of the channel-socket route, from its WSGI environ to what answers it.

Shared by the Flask view (:mod:`flask_sente.extension`) and the direct Ajax path
(:mod:`flask_sente.direct`): read the body (bounded), snapshot the request, run the checks
in Sente's order (:mod:`flask_sente.security`), compute the uid, and hand the request to
its entry point in :mod:`flask_sente.serving`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Response
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import get_input_stream

from . import serving
from .events import RequestSnapshot
from .protocol import NIL_UID
from .security import check_request
from .transports.drivers import Handover, Outcome, Served
from .transports.http import TEXT
from .transports.websocket import is_websocket_request

if TYPE_CHECKING:
    from .server import ChannelServer

_PLAIN = {"Content-Type": "text/plain; charset=utf-8"}


@dataclass(frozen=True, slots=True)
class Refused:
    """A request refused before the server saw it: ``value`` is what a Flask view would
    return (a check's ``*_fn`` may give any response)."""

    value: Any


class TakenOverResponse(Response):
    """The WSGI answer for a connection flask_sente serves on the socket itself.

    With a handover, the socket moves to the event loop here, after Flask ran its
    ``after_request`` hooks: held long-poll answers then carry the headers they added.
    Whatever the WSGI server writes afterwards goes to a dead descriptor. Its status is what
    the connection got or will get: 101 for a WebSocket.
    """

    def __init__(self, outcome: Handover | Served) -> None:
        super().__init__(status=outcome.status, content_type=TEXT)
        self._outcome = outcome

    def __call__(self, environ: Any, start_response: Any) -> Any:
        if isinstance(self._outcome, Handover):
            self._outcome.run(list(self.headers.items()))
        if self._outcome.server.stops_quietly:
            # gunicorn then drops the request quietly, writing nothing
            raise StopIteration()
        return super().__call__(environ, start_response)


def read_body(environ: dict[str, Any], limit: int, max_content_length: int | None) -> bytes:
    """A POST's body, de-chunked by the WSGI server; over ``limit`` bytes (or the app's
    ``MAX_CONTENT_LENGTH``) is a 413."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise RequestEntityTooLarge()
    stream = get_input_stream(environ, max_content_length=max_content_length)
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise RequestEntityTooLarge()
    return body


def serve(
    server: ChannelServer,
    environ: dict[str, Any],
    *,
    path: str,
    session: Mapping[str, Any],
    max_content_length: int | None = None,
) -> Outcome | Refused:
    """Answer one channel-socket request. ``session`` is kept by the snapshot as given (a
    copy, or a mapping that reads the session when first used)."""
    options = server.options
    post = environ.get("REQUEST_METHOD") == "POST"
    try:
        body = read_body(environ, options.max_message_size, max_content_length) if post else b""
    except RequestEntityTooLarge:
        too_large = f"message too large: over max_message_size ({options.max_message_size} bytes)"
        return Refused((too_large, 413, _PLAIN))
    req = RequestSnapshot.of(environ, path=path, session=session, body=body)
    if not post and not req.client_id:
        return Refused(
            (
                "missing client-id: a channel-socket GET needs a client-id query parameter "
                "(Sente clients send one; is the client pointed at the right path?)",
                400,
                _PLAIN,
            )
        )
    rejection = check_request(
        req,
        reject_fn=options.reject_fn,
        csrf_token_fn=options.csrf_token_fn,
        bad_csrf_fn=options.bad_csrf_fn,
        allowed_origins=options.allowed_origins,
        bad_origin_fn=options.bad_origin_fn,
        authorized_fn=options.authorized_fn,
        unauthorized_fn=options.unauthorized_fn,
        maybe_unauthorized_fn=options.maybe_unauthorized_fn,
    )
    if rejection is not None:
        return Refused(rejection)
    uid = options.user_id_fn(req)
    if uid is None:
        uid = NIL_UID
    if post:
        return serving.ajax_post(server, req, uid, body, environ)
    if is_websocket_request(environ):
        return serving.serve_websocket(server, req, environ, uid, options.handshake_data_fn(req))
    return serving.ajax_get(server, req, uid, lambda: options.handshake_data_fn(req), environ)
