"""Sente's Ajax channel socket (``ChAJAXSocket``, spec sections 1.2, 1.3 and 5.2), pure.

The long-poll loop asks for a handshake while the channel is not open, then polls; each answer
is a handshake, ``chsk/timeout`` (poll again) or a pushed batch, and a failed poll is retried,
the first time at once and then with backoff. A send is a POST whose response is the reply:
``[reply nil]``, ``[chsk/dummy-cb-200 nil]`` when no reply was asked for, or ``[chsk/timeout
nil]`` from the server. As in Sente, a POST that is answered marks the channel open and one
that fails marks it closed, whatever the long-poll loop is doing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..errors import UnpackError
from ..protocol import AJAX_CB, CLOSED, ERROR, TIMEOUT, Keyword, MessageKind, unpack
from .backoff import RetrySchedule
from .context import ChannelContext, Moment, Phase
from .transport import AbortRequest, HttpRequest
from .wire import ajax_headers, poll_url, post_request

__all__ = ["AjaxChannel"]

log = logging.getLogger("flask_sente.client.protocol")

BROKEN = "connection broken by break_connection()"


class AjaxChannel:
    """One client's Ajax channel socket: the long-poll out (``poll``) and the POSTs out."""

    kind = "ajax"

    def __init__(
        self,
        ctx: ChannelContext,
        *,
        timeout_ms: int,
        backoff_ms_fn: Callable[[int], int],
        reconnect: bool,
    ) -> None:
        self._ctx = ctx
        self._timeout_s = timeout_ms / 1000
        self._retries = RetrySchedule(backoff_ms_fn)
        self._reconnect = reconnect
        self.phase = Phase.CLOSED
        self.poll: int | None = None
        self._posts: set[int] = set()
        self._broken = False  # break_connection() between two polls: the next one fails
        self.retry_at: float | None = None

    @property
    def deadline(self) -> float | None:
        return self.retry_at

    # ------------------------------------------------------------------ commands

    def open(self, now: Moment) -> None:
        self._retries.reset()
        self._poll(now)

    def stop(self, reason: str, now: Moment, *, linger: bool = False) -> None:
        """Stop polling and abort every request out; their callbacks get ``chsk/closed``."""
        ctx = self._ctx
        links = [self.poll, *sorted(self._posts)] if self.poll else sorted(self._posts)
        self.phase = Phase.CLOSED
        self.poll = self.retry_at = None
        self._posts.clear()
        self._broken = False
        ctx.closed(now, reason)
        for link in links:
            ctx.do(AbortRequest(link))
            ctx.answer_link(link, CLOSED, now)

    def reconnect(self, reason: str, now: Moment) -> None:
        self.stop(reason, now)
        self.open(now)

    def break_connection(self, close_ws: bool) -> None:
        """Cut the long-poll, as Sente's ``chsk-break-connection!`` aborts its XHR; between
        two polls the next one fails instead, so a break is never lost to timing."""
        if self.phase is Phase.CLOSED:
            return
        self._broken = True
        if self.poll is not None:
            self._ctx.do(AbortRequest(self.poll))

    def marker(self, cb_uuid: str | None) -> Keyword | None:
        """What goes in the wrapper's callback slot: ``ajax`` when a reply is wanted."""
        return None if cb_uuid is None else AJAX_CB

    def send(
        self,
        package: str | bytes,
        cb_uuid: str | None,
        callback: object,
        timeout_ms: int | None,
        now: Moment,
    ) -> bool:
        ctx = self._ctx
        if self.phase is Phase.CLOSED or not ctx.state.get("open?"):
            if callback is not None:
                ctx.answer_handle(callback, CLOSED, now)
            return False
        link = ctx.new_link()
        self._posts.add(link)
        if cb_uuid is not None:
            ctx.callbacks.add(cb_uuid, callback, now.monotonic + (timeout_ms or 0) / 1000, link)
        if ctx.bad_conn():
            self.failed(link, ConnectionError("simulated bad connection"), now, timed_out=False)
            return True
        url, body, content_type = post_request(
            ctx.url, package, udt=now.udt, client_id=ctx.client_id
        )
        headers = ajax_headers(ctx.headers, ctx.token(), content_type)
        timeout_s = self._timeout_s if timeout_ms is None else timeout_ms / 1000
        ctx.do(HttpRequest(link, "POST", url, headers, body, timeout_s))
        return True

    def tick(self, now: Moment) -> None:
        if self.retry_at is not None and now.monotonic >= self.retry_at:
            self.retry_at = None
            self._poll(now)

    # ------------------------------------------------------------------ reports

    def answered(self, link: int, status: int, body: bytes, now: Moment) -> None:
        if link == self.poll:
            self._poll_answered(status, body, now)
        elif link in self._posts:
            self._post_answered(link, status, body, now)

    def failed(self, link: int, error: BaseException, now: Moment, *, timed_out: bool) -> None:
        ctx = self._ctx
        if link == self.poll:
            self.poll = None
            if timed_out and not self._broken:
                self._retries.reset()  # a long-poll nobody answered: poll again
                self._poll(now)
            else:
                self._poll_failed(str(error), now)
        elif link in self._posts:
            self._posts.discard(link)
            replies = ctx.callbacks.pop_link(link)
            if not timed_out:
                log.info("Ajax send failed: %s", error)
                ctx.closed(now, "unexpected")
            for pending in replies:
                ctx.answer(pending, TIMEOUT if timed_out else ERROR, now)

    # ------------------------------------------------------------------ the long-poll loop

    def _poll(self, now: Moment) -> None:
        ctx = self._ctx
        if self._broken:
            self._poll_failed(BROKEN, now)
            return
        self.phase = Phase.OPEN if ctx.state.get("open?") else Phase.CONNECTING
        if ctx.bad_conn():
            self._poll_failed("simulated bad connection", now)
            return
        self.poll = ctx.new_link()
        url = poll_url(
            ctx.url,
            ctx.params,
            udt=now.udt,
            client_id=ctx.client_id,
            handshake=not ctx.state.get("open?"),
            extra=ctx.recovery(),
        )
        headers = ajax_headers(ctx.headers, ctx.token())
        ctx.do(HttpRequest(self.poll, "GET", url, headers, None, self._timeout_s))

    def _poll_answered(self, status: int, body: bytes, now: Moment) -> None:
        ctx = self._ctx
        self.poll = None
        package = self._package(status, body)
        if self._broken:
            package = ConnectionError(BROKEN)
        elif not isinstance(package, Exception) and ctx.bad_conn():
            package = ConnectionError("simulated bad connection: the answer was lost")
        if isinstance(package, Exception):
            self._poll_failed(str(package), now)
            return
        self._retries.reset()
        read = ctx.read(package)
        if read is not None:
            msg, seq = read
            if msg.kind is MessageKind.HANDSHAKE:
                ctx.handshake("ajax", msg)
            elif msg.kind in (MessageKind.TIMEOUT, MessageKind.PUSH):
                ctx.changed(ctx.state.opened())
                if msg.kind is MessageKind.PUSH:
                    ctx.push(msg, seq)
            else:
                log.warning("unexpected long-poll response %r", msg.value)
        self._poll(now)

    def _poll_failed(self, why: str, now: Moment) -> None:
        """Closed; poll again at once the first time, then after ``backoff_ms_fn(n)``."""
        self._broken = False
        ctx = self._ctx
        ctx.closed(now, "unexpected")
        if not self._reconnect:
            log.debug("poll failed: %s", why)
            self.stop("unexpected", now)
            return
        delay_ms = self._retries.next_delay_ms()
        log.debug(
            "poll failed (attempt %d, retry in %s ms): %s", self._retries.attempt, delay_ms, why
        )
        if delay_ms is None:
            self._poll(now)
            return
        self.phase = Phase.RETRY_WAIT
        self.retry_at = now.monotonic + delay_ms / 1000
        ctx.changed(ctx.state.update(udt_next_reconnect=now.udt + delay_ms))

    # ------------------------------------------------------------------ POSTs

    def _post_answered(self, link: int, status: int, body: bytes, now: Moment) -> None:
        ctx = self._ctx
        package = self._package(status, body)
        if not isinstance(package, Exception) and ctx.bad_conn():
            package = ConnectionError("simulated bad connection: the reply was lost")
        if isinstance(package, Exception):
            self.failed(link, package, now, timed_out=False)
            return
        self._posts.discard(link)
        try:
            reply, _ = unpack(ctx.packer, package)
        except UnpackError as exc:
            log.warning("cannot read the reply to an Ajax send: %s", exc)
            reply = ERROR
        ctx.answer_link(link, reply, now)
        if reply != ERROR:
            ctx.changed(ctx.state.opened())

    def _package(self, status: int, body: bytes) -> str | bytes | Exception:
        """The package an answer carries, or what is wrong with it."""
        if status != 200:
            return ConnectionError(f"HTTP {status}: {body.decode('utf-8', 'replace')[:200]}")
        if self._ctx.packer.binary:
            return body
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return exc
