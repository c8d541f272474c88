"""Ajax requests of the channel-socket route, answered without Flask's full dispatch.

Flask's dispatch of a request costs about as much as the rest of an Ajax request/reply: a
request object, URL routing, the session read from its cookie, a response object, the
request hooks and signals. When nothing of the app would see any of that for this route (no
``before_request`` / ``after_request`` / ``teardown_request`` hook of the app or of the
``sente`` blueprint, no URL value preprocessor, no receiver of the request signals, Flask's
own cookie session, no host-based routing), :class:`DirectAjax` answers the route's Ajax
GETs and POSTs itself, in an app context, with what the Flask view answers: the session is
read only when a check or ``user_id_fn`` reads ``req.session`` (or to refresh a permanent
session's cookie, as Flask does), and saved as Flask saves it; an exception goes through
Flask's own error handling. Everything else (WebSocket upgrades, other paths, an app with
hooks) goes through Flask, unchanged.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from flask import Flask, Response
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from flask.signals import request_finished, request_started, request_tearing_down
from werkzeug.http import parse_cookie

from . import route
from .config import default_csrf_token_fn
from .route import Refused, TakenOverResponse
from .transports.drivers import Handover, Served
from .transports.http import BINARY, TEXT
from .transports.websocket import is_websocket_request

if TYPE_CHECKING:
    from .server import ChannelServer

logger = logging.getLogger("flask_sente.direct")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_METHODS = ("GET", "POST")
_HOOKS = (
    "before_request_funcs",
    "after_request_funcs",
    "teardown_request_funcs",
    "url_value_preprocessors",
)


class _Session(Mapping[str, Any]):
    """The request's session, read from its cookie when first used (a copy, as the Flask
    view's snapshot keeps), and saved onto the answer as Flask would save it."""

    def __init__(self, app: Flask, environ: dict[str, Any]) -> None:
        self._app = app
        self._environ = environ
        self._session: SessionMixin | None = None
        self._copy: dict[str, Any] = {}

    def _open(self) -> dict[str, Any]:
        if self._session is None:
            app = self._app
            interface = app.session_interface
            request = app.request_class(self._environ)
            session = interface.open_session(app, request)
            self._session = session if session is not None else interface.make_null_session(app)
            self._copy = dict(self._session)
        return self._copy

    def __getitem__(self, key: str) -> Any:
        return self._open()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._open())

    def __len__(self) -> int:
        return len(self._open())

    def _has_cookie(self) -> bool:
        cookies = self._environ.get("HTTP_COOKIE")
        return bool(cookies) and self._app.config["SESSION_COOKIE_NAME"] in parse_cookie(cookies)

    def save(self, response: Response) -> None:
        """What Flask does after a request: a session with a cookie is opened anyway (its
        cookie may need refreshing), and one that was opened is saved."""
        if self._session is None and self._has_cookie():
            self._open()
        session, interface = self._session, self._app.session_interface
        if session is not None and not interface.is_null_session(session):
            interface.save_session(self._app, session, response)

    def headers(self) -> list[tuple[str, str]]:
        """The headers saving the session adds to an answer (often none)."""
        if self._session is None and not self._has_cookie():
            return []  # Flask would open an empty session, and save nothing
        carrier = self._app.response_class()
        before = set(carrier.headers.items())
        self.save(carrier)
        return [item for item in carrier.headers.items() if item not in before]


class DirectAjax:
    """WSGI middleware right around Flask's own ``wsgi_app``."""

    def __init__(self, app: Flask, server: ChannelServer, path: str, wsgi_app: WsgiApp) -> None:
        self._app = app
        self._server = server
        self._path = path
        self._flask = wsgi_app
        # Flask-WTF's check reads Flask's request context, which only the dispatch makes
        self._wanted = server.options.direct_ajax and not (
            server.options.csrf_token_fn is default_csrf_token_fn and _has_flask_wtf()
        )

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if (
            environ.get("PATH_INFO") != self._path
            or environ.get("REQUEST_METHOD") not in _METHODS
            or is_websocket_request(environ)
            or not self.nothing_would_see_it()
        ):
            return self._flask(environ, start_response)
        app = self._app
        session = _Session(app, environ)
        with app.app_context():
            try:
                result = route.serve(
                    self._server,
                    environ,
                    path=self._path,
                    session=session,
                    max_content_length=app.config["MAX_CONTENT_LENGTH"],
                )
                if isinstance(result, Refused):
                    response = app.make_response(result.value)
                    session.save(response)
                    return response(environ, start_response)
                headers = session.headers()
            except Exception as exc:
                return self._failed(exc, environ, start_response)
        if isinstance(result, Handover | Served):
            taken_over = TakenOverResponse(result)
            taken_over.headers.extend(headers)
            return taken_over(environ, start_response)
        status, body = result
        data = body.encode("utf-8") if isinstance(body, str) else body
        kind = TEXT if isinstance(body, str) else BINARY
        headers += [("Content-Type", kind), ("Content-Length", str(len(data)))]
        start_response(_status(status), headers)
        return [data]

    def nothing_would_see_it(self) -> bool:
        """Whether Flask's dispatch of this route would do nothing more than the direct
        path (checked on each request: hooks may be added at any time)."""
        if not self._wanted:
            return False
        app = self._app
        for name in _HOOKS:
            hooks = getattr(app, name)
            if hooks.get(None) or hooks.get("sente"):
                return False
        return not (
            app.config["SERVER_NAME"]
            or app.url_map.host_matching
            or app.subdomain_matching
            or type(app.session_interface) is not SecureCookieSessionInterface
            or request_started.receivers
            or request_finished.receivers
            or request_tearing_down.receivers
        )

    def _failed(
        self, exc: Exception, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Any:
        """An exception: Flask's error handling, in a request context, as for any view."""
        app = self._app
        ctx = app.request_context(environ)
        ctx.push()
        error: BaseException | None = exc
        try:
            try:
                response = app.finalize_request(
                    app.handle_user_exception(exc), from_error_handler=True
                )
            except Exception as again:
                error = again
                response = app.handle_exception(again)
            return response(environ, start_response)
        finally:
            ctx.pop(error)


def _has_flask_wtf() -> bool:
    return importlib.util.find_spec("flask_wtf") is not None


def _status(code: int) -> str:
    return f"{code} {HTTPStatus(code).phrase}"
