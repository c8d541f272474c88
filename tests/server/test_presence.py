"""connected_uids and uidport-open/close with Sente's close grace (spec 4.2, checklist 40-47)."""

from __future__ import annotations

import contextlib
import threading

import requests

from tests.server.harness import AjaxPeer, WsPeer, running
from tests.support import wait_until


def opens(server, uid):
    return server.recorder.count("chsk/uidport-open", uid)


def closes(server, uid):
    return server.recorder.count("chsk/uidport-close", uid)


def test_first_ws_connection_opens_the_uid_once_and_tabs_do_not_reopen():
    with running() as server:
        first = WsPeer(server, uid="alice")
        first.recv()
        msg = server.recorder.wait_for(lambda m: m.id == "chsk/uidport-open")
        assert (msg.data, msg.uid) == ("alice", "alice")
        assert server.sente.connected_uids == {
            "ws": frozenset({"alice"}),
            "ajax": frozenset(),
            "any": frozenset({"alice"}),
        }
        second = WsPeer(server, uid="alice")
        second.recv()
        second.close()
        assert server.recorder.drain(settle=0.6) and opens(server, "alice") == 1
        assert closes(server, "alice") == 0  # one of two tabs closing is no close
        first.close()
        server.recorder.wait_for(lambda m: m.id == "chsk/uidport-close" and m.data == "alice")
        assert server.sente.connected_uids["any"] == frozenset()
        assert opens(server, "alice") == 1


def test_reconnect_within_grace_is_neither_close_nor_open():
    with running(ms_allow_reconnect_before_close_ws=1500) as server:
        peer = WsPeer(server, uid="reload", client_id="tab-1")
        peer.recv()
        server.recorder.wait_for(lambda m: m.id == "chsk/uidport-open")
        peer.close()
        again = WsPeer(server, uid="reload", client_id="tab-1")
        again.recv()
        server.recorder.drain(settle=1.8)
        assert (opens(server, "reload"), closes(server, "reload")) == (1, 0)
        assert "reload" in server.sente.connected_uids["ws"]
        again.close()


def test_pushes_during_the_grace_period_reach_the_returning_tab_in_order():
    with running(ms_allow_reconnect_before_close_ws=3000) as server:
        peer = WsPeer(server, uid="back", client_id="tab")
        peer.recv()
        peer.close()
        wait_until(
            lambda: server.app.extensions["sente"].registry.slot("ws", "back", "tab").conn is None
        )
        server.sente.send("back", ["n/x", 1], flush=True)
        server.sente.send("back", ["n/x", 2], flush=True)
        again = WsPeer(server, uid="back", client_id="tab")
        assert again.recv()[0][0] == "chsk/handshake"
        assert again.recv() == ([["n/x", 1], ["n/x", 2]], None)
        again.close()


def test_ajax_handshake_alone_does_not_open_but_the_first_poll_does():
    with running() as server:
        peer = AjaxPeer(server, uid="aj")
        peer.get(handshake=True)
        server.recorder.drain(settle=0.2)
        assert opens(server, "aj") == 0
        poller = threading.Thread(target=peer.poll)
        poller.start()
        msg = server.recorder.wait_for(lambda m: m.id == "chsk/uidport-open" and m.data == "aj")
        assert msg.client_id == peer.client_id
        assert server.sente.connected_uids["ajax"] == frozenset({"aj"})
        poller.join(5)


def test_ajax_uid_closes_after_the_grace_once_polling_stops():
    with running() as server:
        peer = AjaxPeer(server, uid="gone")
        peer.get(handshake=True)
        peer.poll()  # times out after lp_timeout_ms, then the client goes quiet
        server.recorder.wait_for(lambda m: m.id == "chsk/uidport-close" and m.data == "gone")
        assert "gone" not in server.sente.connected_uids["any"]


def test_watchers_see_every_change_and_uids_route_reports_them():
    with running() as server:
        changes = []
        unwatch = server.sente.watch_connected_uids(lambda old, new: changes.append(new["any"]))
        peer = WsPeer(server, uid="w")
        peer.recv()
        wait_until(lambda: frozenset({"w"}) in changes)
        assert requests.get(server.url + "/uids").json()["ws"] == ["w"]
        peer.close()
        wait_until(lambda: changes[-1] == frozenset())
        unwatch()


def test_all_users_without_uid_reaches_anonymous_clients():
    with running(user_id_fn=lambda req: req.param("uid")) as server:
        anon = WsPeer(server)
        named = WsPeer(server, uid="n")
        anon.recv()
        named.recv()
        server.sente.send("sente/all-users-without-uid", ["a/anon", 1])
        assert anon.recv() == ([["a/anon", 1]], None)
        assert named.nothing_within(0.2)
        anon.close()
        named.close()


def test_push_to_a_uid_without_connection_is_counted_and_logged(caplog):
    with running() as server, caplog.at_level("WARNING", logger="flask_sente.server"):
        server.sente.send("nobody", ["a/b", 1])
        assert server.app.extensions["sente"].undelivered == 1
    assert "nobody" in caplog.text


def test_uidport_events_carry_the_connecting_request():
    """Sente gives uidport-open/-close the ``:ring-req`` of the connection: the upgrade
    request of a WebSocket, the poll of an Ajax client."""
    with running() as server:
        ws = WsPeer(server, uid="req-ws", client_id="tab-ws", page="home")
        ws.recv()
        opened = server.recorder.wait_for(
            lambda m: m.id == "chsk/uidport-open" and m.data == "req-ws"
        )
        assert opened.request is not None and opened.client_id == "tab-ws"
        assert (opened.request.method, opened.request.param("page")) == ("GET", "home")
        assert opened.request.header("upgrade") == "websocket"
        ws.close()
        closed = server.recorder.wait_for(
            lambda m: m.id == "chsk/uidport-close" and m.data == "req-ws"
        )
        assert closed.request is not None and closed.request.param("page") == "home"

        ajax = AjaxPeer(server, uid="req-ajax", client_id="tab-ajax")
        ajax.get(handshake=True)
        poller = threading.Thread(target=poll_until_the_server_closes, args=(ajax,))
        poller.start()
        opened = server.recorder.wait_for(
            lambda m: m.id == "chsk/uidport-open" and m.data == "req-ajax"
        )
        assert opened.request is not None and opened.request.client_id == "tab-ajax"
        assert opened.request.param("handshake?") is None  # the poll, not the handshake
    poller.join(5)


def poll_until_the_server_closes(peer: AjaxPeer) -> None:
    """One long-poll; the server's shutdown fails it (docs/protocol.md)."""
    with contextlib.suppress(requests.ConnectionError):
        peer.get()
