"""The WebSocket channel socket, driven through :class:`ClientProtocol` with wire text and a
fake clock: handshake, callbacks and their timeouts, pings both ways, the keepalive,
reconnects and backoff, breaks, send failures and the simulated bad connection."""

from __future__ import annotations

from flask_sente.client.transport import (
    CloseWebSocket,
    CutWebSocket,
    OpenWebSocket,
    SendFrame,
    WsClose,
)
from flask_sente.protocol import CLOSED, ERROR, TIMEOUT
from tests.client.sans_io import (
    EPOCH_MS,
    HANDSHAKE,
    PING,
    Driven,
    answers,
    events,
    of,
    one,
    push,
    reply,
    states,
)

CLEAN = WsClose(1000, "", True)


def opened(**options: object) -> Driven:
    """A protocol whose first WebSocket (link 1) is open and handshaken."""
    p = Driven(type="ws", **options)
    p("connect")
    p("ws_opened", 1)
    p("ws_received", 1, HANDSHAKE)
    assert p.phase == "open"
    return p


def test_connect_opens_a_websocket_as_sente_does() -> None:
    p = Driven(type="ws", params={"uid": "u 1"}, headers={"X-App": "1"})
    assert p.phase == "closed" and p.protocol.deadline is None
    out = p("connect")
    assert out == [
        OpenWebSocket(
            1,
            "ws://h/chsk?uid=u%201&client-id=cid&csrf-token=tok&fs-last-seq=-",
            {"X-App": "1"},
        )
    ]
    assert p.phase == "connecting" and p("connect") == []
    assert p("ws_opened", 1) == [] and p.phase == "connecting"


def test_the_handshake_opens_the_channel() -> None:
    p = Driven(type="ws")
    p("connect")
    out = p("ws_received", 1, HANDSHAKE)
    assert p.phase == "open"
    [new] = states(out)
    assert new == {
        "type": "ws",
        "open?": True,
        "ever-opened?": True,
        "csrf-token": "tok",
        "uid": "u1",
        "handshake-data": {"d": 1},
        "first-open?": True,
    }
    state_event, handshake = events(out)
    assert state_event[0] == "chsk/state" and state_event[1][1]["opened?"] is True
    assert state_event[1][2] is True  # open-changed?
    assert handshake == ["chsk/handshake", ["u1", None, {"d": 1}, True]]


def test_a_callback_gets_its_reply_once() -> None:
    p = opened()
    out = p("send", ["a/b", 1], timeout_ms=5000, callback="cb")
    assert p.result is True
    assert out == [SendFrame(1, '[["a/b",1],"cb0001"]', "cb0001")]
    assert p.protocol.deadline == 5.0
    assert answers(p("ws_received", 1, reply({"ok": 1}, "cb0001"))) == [("cb", {"ok": 1})]
    assert p("ws_received", 1, reply("again", "cb0001")) == []  # answered already
    assert p.protocol.deadline == 10.0  # only the keepalive is left


def test_a_callback_times_out_and_a_late_reply_is_dropped() -> None:
    p = opened(ws_kalive_ms=None)
    p("send", ["a/b"], timeout_ms=2000, callback="cb")
    assert p.later(1.999) == []
    assert answers(p.later(0.001)) == [("cb", TIMEOUT)]
    assert p("ws_received", 1, reply("late", "cb0001")) == []
    assert p.protocol.deadline is None


def test_a_send_without_callback_and_a_send_while_not_open() -> None:
    p = Driven(type="ws")
    assert answers(p("send", ["a/b"], timeout_ms=10, callback="cb")) == [("cb", CLOSED)]
    assert p.result is False
    p("connect")
    assert answers(p("send", ["a/b"], timeout_ms=10, callback="cb")) == [("cb", CLOSED)]
    p("ws_received", 1, HANDSHAKE)
    assert p("send", ["a/b", {"x": None}]) == [SendFrame(1, '[["a/b",{"x":null}],null]')]


def test_a_server_ping_is_answered_with_a_pong() -> None:
    p = opened()
    out = p("ws_received", 1, PING)
    assert of(SendFrame, out) == [SendFrame(1, '[["chsk/ws-pong"],null]')]
    assert events(out) == [["chsk/ws-ping"]]


def test_pushes_are_emitted_in_order_and_reserved_ids_dropped() -> None:
    p = opened(wrap_recv_evs=False)
    out = p("ws_received", 1, push(["a/x", 1], ["chsk/close"], ["a/y"]))
    assert events(out) == [["a/x", 1], ["a/y"]]
    wrapped = opened(wrap_recv_evs=True)
    assert events(wrapped("ws_received", 1, push(["a/x", 1]))) == [["chsk/recv", ["a/x", 1]]]


def test_junk_from_the_server_is_dropped() -> None:
    p = opened()
    assert p("ws_received", 1, "not json") == []
    assert p("ws_received", 1, "[42,null]") == []  # not a message the client knows
    assert p.phase == "open"


def test_the_keepalive_pings_an_idle_connection_only() -> None:
    p = opened(ws_kalive_ms=1000, ws_ping_timeout_ms=300)
    assert p.protocol.deadline == 0.5
    p("ws_received", 1, push(["a/x"]))  # traffic: no ping at the next look
    assert p.later(0.5) == []
    ping = one(SendFrame, p.later(0.5))
    assert ping.data == '[["chsk/ws-ping"],"cb0001"]'
    assert p("ws_received", 1, reply("pong", "cb0001")) == []
    assert p.phase == "open"


def test_no_pong_in_time_replaces_the_connection() -> None:
    p = opened(ws_kalive_ms=1000, ws_ping_timeout_ms=300)
    p.later(0.5)
    out = p.later(0.3)
    assert CloseWebSocket(1, 1000, "CLOSE_NORMAL") in out
    assert one(OpenWebSocket, out).link == 2
    assert p.state["last-close"] == {"udt": EPOCH_MS + 800, "reason": "ws-ping-timeout"}
    assert p.phase == "connecting"


def test_a_lost_connection_is_retried_at_once_then_with_backoff() -> None:
    p = opened()
    p("send", ["a/b"], timeout_ms=9000, callback="cb")
    out = p("ws_closed", 1, WsClose(1006, "", False), ConnectionResetError("gone"))
    assert answers(out) == [("cb", CLOSED)]
    assert one(OpenWebSocket, out).link == 2 and p.phase == "connecting"
    assert p.state["last-close"]["reason"] == "unexpected"
    assert p.state["last-ws-close"]["clean?"] is False and "last-ws-error" in p.state
    out = p("ws_failed", 2, ConnectionRefusedError("down"), refused=False)
    assert p.phase == "retry-wait" and p.backoffs == [2] and of(OpenWebSocket, out) == []
    assert p.state["udt-next-reconnect"] == EPOCH_MS + 2000
    assert p.protocol.deadline == 2.0
    assert p.later(1.9) == []
    assert one(OpenWebSocket, p.later(0.1)).link == 3
    p("ws_failed", 3, ConnectionRefusedError("down"), refused=False)
    assert p.backoffs == [2, 3]
    p.later(3)
    out = p("ws_received", 4, HANDSHAKE)
    assert events(out)[-1] == ["chsk/handshake", ["u1", None, {"d": 1}, False]]
    assert "udt-next-reconnect" not in p.state
    p("ws_closed", 4, CLEAN, None)  # counting starts again: at once
    assert p.backoffs == [2, 3] and p.phase == "connecting"


def test_reports_of_an_old_connection_change_nothing() -> None:
    p = opened()
    p("reconnect", "requested-reconnect")
    assert p("ws_received", 1, push(["a/x"])) == []
    assert p("ws_closed", 1, CLEAN, None) == []
    assert p("ws_failed", 1, OSError(), refused=True) == []
    assert p.phase == "connecting"


def test_disconnect_closes_cleanly_and_answers_every_callback() -> None:
    p = opened()
    p("send", ["a/b"], timeout_ms=9000, callback="one")
    p("send", ["a/c"], timeout_ms=9000, callback="two")
    out = p("disconnect", "requested-disconnect")
    assert CloseWebSocket(1, 1000, "CLOSE_NORMAL", linger=True) in out
    assert answers(out) == [("one", CLOSED), ("two", CLOSED)]
    assert p.phase == "closed" and p.protocol.deadline is None
    assert p.state["last-close"]["reason"] == "requested-disconnect"
    assert p("ws_closed", 1, CLEAN, None) == []  # no retry after a disconnect
    assert p("disconnect", "again") == []


def test_a_server_close_as_chsk_close_makes_reconnects_at_once() -> None:
    p = opened()
    out = p("ws_closed", 1, CLEAN, None)
    assert p.state["last-close"]["reason"] == "clean"
    assert p.state["last-ws-close"]["ev"] == CLEAN
    assert one(OpenWebSocket, out).link == 2


def test_reconnect_false_stays_closed_after_a_loss() -> None:
    p = opened(reconnect=False)
    out = p("ws_closed", 1, CLEAN, None)
    assert of(OpenWebSocket, out) == [] and p.phase == "closed"
    assert p.state["last-close"]["reason"] == "clean"


def test_break_connection_closes_abnormally_or_goes_silent() -> None:
    p = opened()
    assert p("break_connection", True) == [CloseWebSocket(1, 3000, "CLOSE_ABNORMAL")]
    assert p("break_connection", False) == [CutWebSocket(1, silently=True)]
    assert p.phase == "open"  # it finds out when the transport (or the keepalive) says so


def test_a_failed_write_is_an_error_and_a_new_connection() -> None:
    p = opened()
    [frame] = p("send", ["a/b"], timeout_ms=9000, callback="cb")
    assert isinstance(frame, SendFrame)
    out = p("ws_send_failed", frame, BrokenPipeError())
    assert answers(out) == [("cb", ERROR)]
    assert p.state["last-close"]["reason"] == "ws-error"
    assert one(OpenWebSocket, out).link == 2


def test_a_simulated_bad_connection_drops_receives_and_sends() -> None:
    p = Driven(type="ws", simulated_bad_conn_rate=0.5)
    p("connect")
    p.rand = 0.4
    assert p("ws_received", 1, HANDSHAKE) == [CutWebSocket(1, silently=False)]
    p.rand = 0.6
    p("ws_received", 1, HANDSHAKE)
    p.rand = 0.4
    out = p("send", ["a/b"], timeout_ms=9000, callback="cb")
    assert p.result is False
    assert out[0] == CloseWebSocket(1, 3000, "SIMULATED_BAD_CONN")
    assert answers(out) == [("cb", ERROR)]
    assert p.state["last-close"]["reason"] == "ws-error"
