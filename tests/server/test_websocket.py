"""WebSocket behaviour against the conformance checklist (spec section 8), over real sockets."""

from __future__ import annotations

import time

from flask_sente import protocol
from flask_sente.protocol import Keyword
from tests.server.harness import WsPeer, running


def test_handshake_is_the_first_frame_exactly_as_sente_writes_it(edn_server):
    peer = WsPeer(edn_server, client_id="cid-ws-1")
    assert peer.recv_raw() == '[[:chsk/handshake ["cid-ws-1" nil {:hello "world", :n 1}]] nil]'
    peer.close()


def test_handshake_data_vector_has_three_elements_with_nil_second(server):
    peer = WsPeer(server, uid="alice")
    value, cb = peer.recv()
    assert cb is None
    assert value == ["chsk/handshake", ["alice", None, {"hello": "world", "n": 1}]]
    peer.close()


def test_nil_uid_goes_out_as_sente_nil_uid():
    with running(user_id_fn=lambda req: None) as server:
        peer = WsPeer(server)
        value, _ = peer.recv()
        assert value[1][0] == "sente/nil-uid"
        peer.close()


def test_reply_carries_the_callback_id(edn_server):
    peer = WsPeer(edn_server, client_id="c")
    peer.recv()
    peer.send_raw('[[:test/echo {:a 1, :b "two"}] "abc123"]')
    assert peer.recv_raw() == '[{:echo {:a 1, :b "two"}} "abc123"]'
    peer.send_raw('[[:test/reply-str] "cb0002"]')
    assert peer.recv_raw() == '["a-string-reply" "cb0002"]'
    peer.close()


def test_ping_with_callback_gets_pong_and_reaches_handlers_without_reply(edn_server):
    peer = WsPeer(edn_server, client_id="p")
    peer.recv()
    peer.send_raw('[[:chsk/ws-ping] "png001"]')
    assert peer.recv_raw() == '["pong" "png001"]'
    msg = edn_server.recorder.wait_for(lambda m: m.id == "chsk/ws-ping")
    assert msg.reply is None
    peer.close()


def test_ping_and_pong_without_callback_get_no_frame(server):
    peer = WsPeer(server)
    peer.recv()
    peer.send(["chsk/ws-ping"])
    peer.send(["chsk/ws-pong"])
    server.recorder.wait_for(lambda m: m.id == "chsk/ws-pong")
    assert peer.nothing_within(0.3)
    peer.close()


def test_every_server_message_is_a_two_element_vector(edn_server):
    peer = WsPeer(edn_server)
    frames = [peer.recv_raw()]
    peer.send_raw('[[:test/echo 1] "x1"]')
    frames.append(peer.recv_raw())
    peer.send_raw("[[:test/push-me 2] nil]")
    frames.append(peer.recv_raw())
    for frame in frames:
        value = edn_server.packer.unpack(frame)
        assert isinstance(value, list) and len(value) == 2
    peer.close()


def test_push_reaches_every_tab_of_the_uid_as_a_batch(server):
    tabs = [WsPeer(server, uid="alice") for _ in range(3)]
    other = WsPeer(server, uid="bob")
    for peer in [*tabs, other]:
        peer.recv()
    server.sente.send("alice", ["a/b", 1])
    for peer in tabs:
        assert peer.recv() == ([["a/b", 1]], None)
    assert other.nothing_within(0.2)
    for peer in [*tabs, other]:
        peer.close()


def test_pushes_within_the_window_arrive_as_one_frame_in_call_order(edn_server):
    peer = WsPeer(edn_server, client_id="b")
    peer.recv()
    peer.send_raw("[[:test/push-3] nil]")
    assert peer.recv_raw() == "[[[:test/pushed 0] [:test/pushed 1] [:test/pushed 2]] nil]"
    peer.close()


def test_flush_sends_at_once_and_keeps_earlier_buffered_events_first():
    with running(send_buf_ms_ws=5000) as server:
        peer = WsPeer(server, uid="u")
        peer.recv()
        server.sente.send("u", ["a/first", 1])
        server.sente.send("u", ["a/second", 2], flush=True)
        started = time.monotonic()
        assert peer.recv() == ([["a/first", 1], ["a/second", 2]], None)
        assert time.monotonic() - started < 4.0  # well before the 5 s window
        peer.close()


def test_many_pushes_keep_call_order_across_batches(server):
    peer = WsPeer(server, uid="order")
    peer.recv()
    for i in range(200):
        server.sente.send("order", ["n/x", i], flush=(i % 7 == 0))
    got: list[int] = []
    while len(got) < 200:
        batch, _ = peer.recv()
        got.extend(ev[1] for ev in batch)
    assert got == list(range(200))
    peer.close()


def test_chsk_close_closes_every_connection_of_the_uid(server):
    tabs = [WsPeer(server, uid="closer") for _ in range(2)]
    for peer in tabs:
        peer.recv()
    tabs[0].send(["test/close-me"])
    for peer in tabs:
        peer.ws.settimeout(5)
        opcode, data = peer.ws.recv_data(control_frame=True)
        assert opcode == 8  # close frame
        assert int.from_bytes(data[:2], "big") == 1000
    for peer in tabs:
        peer.close()


def test_bad_event_reaches_handlers_as_chsk_bad_event(server):
    peer = WsPeer(server)
    peer.recv()
    for bad in (["foo"], "x", ["a/b", 1, 2]):
        peer.send(bad)
        msg = server.recorder.wait_for(
            lambda m, bad=bad: m.id == "chsk/bad-event" and m.data == bad
        )
        assert msg.event[0] == Keyword("chsk/bad-event")
    peer.close()


def test_malformed_package_is_reported_and_the_connection_keeps_working(server):
    peer = WsPeer(server)
    peer.recv()
    peer.send_raw('[["test/echo"')
    msg = server.recorder.wait_for(lambda m: m.id == "chsk/bad-package")
    assert msg.data == '[["test/echo"'
    peer.send(["test/echo", 5], "ok1")
    assert peer.recv() == ({"echo": 5}, "ok1")
    peer.close()


def test_oversize_message_closes_with_1009():
    with running(max_message_size=1000) as server:
        peer = WsPeer(server)
        peer.recv()
        peer.send(["test/echo", "x" * 2000])
        peer.ws.settimeout(5)
        opcode, data = peer.ws.recv_data(control_frame=True)
        assert opcode == 8
        assert int.from_bytes(data[:2], "big") == 1009
        peer.close()


def test_server_pings_an_idle_connection_and_closes_it_without_an_answer():
    with running(ws_kalive_ms=400, ws_ping_timeout_ms=300, packer="edn") as server:
        peer = WsPeer(server)
        peer.recv_raw()
        assert peer.recv_raw(timeout=3) == "[:chsk/ws-ping nil]"
        peer.ws.settimeout(3)
        opcode, _ = peer.ws.recv_data(control_frame=True)
        assert opcode == 8
        peer.close()


def test_answering_pings_keeps_the_connection_open():
    with running(ws_kalive_ms=400, ws_ping_timeout_ms=300) as server:
        peer = WsPeer(server)
        peer.recv()
        for _ in range(3):
            assert peer.recv(timeout=3) == ("chsk/ws-ping", None)
            peer.send(["chsk/ws-pong"])
        peer.send(["test/echo", "still here"], "e1")
        assert peer.recv() == ({"echo": "still here"}, "e1")
        peer.close()


def test_the_module_default_write_legacy_pack_format_is_followed(monkeypatch):
    """``protocol.WRITE_LEGACY_PACK_FORMAT`` is Sente's ``*write-legacy-pack-format?*``: the
    server follows it unless its own option says otherwise."""
    monkeypatch.setattr(protocol, "WRITE_LEGACY_PACK_FORMAT", True)
    with running(packer="edn") as server:
        peer = WsPeer(server, client_id="follows")
        assert peer.recv_raw().startswith("-[:chsk/handshake")
        peer.close()
    with running(packer="edn", write_legacy_pack_format=False) as server:
        peer = WsPeer(server, client_id="overrides")
        assert peer.recv_raw().startswith("[[:chsk/handshake")
        peer.close()


def test_legacy_v1_format_is_written_on_request():
    with running(packer="edn", write_legacy_pack_format=True) as server:
        peer = WsPeer(server, client_id="old")
        assert peer.recv_raw().startswith("-[:chsk/handshake")
        peer.send_raw('+[[:test/echo 1] "c1"]')
        assert peer.recv_raw() == '+[{:echo 1} "c1"]'
        peer.close()
