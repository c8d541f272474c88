"""Delivery guarantees (docs/reliability.md): mailboxes, recovery, bounds, no silent loss."""

from __future__ import annotations

import threading

import pytest
import requests
import websocket

from tests.server.harness import AjaxPeer, WsPeer, running
from tests.support import wait_until


class Undelivered:
    def __init__(self, server) -> None:
        self.calls: list[tuple] = []
        server.sente.on_undelivered(lambda uid, events, why: self.calls.append((uid, events, why)))


def recv_batch(peer: WsPeer, timeout: float = 5.0) -> tuple[list, str | None]:
    """A push batch and its mailbox tag (the optional third element)."""
    peer.ws.settimeout(timeout)
    wrapper = peer.packer.unpack(peer.ws.recv())
    return wrapper[0], (wrapper[2] if len(wrapper) > 2 else None)


def test_a_returning_client_gets_what_it_missed_in_order_and_none_twice():
    with running(ms_allow_reconnect_before_close_ws=200) as server:
        peer = WsPeer(server, uid="r", client_id="tab", **{"fs-last-seq": "-"})
        peer.recv()
        server.sente.send("r", ["n/x", 1], flush=True)
        events, tag = recv_batch(peer)
        assert events == [["n/x", 1]] and tag.endswith(":1")
        epoch = tag.split(":")[0]
        peer.close()
        # gone past the close grace (uidport-close), but within the recovery window
        server.recorder.wait_for(lambda m: m.id == "chsk/uidport-close" and m.data == "r")
        for i in range(2, 6):
            server.sente.send("r", ["n/x", i])
        back = WsPeer(server, uid="r", client_id="tab", **{"fs-last-seq": f"{epoch}:1"})
        assert back.recv()[0][0] == "chsk/handshake"
        events, tag = recv_batch(back)
        assert events == [["n/x", i] for i in range(2, 6)] and tag == f"{epoch}:5"
        back.close()


def test_events_lost_in_transit_are_sent_again_to_a_reporting_client():
    with running() as server:
        peer = WsPeer(server, uid="t", client_id="c", **{"fs-last-seq": "-"})
        peer.recv()
        for i in range(1, 4):
            server.sente.send("t", ["n/x", i], flush=True)
        seen = []
        while len(seen) < 3:
            events, tag = recv_batch(peer)
            seen += [ev[1] for ev in events]
        epoch = tag.split(":")[0]
        peer.close()
        # the client only processed event 1 before its connection died
        back = WsPeer(server, uid="t", client_id="c", **{"fs-last-seq": f"{epoch}:1"})
        back.recv()
        assert recv_batch(back) == ([["n/x", 2], ["n/x", 3]], f"{epoch}:3")
        back.close()


def test_ajax_polls_are_answered_from_the_mailbox_by_reported_position():
    with running() as server:
        peer = AjaxPeer(server, uid="a", client_id="ac")
        params = {"fs-last-seq": "-"}
        peer.http.get(
            server.chsk, params={"client-id": "ac", "uid": "a", "handshake?": "1", **params}
        )
        for i in range(1, 4):
            server.sente.send("a", ["n/x", i], flush=True)
        answer = peer.http.get(server.chsk, params={"client-id": "ac", "uid": "a", **params}).json()
        assert answer[0] == [["n/x", 1], ["n/x", 2], ["n/x", 3]]
        epoch = answer[2].split(":")[0]
        # that answer was lost: the next poll still reports position 0 -> the same events again
        again = peer.http.get(
            server.chsk, params={"client-id": "ac", "uid": "a", "fs-last-seq": f"{epoch}:0"}
        ).json()
        assert again == answer
        server.sente.send("a", ["n/x", 4], flush=True)
        nxt = peer.http.get(
            server.chsk, params={"client-id": "ac", "uid": "a", "fs-last-seq": f"{epoch}:3"}
        ).json()
        assert nxt == [[["n/x", 4]], None, f"{epoch}:4"]


def test_sente_clients_never_see_a_third_element():
    with running() as server:
        peer = WsPeer(server, uid="s")
        peer.recv()
        server.sente.send("s", ["n/x", 1])
        peer.ws.settimeout(5)
        assert server.packer.unpack(peer.ws.recv()) == [[["n/x", 1]], None]
        peer.close()


def test_ajax_order_holds_across_flushes_and_batches():
    with running(send_buf_ms_ajax=50) as server:
        peer = AjaxPeer(server, uid="o")
        peer.get(handshake=True)
        got: list[int] = []
        stop = threading.Event()

        def poll_loop() -> None:
            while not stop.is_set() and len(got) < 100:
                value, _ = peer.poll()
                if value != "chsk/timeout":
                    got.extend(ev[1] for ev in value)

        poller = threading.Thread(target=poll_loop)
        poller.start()
        server.recorder.wait_for(lambda m: m.id == "chsk/uidport-open" and m.data == "o")
        for i in range(100):
            server.sente.send("o", ["n/x", i], flush=(i % 9 == 0))
        poller.join(20)
        stop.set()
        assert got == list(range(100))


def test_mailbox_outlives_the_window_only_so_long_and_reports_the_rest():
    with running(recovery_window_ms=500, ms_allow_reconnect_before_close_ws=100) as server:
        undelivered = Undelivered(server)
        peer = WsPeer(server, uid="w", client_id="c")
        peer.recv()
        peer.close()
        server.recorder.wait_for(lambda m: m.id == "chsk/uidport-close" and m.data == "w")
        server.sente.send("w", ["n/kept", 1])
        wait_until(lambda: undelivered.calls, 5)
        uid, events, why = undelivered.calls[0]
        assert (uid, events) == ("w", [["n/kept", 1]]) and "recovery window" in why
        server.sente.send("w", ["n/none", 2])
        wait_until(lambda: len(undelivered.calls) == 2, 5)
        assert undelivered.calls[1][2] == "the uid has no connection"
        assert server.app.extensions["sente"].undelivered == 2


def test_backlog_overflow_is_reported():
    with running(recovery_backlog=5) as server:
        undelivered = Undelivered(server)
        peer = AjaxPeer(server, uid="b")
        peer.get(handshake=True)  # a mailbox, but no poll to take the events
        for i in range(8):
            server.sente.send("b", ["n/x", i])
        wait_until(lambda: sum(len(c[1]) for c in undelivered.calls) == 3, 5)
        assert [ev[1] for c in undelivered.calls for ev in c[1]] == [0, 1, 2]
        assert "backlog" in undelivered.calls[0][2]
        value, _ = peer.poll()
        assert [ev[1] for ev in value] == [3, 4, 5, 6, 7]


@pytest.mark.parametrize("policy", ["disconnect", "drop_oldest"])
def test_a_client_that_does_not_read_is_bounded(policy):
    options = {"max_queued_messages": 20, "max_queued_bytes": 1 << 30, "slow_consumer": policy}
    with running(**options) as server:
        undelivered = Undelivered(server)
        peer = WsPeer(server, uid="slow")
        peer.recv()
        blob = "x" * 100_000
        for i in range(400):  # 40 MB: more than the kernel's socket buffers take
            server.sente.send("slow", ["n/big", [i, blob]], flush=True)
        if policy == "disconnect":
            peer.ws.settimeout(30)  # the backlog ahead of the close frame is megabytes
            while True:  # read what was sent before the close frame
                opcode, data = peer.ws.recv_data(control_frame=True)
                if opcode == 8:
                    break
            assert int.from_bytes(data[:2], "big") == 1008 and b"slow consumer" in data
        else:
            wait_until(lambda: undelivered.calls, 10)
            assert "slow consumer" in undelivered.calls[0][2]
        peer.close()


def test_max_connections_per_uid_answers_429():
    with running(max_connections_per_uid=2) as server:
        tabs = [WsPeer(server, uid="many") for _ in range(2)]
        for tab in tabs:
            tab.recv()
        with pytest.raises(websocket.WebSocketBadStatusException) as info:
            WsPeer(server, uid="many")
        assert info.value.status_code == 429
        # a tab reconnecting with its own client-id is not an extra connection
        again = WsPeer(server, uid="many", client_id=tabs[0].client_id)
        assert again.recv()[0][0] == "chsk/handshake"
        response = requests.get(server.chsk, params={"client-id": "x", "uid": "other"})
        assert response.status_code == 200
        for peer in [*tabs, again]:
            peer.close()


def test_a_burst_leaves_in_batches_of_at_most_64_without_waiting_for_the_window():
    from flask_sente.delivery import BATCH_MAX_EVENTS

    with running(send_buf_ms_ws=60_000) as server:  # a window no test would wait out
        peer = WsPeer(server, uid="burst")
        peer.recv()
        for i in range(2 * BATCH_MAX_EVENTS + 3):
            server.sente.send("burst", ["n/x", i])
        first, _ = recv_batch(peer)
        second, _ = recv_batch(peer)
        assert [ev[1] for ev in first + second] == list(range(2 * BATCH_MAX_EVENTS))
        peer.ws.settimeout(0.3)
        with pytest.raises(websocket.WebSocketTimeoutException):
            peer.ws.recv()  # the last 3 wait for their window, as Sente's would
        peer.close()


def test_an_ajax_batch_waits_for_its_window_however_many_come():
    with running(send_buf_ms_ajax=300, lp_timeout_ms=5000) as server:
        peer = AjaxPeer(server, uid="many")
        peer.get(handshake=True)
        result: list = []
        poller = threading.Thread(target=lambda: result.append(peer.poll(timeout=10)))
        poller.start()
        delivery = server.app.extensions["sente"].delivery
        wait_until(lambda: any(o.uid == "many" for o in delivery.live_outlets()), 5)
        for i in range(200):
            server.sente.send("many", ["n/x", i])
        poller.join(10)
        events, _ = result[0]
        assert [ev[1] for ev in events] == list(range(200))  # one answer, all of them


def test_an_ajax_batch_is_answered_only_once_the_bus_marks_it_delivered():
    # Otherwise a client answered first could poll again (on any worker) before the mark and
    # be sent the same batch twice: the bus still had it as pending.
    with running(lp_timeout_ms=5000) as server:
        peer = AjaxPeer(server, uid="once")
        peer.get(handshake=True)
        channel = server.app.extensions["sente"]
        seen_at_mark: list[bool] = []
        mark = channel.delivery.bus.delivered

        def delivered(uid, client_id, seq):
            slot = channel.registry.slot("ajax", uid, client_id)
            seen_at_mark.append(slot is not None and slot.conn.done)
            mark(uid, client_id, seq)

        channel.delivery.bus.delivered = delivered
        result: list = []
        poller = threading.Thread(target=lambda: result.append(peer.poll(timeout=10)))
        poller.start()
        wait_until(lambda: any(o.uid == "once" for o in channel.delivery.live_outlets()), 5)
        server.sente.send("once", ["n/x", 1], flush=True)
        poller.join(10)
        assert result[0][0] == [["n/x", 1]]
        assert seen_at_mark == [False]  # the poll was still unanswered when the mark was made
        # and the next poll waits for new events rather than getting that batch again
        server.sente.send("once", ["n/x", 2], flush=True)
        assert peer.poll(timeout=10)[0] == [["n/x", 2]]
