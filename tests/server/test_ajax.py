"""Ajax handshake, long-polls and POSTs against the conformance checklist (spec section 8)."""

from __future__ import annotations

import threading
import time

import requests

from tests.server.harness import AjaxPeer, running


def test_handshake_get_answers_at_once(edn_server):
    peer = AjaxPeer(edn_server, client_id="cid-ajax-1")
    response = peer.get(handshake=True)
    assert response.status_code == 200
    assert response.text == '[[:chsk/handshake ["cid-ajax-1" nil {:hello "world", :n 1}]] nil]'


def test_unknown_client_without_handshake_flag_still_gets_a_handshake(server):
    peer = AjaxPeer(server)
    value, _ = peer.poll()
    assert value[0] == "chsk/handshake"


def test_idle_long_poll_ends_with_chsk_timeout(edn_server):
    peer = AjaxPeer(edn_server)
    peer.get(handshake=True)
    started = time.monotonic()
    response = peer.get()
    assert response.text == "[:chsk/timeout nil]"
    assert time.monotonic() - started >= 0.9  # lp_timeout_ms is 1000 here


def test_push_during_a_poll_answers_it_with_the_batch(server):
    peer = AjaxPeer(server, uid="ajax-u")
    peer.get(handshake=True)
    result: list = []
    poller = threading.Thread(target=lambda: result.append(peer.poll()))
    poller.start()
    server.recorder.wait_for(lambda m: m.id == "chsk/uidport-open" and m.data == "ajax-u")
    server.sente.send("ajax-u", ["a/x", 1])
    server.sente.send("ajax-u", ["a/y", 2])
    poller.join(5)
    assert result == [([["a/x", 1], ["a/y", 2]], None)]


def test_pushes_between_polls_wait_for_the_next_poll_in_order(server):
    peer = AjaxPeer(server, uid="between")
    peer.get(handshake=True)
    assert peer.poll()[0] == "chsk/timeout"  # a first real poll opens the uid
    for i in range(5):
        server.sente.send("between", ["n/x", i], flush=True)
    got: list = []
    while len(got) < 5:
        value, _ = peer.poll()
        if value != "chsk/timeout":
            got.extend(ev[1] for ev in value)
    assert got == [0, 1, 2, 3, 4]


def test_post_without_callback_gets_dummy_and_handler_gets_no_reply(edn_server):
    peer = AjaxPeer(edn_server)
    response = peer.post(["test/noop", 1])
    assert response.text == "[:chsk/dummy-cb-200 nil]"
    msg = edn_server.recorder.wait_for(lambda m: m.id == "test/noop")
    assert msg.reply is None


def test_post_with_callback_gets_the_reply(edn_server):
    peer = AjaxPeer(edn_server)
    data = {"udt": "1", "client-id": "c", "ppstr": "[[:test/echo {:ok true}] :ajax]"}
    response = peer.http.post(edn_server.chsk, data=data)
    assert response.text == "[{:echo {:ok true}} nil]"


def test_post_whose_handler_never_replies_gets_timeout(server):
    peer = AjaxPeer(server)
    assert peer.request(["test/no-reply", 1]) == ("chsk/timeout", None)


def test_only_the_first_reply_counts():
    with running() as server:
        replies: list[bool] = []

        @server.sente.on("test/twice")
        def twice(msg):
            replies.append(msg.reply("first"))
            replies.append(msg.reply("second"))

        assert AjaxPeer(server).request(["test/twice"]) == ("first", None)
        assert replies == [True, False]


def test_legacy_callback_markers_and_one_element_wrappers(edn_server):
    peer = AjaxPeer(edn_server)
    for ppstr, expected in (
        ("[[:test/echo 1] 0]", "[{:echo 1} nil]"),
        ("[[:test/echo 2] :ajax-cb]", "[{:echo 2} nil]"),
        ("[[:test/echo 3]]", "[:chsk/dummy-cb-200 nil]"),
    ):
        response = peer.http.post(edn_server.chsk, data={"client-id": "c", "ppstr": ppstr})
        assert response.text == expected


def test_binary_flag_reads_the_raw_body(server):
    body = b'[["test/echo",7],"ajax"]'
    response = requests.post(
        server.chsk,
        params={"client-id": "b", "binary?": "true"},
        data=body,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.text == '[{"echo":7},null]'


def test_malformed_post_gets_400_with_a_reason_and_a_bad_package_event(server):
    response = requests.post(server.chsk, data={"client-id": "c", "ppstr": "[[nope"})
    assert response.status_code == 400
    assert "bad package" in response.text
    server.recorder.wait_for(lambda m: m.id == "chsk/bad-package" and m.data == "[[nope")
    response = requests.post(server.chsk, data={"client-id": "c"})
    assert response.status_code == 400
    assert "ppstr" in response.text


def test_oversize_post_gets_413():
    with running(max_message_size=100) as server:
        response = requests.post(server.chsk, data={"client-id": "c", "ppstr": "x" * 500})
        assert response.status_code == 413
