"""The Ajax channel socket, driven through :class:`ClientProtocol` with wire bytes and a fake
clock: the handshake poll, long-polls, POSTs and their replies, failures and backoff,
breaks, and Sente's ``open?`` quirk."""

from __future__ import annotations

from flask_sente.client.transport import AbortRequest, HttpRequest
from flask_sente.packers import MsgpackPacker
from flask_sente.protocol import CLOSED, ERROR, TIMEOUT
from tests.client.sans_io import (
    EPOCH_MS,
    HANDSHAKE,
    POLL_TIMEOUT,
    Driven,
    answers,
    events,
    of,
    one,
    push,
    reply,
    states,
)

FORM = "application/x-www-form-urlencoded;charset=UTF-8"


def polling(**options: object) -> Driven:
    """A protocol whose handshake poll (link 1) was answered; the next poll is link 2."""
    p = Driven(type="ajax", **options)
    p("connect")
    p("http_answered", 1, 200, HANDSHAKE.encode())
    assert p.phase == "open"
    return p


def test_the_first_poll_asks_for_the_handshake() -> None:
    p = Driven(type="ajax", params={"uid": "u"}, headers={"X-App": "1"}, ajax_timeout_ms=20_000)
    out = p("connect")
    assert out == [
        HttpRequest(
            1,
            "GET",
            f"http://h/chsk?uid=u&udt={EPOCH_MS}&client-id=cid&handshake%3F=1&fs-last-seq=-",
            {"X-Requested-With": "XMLHTTPRequest", "X-App": "1", "X-CSRF-Token": "tok"},
            None,
            20.0,
        )
    ]
    assert p.phase == "connecting"
    out = p("http_answered", 1, 200, HANDSHAKE.encode())
    assert states(out)[0]["type"] == "ajax" and p.state["open?"] is True
    assert events(out)[-1] == ["chsk/handshake", ["u1", None, {"d": 1}, True]]
    assert "handshake" not in one(HttpRequest, out).url and p.phase == "open"


def test_long_polls_carry_pushes_and_timeouts_and_go_on() -> None:
    p = polling()
    out = p("http_answered", 2, 200, push(["a/x", 1], ["a/y"]).encode())
    assert events(out) == [["a/x", 1], ["a/y"]] and one(HttpRequest, out).link == 3
    out = p("http_answered", 3, 200, POLL_TIMEOUT)
    assert events(out) == [] and one(HttpRequest, out).link == 4
    out = p("http_failed", 4, TimeoutError("read"), timed_out=True)  # nobody answered: again
    assert one(HttpRequest, out).link == 5 and p.phase == "open" and p.backoffs == []


def test_a_failed_poll_is_retried_at_once_then_with_backoff() -> None:
    p = polling()
    out = p("http_answered", 2, 503, b"simulated bad connection")
    assert p.state["last-close"]["reason"] == "unexpected" and p.state["open?"] is False
    retry = one(HttpRequest, out)
    assert "handshake%3F=1" in retry.url and p.phase == "connecting"
    p("http_failed", retry.link, ConnectionError("refused"), timed_out=False)
    assert p.phase == "retry-wait" and p.backoffs == [2]
    assert p.state["udt-next-reconnect"] == EPOCH_MS + 2000
    assert p.later(1.5) == []
    assert one(HttpRequest, p.later(0.5)).link == 4
    p("http_answered", 4, 200, HANDSHAKE.encode())
    p("http_failed", 5, ConnectionError("refused"), timed_out=False)
    assert p.phase == "connecting" and p.backoffs == [2]  # answered: counting starts again


def test_a_post_is_answered_by_its_response() -> None:
    p = polling()
    out = p("send", ["a/b", 1], timeout_ms=3000, callback="cb")
    post = one(HttpRequest, out)
    assert (post.method, post.url, post.timeout_s) == ("POST", "http://h/chsk", 3.0)
    assert (
        post.body
        == f"udt={EPOCH_MS}&client-id=cid&ppstr=%5B%5B%22a%2Fb%22%2C1%5D%2C%22ajax%22%5D".encode()
    )
    assert post.headers["Content-Type"] == FORM and post.headers["X-CSRF-Token"] == "tok"
    assert answers(p("http_answered", post.link, 200, reply({"ok": 1}, None).encode())) == [
        ("cb", {"ok": 1})
    ]
    plain = one(HttpRequest, p("send", ["a/c"]))
    assert b"ppstr=%5B%5B%22a%2Fc%22%5D%2Cnull%5D" in (plain.body or b"")
    assert plain.timeout_s == 60.0
    assert p("http_answered", plain.link, 200, b'["chsk/dummy-cb-200",null]') == []


def test_a_post_that_fails_or_times_out() -> None:
    p = polling()
    first = one(HttpRequest, p("send", ["a/b"], timeout_ms=3000, callback="one"))
    out = p("http_failed", first.link, TimeoutError(), timed_out=True)
    assert answers(out) == [("one", TIMEOUT)] and p.state["open?"] is True
    second = one(HttpRequest, p("send", ["a/b"], timeout_ms=3000, callback="two"))
    out = p("http_failed", second.link, ConnectionError("reset"), timed_out=False)
    assert answers(out) == [("two", ERROR)] and p.state["open?"] is False
    assert answers(p("send", ["a/b"], timeout_ms=3000, callback="three")) == [("three", CLOSED)]
    p("http_answered", 2, 200, POLL_TIMEOUT)  # the long-poll answers: open again
    assert p.state["open?"] is True and of(HttpRequest, p("send", ["a/b"]))


def test_an_answered_post_marks_the_channel_open_even_between_polls() -> None:
    p = polling()
    post = one(HttpRequest, p("send", ["a/b"], timeout_ms=3000, callback="cb"))
    p("http_failed", 2, ConnectionError("reset"), timed_out=False)
    p("http_failed", post.link + 1, ConnectionError("reset"), timed_out=False)
    assert p.phase == "retry-wait" and p.state["open?"] is False
    p("http_answered", post.link, 200, reply("ok", None).encode())
    assert p.state["open?"] is True and p.phase == "retry-wait"  # Sente's quirk
    unreadable = one(HttpRequest, p("send", ["a/b"], timeout_ms=3000, callback="cb2"))
    assert answers(p("http_answered", unreadable.link, 200, b"{junk")) == [("cb2", ERROR)]


def test_the_client_callback_timer_wins_over_a_slow_post() -> None:
    p = polling()
    post = one(HttpRequest, p("send", ["a/b"], timeout_ms=1000, callback="cb"))
    assert answers(p.later(1)) == [("cb", TIMEOUT)]
    assert answers(p("http_answered", post.link, 200, reply("late", None).encode())) == []


def test_binary_packers_post_bytes() -> None:
    p = Driven(type="ajax", packer=MsgpackPacker())
    p("connect")
    handshake = MsgpackPacker().pack([["chsk/handshake", ["u1", None, None]], None])
    p("http_answered", 1, 200, handshake)
    post = one(HttpRequest, p("send", ["a/b", b"\x00\x01"]))
    assert post.url == f"http://h/chsk?udt={EPOCH_MS}&client-id=cid&binary%3F=true"
    assert post.headers["Content-Type"] == "application/octet-stream"
    assert MsgpackPacker().unpack(post.body or b"") == [["a/b", b"\x00\x01"], None]


def test_break_cuts_the_poll_or_fails_the_next_one() -> None:
    p = polling()
    assert p("break_connection", True) == [AbortRequest(2)]
    out = p("http_answered", 2, 200, POLL_TIMEOUT)  # the answer beat the abort: broken anyway
    assert p.state["last-close"]["reason"] == "unexpected" and one(HttpRequest, out).link == 3
    p("http_failed", 3, ConnectionError(), timed_out=False)
    assert p.phase == "retry-wait"
    assert p("break_connection", False) == []  # no poll out: the next one fails
    out = p.later(2)
    assert of(HttpRequest, out) == [] and p.phase == "retry-wait" and p.backoffs == [2, 3]


def test_disconnect_aborts_every_request() -> None:
    p = polling()
    post = one(HttpRequest, p("send", ["a/b"], timeout_ms=3000, callback="cb"))
    out = p("disconnect", "requested-disconnect")
    assert of(AbortRequest, out) == [AbortRequest(2), AbortRequest(post.link)]
    assert answers(out) == [("cb", CLOSED)] and p.phase == "closed"
    assert p("http_answered", 2, 200, POLL_TIMEOUT) == []


def test_reconnect_false_stops_polling_after_a_failure() -> None:
    p = polling(reconnect=False)
    out = p("http_failed", 2, ConnectionError(), timed_out=False)
    assert of(HttpRequest, out) == [] and p.phase == "closed"


def test_a_simulated_bad_connection_fails_polls_and_posts() -> None:
    p = Driven(type="ajax", simulated_bad_conn_rate=0.5)
    p.rand = 0.4
    out = p("connect")
    assert of(HttpRequest, out) == [] and p.phase == "retry-wait"  # two failures, no request
    p.rand = 0.6
    p("http_answered", one(HttpRequest, p.later(2)).link, 200, HANDSHAKE.encode())
    p.rand = 0.4
    out = p("send", ["a/b"], timeout_ms=1000, callback="cb")
    assert p.result is True and answers(out) == [("cb", ERROR)]  # apparent success, as Sente
