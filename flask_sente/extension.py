"""The Flask extension: ``Sente(app)`` or ``Sente().init_app(app)``.

Glue only: it reads options, registers the channel-socket route and the static files of
the browser client, snapshots each request, runs the security checks, and hands the rest to
the app's :class:`~flask_sente.server.ChannelServer` in ``app.extensions["sente"]``.
"""

from __future__ import annotations

import atexit
import logging
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    has_app_context,
    request,
    session,
    url_for,
)

from . import __version__, route
from .config import Options
from .direct import DirectAjax
from .errors import ConfigError, UsageError
from .events import EventMsg
from .route import Refused, TakenOverResponse
from .router import Handlers, RecvQueue
from .server import ChannelServer
from .transports.drivers import Handover, Served

if TYPE_CHECKING:
    from flask.testing import FlaskClient

    from .testing import SenteTestClient

logger = logging.getLogger("flask_sente.extension")

EXTENSION_KEY = "sente"
_TEXT = "text/html; charset=utf-8"


class Sente:
    """Channel sockets for a Flask app: WebSocket with Ajax fallback, Sente's wire protocol.

    Options are keyword-only; see :mod:`flask_sente.config` for each one and its
    ``SENTE_*`` configuration key. Handlers registered with :meth:`on` are shared by every
    app this extension is initialised on.
    """

    def __init__(self, app: Flask | None = None, **options: Any) -> None:
        Options.resolve(options, {})  # fail on unknown names or bad values at once
        self._options = options
        self.handlers: Handlers[EventMsg] = Handlers()
        self._undelivered_hooks: list[Callable[[Any, list[Any], str], Any]] = []
        self._apps: weakref.WeakSet[Flask] = weakref.WeakSet()
        #: The server of the one app initialised, while there is only one (what send() and
        #: the other calls without app= find without a lookup).
        self._sole: tuple[weakref.ref[Flask], ChannelServer] | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        if EXTENSION_KEY in app.extensions:
            raise ConfigError("Sente is already initialised on this app")
        options = Options.resolve(self._options, app.config)

        def run_in_app_context(call: Callable[[], Any]) -> Any:
            with app.app_context():
                return call()

        server = ChannelServer(
            options,
            self.handlers,
            run_in_app_context=run_in_app_context,
            on_undelivered=self._report_undelivered,
        )
        app.extensions[EXTENSION_KEY] = server
        self._apps.add(app)
        self._sole = (weakref.ref(app), server) if len(self._apps) == 1 else None

        blueprint = Blueprint(
            "sente", __name__, static_folder="static", static_url_path="/_sente/static"
        )
        view = lambda: self._handle(server)  # noqa: E731
        # Werkzeug routes WebSocket upgrades only to rules marked websocket=True
        blueprint.add_url_rule(options.path, "chsk", view, methods=["GET", "POST"])
        blueprint.add_url_rule(options.path, "chsk_ws", view, methods=["GET"], websocket=True)
        if options.health_path is not None:
            blueprint.add_url_rule(options.health_path, "health", lambda: _health(server))
        app.register_blueprint(blueprint)
        if getattr(app.wsgi_app, "__func__", None) is type(app).wsgi_app:
            app.wsgi_app = DirectAjax(app, server, options.path, app.wsgi_app)  # type: ignore[method-assign]
        else:  # a middleware of the app's is in place: it sees every request, as before
            logger.info("app.wsgi_app is wrapped already: Ajax requests take Flask's dispatch")
        app.jinja_env.globals["sente_js_url"] = sente_js_url
        atexit.register(server.close)
        logger.info("flask_sente %s serving channel sockets at %s", __version__, options.path)

    # ------------------------------------------------------------------ per-app state

    def server(self, app: Flask | None = None) -> ChannelServer:
        """The channel server of ``app``, of the current app, or of the only app."""
        sole = self._sole
        if sole is not None and app is None:
            sole_app = sole[0]()
            if sole_app is not None and (
                not has_app_context() or current_app._get_current_object() is sole_app  # type: ignore[attr-defined]
            ):
                return sole[1]
        if app is None:
            app = self._only_app()
        try:
            return app.extensions[EXTENSION_KEY]
        except KeyError:
            raise UsageError("Sente.init_app(app) has not been called for this app") from None

    # ------------------------------------------------------------------ handlers

    def on(self, event_id: str) -> Callable[[Callable[[EventMsg], Any]], Callable[[EventMsg], Any]]:
        """Decorator: handle events with id ``event_id`` (``"ns/name"``)."""
        return self.handlers.on(event_id)

    def on_default(self, fn: Callable[[EventMsg], Any]) -> Callable[[EventMsg], Any]:
        """Decorator: handle every event without a handler of its own."""
        return self.handlers.on_default(fn)

    def on_error(
        self, fn: Callable[[EventMsg, BaseException], Any]
    ) -> Callable[[EventMsg, BaseException], Any]:
        """Decorator: called as ``fn(msg, exc)`` when a handler raises."""
        return self.handlers.on_error(fn)

    def on_undelivered(
        self, fn: Callable[[Any, list[Any], str], Any]
    ) -> Callable[[Any, list[Any], str], Any]:
        """Decorator: ``fn(uid, events, reason)`` for every push that cannot be delivered.

        Runs on the thread that found out (a pushing thread or a timer): keep it short.
        ``events`` is empty when only a count is known (a slow consumer's dropped messages).
        """
        self._undelivered_hooks.append(fn)
        return fn

    def _report_undelivered(self, uid: Any, events: list[Any], reason: str) -> None:
        for hook in self._undelivered_hooks:
            try:
                hook(uid, events, reason)
            except Exception:
                logger.exception("the on_undelivered hook %r failed; the others go on", hook)

    def start_router(
        self,
        handler: Callable[[EventMsg], Any],
        *,
        error_handler: Callable[[EventMsg, BaseException], Any] | None = None,
        trace_evs: bool = False,
        simple_auto_threading: bool = False,
        app: Flask | None = None,
    ) -> Callable[[], None]:
        """Sente's ``start-server-chsk-router!``: run ``handler`` over ``ch_recv``.

        It replaces the router that runs the decorator handlers. Returns ``stop()``.
        """
        server = self.server(app)
        server.use_custom_router()
        return server.start_router(
            handler,
            error_handler=error_handler,
            trace_evs=trace_evs,
            simple_auto_threading=simple_auto_threading,
        )

    # ------------------------------------------------------------------ pushing

    def send(self, uid: Any, event: Any, flush: bool = False, *, app: Flask | None = None) -> None:
        """Push ``event`` to every connection of ``uid``; ``["chsk/close"]`` closes them."""
        self.server(app).send(uid, event, flush=flush)

    def broadcast(self, event: Any, flush: bool = False, *, app: Flask | None = None) -> None:
        """Push ``event`` to every connected uid."""
        self.server(app).broadcast(event, flush=flush)

    @property
    def connected_uids(self) -> dict[str, frozenset[Any]]:
        """A snapshot ``{"ws": ..., "ajax": ..., "any": ...}`` of the connected uids."""
        return self.server().registry.connected_uids()

    def watch_connected_uids(
        self, fn: Callable[[dict[str, frozenset[Any]], dict[str, frozenset[Any]]], None]
    ) -> Callable[[], None]:
        """Call ``fn(old, new)`` whenever ``connected_uids`` changes; returns ``unwatch()``."""
        return self.server().registry.watch(fn)

    def test_client(
        self,
        flask_test_client: FlaskClient | None = None,
        uid: Any = None,
        *,
        app: Flask | None = None,
        **options: Any,
    ) -> SenteTestClient:
        """An in-process channel socket for tests; see :mod:`flask_sente.testing`.

        Pass the app's Flask test client to share its cookies and session (a login done
        through a normal route carries over). ``uid`` goes out as the ``uid`` query
        parameter, for apps whose ``user_id_fn`` reads it."""
        from .testing import SenteTestClient

        if app is None:
            app = flask_test_client.application if flask_test_client is not None else None
        server_app = app if app is not None else self._only_app()
        server = self.server(server_app)
        return SenteTestClient(server, server_app, flask_test_client, uid=uid, **options)

    def _only_app(self) -> Flask:
        if has_app_context():
            return current_app._get_current_object()  # type: ignore[attr-defined]
        apps = list(self._apps)
        if len(apps) != 1:
            raise UsageError(
                "Sente is initialised on several apps (or none): call this within an "
                "app context, or pass app="
            )
        return apps[0]

    def health(self, app: Flask | None = None) -> dict[str, Any]:
        """This worker's state: its bus (and whether the broker is reachable), connections,
        and how many pushes could not be delivered."""
        return self.server(app).health()

    def close(self, app: Flask | None = None) -> None:
        """Close every connection and stop the background threads."""
        self.server(app).close()

    # ------------------------------------------------------------------ Sente-named handles

    @property
    def ch_recv(self) -> RecvQueue[EventMsg]:
        """Sente's ``:ch-recv``: every event message, for an app that routes them itself.

        Read it with ``get(timeout)``. The decorator handlers and your own reading never
        share it: the decorator router starts with the first event only when ``@on`` /
        ``on_default`` handlers are registered, and your first ``get()`` stops it for good
        (the messages it had already taken still run their handlers). With no decorator
        handlers nothing else ever reads the queue, so nothing is missed however early the
        first event comes. Past ``recv_buf_or_n`` unread messages the oldest is dropped.
        """
        return self.server().ch_recv

    @property
    def send_fn(self) -> Callable[..., None]:
        return self.send

    @property
    def ajax_post_fn(self) -> Callable[[], Any]:
        """The view answering POSTs on the channel-socket route."""
        return lambda: self._handle(self.server())

    ajax_get_or_ws_handshake_fn = ajax_post_fn

    # ------------------------------------------------------------------ the route

    def _handle(self, server: ChannelServer) -> Any:
        result = route.serve(
            server,
            request.environ,
            path=request.path,
            session=dict(session),  # a copy: it outlives the request
            max_content_length=request.max_content_length,
        )
        if isinstance(result, Refused):
            return result.value
        if isinstance(result, Handover | Served):
            return TakenOverResponse(result)
        return _answer(result)


def _answer(answer: tuple[int, str | bytes]) -> Response:
    status, body = answer
    mimetype = "application/octet-stream" if isinstance(body, bytes) else None
    return Response(body, status, content_type=_TEXT if mimetype is None else mimetype)


def _health(server: ChannelServer) -> tuple[dict[str, Any], int]:
    """The health view: 503 when the broker is unreachable, so load balancers can act."""
    health = server.health()
    return health, 200 if health.get("ok") else 503


def sente_js_url() -> str:
    """The URL of the browser client, with the version in it so browsers may cache it."""
    return url_for("sente.static", filename="sente.js", v=__version__)
