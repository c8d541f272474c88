"""The Ajax transport: the protocol's HTTP requests (long-poll GETs, event POSTs) over
requests, each on its own thread.

It knows HTTP, not Sente: it sends the request the protocol built and reports the answer
(status and body) or the failure (and whether the read timed out) to its listener.

Every request can be cut short from another thread. requests has no abort, so each
session's adapter remembers its connections and :meth:`_AbortableAdapter.abort` shuts
their sockets down; a long-poll blocked for 20 s then returns at once, and disconnect()
leaves no thread behind. GETs and POSTs have a session each, so cutting the long-poll
(``break_connection()``) spares the POSTs.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import weakref
from collections.abc import Callable, Mapping
from http.cookiejar import CookieJar
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import SKIP_HEADER

from .threads import ThreadSet
from .transport import AbortRequest, Command, HttpRequest, TransportListener

__all__ = ["AjaxTransport"]

#: Seconds allowed for a TCP connect; the read timeout is the request's ``timeout_s``.
CONNECT_TIMEOUT = 10.0


class _AbortableAdapter(HTTPAdapter):
    """An HTTP adapter whose open connections can all be shut down at once.

    While ``dead()`` is true, a connection made afresh is shut down as soon as it connects,
    so a request that raced past an abort still fails, as the aborted one would have.
    """

    def __init__(self, dead: Callable[[], bool]) -> None:
        self._conns: weakref.WeakSet[Any] = weakref.WeakSet()
        self._conns_lock = threading.Lock()
        self._dead = dead
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        new_pool = self.poolmanager._new_pool

        def tracked_new_pool(*a: Any, **k: Any) -> Any:
            pool = new_pool(*a, **k)
            new_conn = pool._new_conn

            def tracked_new_conn() -> Any:
                conn = new_conn()
                with self._conns_lock:
                    self._conns.add(conn)
                connect = conn.connect

                def guarded_connect() -> None:
                    connect()
                    if self._dead():
                        _shutdown(conn)

                conn.connect = guarded_connect  # type: ignore[method-assign]
                return conn

            pool._new_conn = tracked_new_conn  # type: ignore[method-assign]
            return pool

        self.poolmanager._new_pool = tracked_new_pool  # type: ignore[method-assign]

    def abort(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            _shutdown(conn)


def _shutdown(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _session(dead: Callable[[], bool]) -> tuple[requests.Session, _AbortableAdapter]:
    """A session whose requests carry the headers Sente's Ajax client sends, and not
    requests' own ``Accept`` and ``Accept-Encoding``."""
    session = requests.Session()
    del session.headers["Accept"]
    session.headers["Accept-Encoding"] = SKIP_HEADER
    adapter = _AbortableAdapter(dead)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session, adapter


class AjaxTransport:
    """Sends the protocol's HTTP requests, each on its own thread, and cuts them short."""

    kind = "ajax"

    def __init__(
        self,
        listener: TransportListener,
        *,
        threads: ThreadSet,
        request_opts: Mapping[str, Any] | None = None,
        cookies: CookieJar | None = None,
        name: str = "flask_sente.client-ajax",
    ) -> None:
        self._listener = listener
        self._threads = threads
        self._opts = dict(request_opts or {})
        self._headers = dict(self._opts.pop("headers", None) or {})
        self._name = name
        self._lock = threading.Condition(threading.Lock())
        self._out: dict[int, str] = {}  # link -> method, for the requests not yet ended
        self._aborted: set[int] = set()
        self._current = threading.local()  # the link of the request on this thread
        self._closed = False
        dead = self._dead
        self._sessions = {"GET": _session(dead), "POST": _session(dead)}
        if cookies is not None:  # shared: what the server sets goes out with the next request
            for session, _ in self._sessions.values():
                session.cookies = cookies  # type: ignore[assignment]

    def perform(self, command: Command) -> None:
        if isinstance(command, HttpRequest):
            with self._lock:
                self._out[command.link] = command.method
            self._threads.spawn(
                f"{self._name}-{command.method.lower()}", lambda: self._run(command)
            )
        elif isinstance(command, AbortRequest):
            with self._lock:
                method = self._out.get(command.link)
                if method is None:
                    return
                self._aborted.add(command.link)
            self._sessions[method][1].abort()

    def close(self, timeout: float) -> None:
        """Cut every request still out, wait (up to ``timeout``) for their threads to see
        it, and close the sessions."""
        with self._lock:
            self._closed = True
            self._aborted.update(self._out)
        for _, adapter in self._sessions.values():
            adapter.abort()
        with self._lock:
            self._lock.wait_for(lambda: not self._out, timeout)
        for session, _ in self._sessions.values():
            session.close()

    def _dead(self) -> bool:
        """Whether the request of the calling thread was cut before it connected."""
        link = getattr(self._current, "link", None)
        with self._lock:
            return self._closed or link in self._aborted

    def _run(self, request: HttpRequest) -> None:
        self._current.link = request.link
        try:
            if self._dead():
                raise requests.ConnectionError("the request was aborted")
            response = self._sessions[request.method][0].request(
                request.method,
                request.url,
                data=request.body,
                headers={**self._headers, **request.headers},
                timeout=(min(CONNECT_TIMEOUT, request.timeout_s), request.timeout_s),
                **self._opts,
            )
            status, body = response.status_code, response.content
        except Exception as exc:
            self._listener.http_failed(
                request.link, exc, timed_out=isinstance(exc, requests.ReadTimeout)
            )
        else:
            self._listener.http_answered(request.link, status, body)
        finally:
            with self._lock:
                self._out.pop(request.link, None)
                self._aborted.discard(request.link)
                self._lock.notify_all()
