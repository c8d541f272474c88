"""Ajax transport: the long-poll loop (GET) and event sends (POST), over requests.

Like :mod:`.ws`, this layer knows HTTP, not Sente's state: the poll loop hands each
response body to a listener and reports failures with the backoff it is about to wait.

Every request can be cut short from another thread. requests has no abort, so each
session's adapter remembers its connections and :meth:`_AbortableAdapter.abort` shuts
their sockets down; a long-poll blocked for 20 s then returns at once, and disconnect()
leaves no thread behind.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import weakref
from collections.abc import Callable, Mapping
from http.cookiejar import CookieJar
from typing import Any, Protocol

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import SKIP_HEADER

from .runtime import ThreadSet
from .state import now_udt
from .wire import form_body, http_url

__all__ = ["AjaxChannel", "AjaxHTTPError", "AjaxListener"]

log = logging.getLogger("flask_sente.client.ajax")

#: Seconds allowed for a TCP connect; the read timeout is ``ajax_timeout_ms``.
CONNECT_TIMEOUT = 10.0


class AjaxHTTPError(requests.RequestException):
    """The server answered with a status other than 200 (e.g. 403 ``Bad CSRF token``)."""

    def __init__(self, status: int, body: str) -> None:
        self.status = status
        self.body = body
        super().__init__(f"HTTP {status}: {body[:200]}")


class AjaxListener(Protocol):
    def ajax_handshake_wanted(self) -> bool: ...
    def ajax_received(self, chan: AjaxChannel, package: str | bytes) -> None: ...
    def ajax_poll_failed(self, chan: AjaxChannel, exc: BaseException, delay_ms: int) -> None: ...


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


class AjaxChannel:
    """Long-polls ``url`` on its own thread and POSTs events from worker threads."""

    def __init__(
        self,
        url: str,
        *,
        client_id: str,
        listener: AjaxListener,
        threads: ThreadSet,
        backoff_ms_fn: Callable[[int], int],
        csrf_token: Callable[[], str | None],
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_ms: int = 60_000,
        binary: bool = False,
        request_opts: Mapping[str, Any] | None = None,
        cookies: CookieJar | None = None,
        sabotage: Callable[[], bool] = lambda: False,
        poll_params: Callable[[], Mapping[str, Any]] = dict,
        name: str = "flask_sente.client-ajax",
    ) -> None:
        self.url = url
        self.client_id = client_id
        self._listener = listener
        self._threads = threads
        self._backoff = backoff_ms_fn
        self._csrf = csrf_token
        self._params = dict(params or {})
        self._opts = dict(request_opts or {})
        self._headers = {**dict(self._opts.pop("headers", None) or {}), **dict(headers or {})}
        self._timeout_s = timeout_ms / 1000.0
        self._binary = binary
        self._sabotage = sabotage
        self._poll_params = poll_params
        self._name = name
        self._stop = threading.Event()
        self._broken = threading.Event()
        stopped, broken = self._stop.is_set, self._broken.is_set
        self._poll_session, self._poll_adapter = _session(lambda: stopped() or broken())
        self._post_session, self._post_adapter = _session(stopped)
        if cookies is not None:  # shared: what the server sets goes out with the next request
            self._poll_session.cookies = self._post_session.cookies = cookies  # type: ignore[assignment]

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        self._threads.spawn(self._name + "-poll", self._poll_loop)

    def stop(self) -> None:
        """End the poll loop and cut every request in flight."""
        self._stop.set()
        self._poll_adapter.abort()
        self._post_adapter.abort()

    def break_poll(self) -> None:
        """Cut the current long-poll, as Sente's ``chsk-break-connection!`` aborts its XHR.

        Between two polls there is nothing to cut, so the break is remembered and the next
        poll fails instead: a break is never lost to timing.
        """
        self._broken.set()
        self._poll_adapter.abort()

    def close_sessions(self) -> None:
        self._poll_session.close()
        self._post_session.close()

    def _request_headers(self, *, post: bool) -> dict[str, str]:
        headers = {"X-Requested-With": "XMLHTTPRequest", **self._headers}
        token = self._csrf()
        if token is not None:
            headers["X-CSRF-Token"] = token
        if post and not self._binary:
            headers["Content-Type"] = "application/x-www-form-urlencoded;charset=UTF-8"
        elif post:
            headers["Content-Type"] = "application/octet-stream"
        return headers

    def _body(self, response: requests.Response) -> str | bytes:
        if response.status_code != 200:
            raise AjaxHTTPError(response.status_code, response.content.decode("utf-8", "replace"))
        return response.content if self._binary else response.content.decode("utf-8")

    def get(self, *, handshake: bool) -> str | bytes:
        """One long-poll (or handshake) GET; the response body."""
        params = dict(self._params)
        params.update({"udt": now_udt(), "client-id": self.client_id})
        if handshake:
            params["handshake?"] = 1
        params.update(self._poll_params())
        response = self._poll_session.get(
            http_url(self.url, params),
            headers=self._request_headers(post=False),
            timeout=(min(CONNECT_TIMEOUT, self._timeout_s), self._timeout_s),
            **self._opts,
        )
        return self._body(response)

    def post(self, package: str | bytes, timeout_s: float | None = None) -> str | bytes:
        """POST one packed event; the response body (the reply wrapper). Blocking."""
        if self._sabotage():
            raise requests.ConnectionError("simulated bad connection")
        timeout = self._timeout_s if timeout_s is None else timeout_s
        fields: list[tuple[str, Any]] = [("udt", now_udt()), ("client-id", self.client_id)]
        if self._binary:
            url = http_url(self.url, dict([*fields, ("binary?", "true")]))
            data: str | bytes = package
        else:
            url = http_url(self.url)
            data = form_body([*fields, ("ppstr", package)]).encode()
        response = self._post_session.post(
            url,
            data=data,
            headers=self._request_headers(post=True),
            timeout=(min(CONNECT_TIMEOUT, timeout), timeout),
            **self._opts,
        )
        body = self._body(response)
        if self._sabotage():
            raise requests.ConnectionError("simulated bad connection: the reply was lost")
        return body

    def _check_broken(self) -> None:
        if self._broken.is_set():
            self._broken.clear()
            raise requests.ConnectionError("connection broken by break_connection()")

    def _poll_loop(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                self._check_broken()
                if self._sabotage():
                    raise requests.ConnectionError("simulated bad connection")
                body = self.get(handshake=self._listener.ajax_handshake_wanted())
                self._check_broken()
                if self._sabotage():
                    raise requests.ConnectionError("simulated bad connection: the answer was lost")
            except requests.ReadTimeout:
                attempt = 0
                continue
            except Exception as exc:
                if self._stop.is_set():
                    return
                self._broken.clear()
                attempt += 1
                delay_ms = 0 if attempt == 1 else int(self._backoff(attempt))
                log.debug("poll failed (attempt %d, retry in %d ms): %s", attempt, delay_ms, exc)
                self._listener.ajax_poll_failed(self, exc, delay_ms)
                if self._stop.wait(delay_ms / 1000.0):
                    return
                continue
            attempt = 0
            if self._stop.is_set():
                return
            self._listener.ajax_received(self, body)
