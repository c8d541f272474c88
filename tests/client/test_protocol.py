""":class:`ClientProtocol` as a whole, with wire bytes and a fake clock: its phases, the
auto downgrade to Ajax, sends checked and packed before anything else, push recovery
(``fs-last-seq``), the legacy pack format, and real Sente's edn bytes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import flask_sente.client as client_package
from flask_sente.client.protocol import ClientProtocol, Phase
from flask_sente.client.transport import CloseWebSocket, HttpRequest, OpenWebSocket, SendFrame
from flask_sente.errors import ConfigError, InvalidEvent, PackError
from flask_sente.packers import EdnPacker, JsonPacker
from flask_sente.protocol import CLOSED, Keyword
from tests.client.sans_io import (
    HANDSHAKE,
    Driven,
    answers,
    events,
    of,
    one,
    push,
    states,
)


def test_every_phase_of_a_websocket_client() -> None:
    p = Driven(type="ws")
    seen = [p.phase]
    p("connect")
    seen.append(p.phase)
    p("ws_received", 1, HANDSHAKE)
    seen.append(p.phase)
    p("ws_failed", 1, OSError(), refused=False)  # only the current link counts: 1 still is
    p("ws_closed", 1, *_lost())
    seen.append(p.phase)  # retried at once
    p("ws_failed", 2, OSError(), refused=False)
    seen.append(p.phase)
    p.later(2)
    seen.append(p.phase)
    p("disconnect", "requested-disconnect")
    seen.append(p.phase)
    assert seen == [
        "closed",
        "connecting",
        "open",
        "connecting",
        "retry-wait",
        "connecting",
        "closed",
    ]
    assert {Phase(s) for s in seen} == set(Phase)


def test_connect_again_after_disconnect() -> None:
    p = Driven(type="ws")
    p("connect")
    p("ws_received", 1, HANDSHAKE)
    p("disconnect", "requested-disconnect")
    out = p("connect")
    assert one(OpenWebSocket, out).link == 2 and p.phase == "connecting"
    assert events(p("ws_received", 2, HANDSHAKE))[-1][1][3] is False  # not the first open
    out = p("reconnect", "requested-reconnect")
    assert CloseWebSocket(2, 1000, "CLOSE_NORMAL") in out and one(OpenWebSocket, out).link == 3


def test_reconnect_on_a_closed_client_connects() -> None:
    p = Driven(type="ajax")
    assert one(HttpRequest, p("reconnect", "requested-reconnect")).method == "GET"


def test_auto_moves_to_ajax_for_good_when_the_websocket_is_refused() -> None:
    p = Driven(type="auto")
    p("connect")
    out = p("ws_failed", 1, ConnectionError("403 Forbidden"), refused=True)
    assert p.protocol.kind == "ajax" and p.phase == "connecting"
    poll = one(HttpRequest, out)
    assert poll.method == "GET" and "handshake%3F=1" in poll.url
    assert p.state["last-close"]["reason"] == "downgrading-ws-to-ajax"
    assert "403" in p.state["last-ws-error"]["ev"]
    p("http_answered", poll.link, 200, HANDSHAKE.encode())
    assert p.state["type"] == "ajax"
    p("http_failed", poll.link + 1, ConnectionError(), timed_out=False)
    assert p.protocol.kind == "ajax"  # Ajax retries; no going back to the WebSocket
    p("disconnect", "requested-disconnect")
    assert one(OpenWebSocket, p("connect")).link  # a new connect() tries the WebSocket again


@pytest.mark.parametrize(
    ("type", "refused", "after_open"),
    [("ws", True, False), ("auto", False, False), ("auto", True, True)],
    ids=["type-ws", "server-down", "once-upgraded"],
)
def test_when_the_websocket_is_not_given_up(type: str, refused: bool, after_open: bool) -> None:
    p = Driven(type=type)
    p("connect")
    if after_open:
        p("ws_opened", 1)
        p("ws_closed", 1, *_lost())
        link = 2
    else:
        link = 1
    out = p("ws_failed", link, ConnectionError("no"), refused=refused)
    assert p.protocol.kind == "ws" and of(HttpRequest, out) == []
    assert "last-close" not in p.state


def test_a_send_is_checked_and_packed_before_anything_happens() -> None:
    p = Driven(type="ws")
    with pytest.raises(InvalidEvent):
        p("send", ["no-namespace"], timeout_ms=10, callback="cb")
    with pytest.raises(PackError):
        p("send", ["a/b", object()], timeout_ms=10, callback="cb")
    assert p.protocol.outputs() == []  # not even the chsk/closed answer
    p("connect")
    p("ws_received", 1, HANDSHAKE)
    with pytest.raises(PackError):
        p("send", ["a/b", {1j}])
    assert p.protocol.outputs() == [] and p.protocol.deadline == 10.0  # no callback filed
    with pytest.raises(ConfigError):
        ClientProtocol("http://h/chsk", packer=JsonPacker(), client_id="c", type="sse")


def test_recovery_reports_the_last_push_and_drops_repeats() -> None:
    p = Driven(type="ws")
    p("connect")
    p("ws_received", 1, HANDSHAKE)
    assert p.protocol.last_seq == "-"
    out = p("ws_received", 1, push(["a/x", 1], ["a/x", 2], seq="ep:2"))
    assert events(out) == [["a/x", 1], ["a/x", 2]] and p.protocol.last_seq == "ep:2"
    out = p("ws_closed", 1, *_lost())
    assert one(OpenWebSocket, out).url.endswith("&fs-last-seq=ep%3A2")
    p("ws_received", 2, HANDSHAKE)
    out = p("ws_received", 2, push(["a/x", 2], ["a/x", 3], seq="ep:3"))
    assert events(out) == [["a/x", 3]]


def test_without_recovery_nothing_is_reported_or_dropped() -> None:
    p = Driven(type="ajax", recover=False)
    assert "fs-last-seq" not in one(HttpRequest, p("connect")).url
    p("http_answered", 1, 200, HANDSHAKE.encode())
    numbered = push(["a/x", 1], seq="ep:1").encode()
    assert events(p("http_answered", 2, 200, numbered)) == [["a/x", 1]]
    assert events(p("http_answered", 3, 200, numbered)) == [["a/x", 1]]
    assert p.protocol.last_seq is None


def test_the_legacy_pack_format_is_written_and_read() -> None:
    p = Driven(type="ws", write_legacy_pack_format=True)
    p("connect")
    p("ws_received", 1, '-["chsk/handshake",["u1",null,null]]')
    assert p.phase == "open"
    frame = one(SendFrame, p("send", ["a/b", 1], timeout_ms=100, callback="cb"))
    assert frame.data == '+[["a/b",1],"cb0001"]'
    assert answers(p("ws_received", 1, '+["ok","cb0001"]')) == [("cb", "ok")]
    assert events(p("ws_received", 1, '-[["a/x",1]]')) == [["a/x", 1]]


def test_real_sentes_edn_bytes() -> None:
    """Frames of the recorded cljs WebSocket scenarios (tests/fixtures/protocol/transcripts/
    cljs-ws.txt): what the real server sent in, what the real client sent back."""
    uuids = iter(["a6801e", "30b078"])
    p = Driven(type="ws", packer=EdnPacker(), ws_kalive_ms=4000, new_cb_uuid=lambda: next(uuids))
    p("connect")
    out = p("ws_received", 1, '[[:chsk/handshake ["u-1" nil {:hello "world", :n 1}]] nil]')
    hello = {Keyword("hello"): "world", Keyword("n"): 1}
    assert events(out)[-1] == [Keyword("chsk/handshake"), ["u-1", None, hello, True]]
    echo = {Keyword("s"): "x y", Keyword("a"): 1}
    frame = one(SendFrame, p("send", ["test/echo", echo], timeout_ms=5000, callback="cb"))
    assert frame.data == '[[:test/echo {:s "x y", :a 1}] "a6801e"]'
    out = p("ws_received", 1, '[{:echo {:s "x y", :a 1}} "a6801e"]')
    assert answers(out) == [("cb", {Keyword("echo"): echo})]
    out = p("ws_received", 1, "[[[:test/pushed 0] [:test/pushed 1] [:test/pushed 2]] nil]")
    assert events(out) == [[Keyword("test/pushed"), n] for n in range(3)]
    out = p("ws_received", 1, "[:chsk/ws-ping nil]")
    assert one(SendFrame, out).data == "[[:chsk/ws-pong] nil]"
    p.later(2)
    assert one(SendFrame, p.later(2)).data == '[[:chsk/ws-ping] "30b078"]'
    assert p("ws_received", 1, '["pong" "30b078"]') == [] and p.phase == "open"


def test_state_changes_come_with_their_chsk_state_event() -> None:
    p = Driven(type="ws")
    p("connect")
    out = p("ws_received", 1, HANDSHAKE)
    [new] = states(out)
    [state_event] = [e for e in events(out) if e[0] == "chsk/state"]
    assert state_event[1][1] == {**new, "open-changed?": True, "opened?": True}
    assert p.state is new  # replaced, not changed in place
    before = p.state
    p("disconnect", "requested-disconnect")
    assert before["open?"] is True and p.state["open?"] is False


def test_deadline_is_the_earliest_thing_waiting() -> None:
    p = Driven(type="ws", ws_kalive_ms=10_000)
    p("connect")
    assert p.protocol.deadline is None
    p("ws_received", 1, HANDSHAKE)
    assert p.protocol.deadline == 5.0
    p("send", ["a/b"], timeout_ms=1000, callback="cb")
    assert p.protocol.deadline == 1.0
    assert answers(p("disconnect", "requested-disconnect")) == [("cb", CLOSED)]
    assert p.protocol.deadline is None


def _lost() -> tuple[object, object]:
    from flask_sente.client.transport import WsClose

    return WsClose(1006, "", False), ConnectionResetError("reset")


PURE = ["protocol", "context", "ws_channel", "ajax_channel", "state_map", "callbacks",
        "recovery", "backoff", "wire", "transport"]  # fmt: skip
IO = {"threading", "time", "socket", "select", "selectors", "requests", "websocket", "gevent"}
MACHINERY = {"runner", "ws_transport", "ajax_transport", "threads", "client", "state",
             "messages", "routing", "cookies", "page", "cli"}  # fmt: skip


@pytest.mark.parametrize("module", PURE)
def test_the_protocol_reads_no_clock_takes_no_lock_does_no_io(module: str) -> None:
    """Its modules import nothing that waits, locks or talks to a network, and nothing of the
    client's machinery (the runner, the transports, the threads)."""
    tree = ast.parse((Path(client_package.__file__).parent / f"{module}.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module if node.level == 1 else node.module.split(".")[0])
    assert imported and not imported & (IO | MACHINERY)
