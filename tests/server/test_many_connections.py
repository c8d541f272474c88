"""Connections that hold no thread: more WebSockets and long-polls than the server has threads."""

from __future__ import annotations

import json
import socket
import threading
import uuid

import pytest
import requests
import websocket

from tests.server.harness import WsPeer, running
from tests.support import gunicorn_process, wait_until

ENV = {"SENTE_LP_TIMEOUT_MS": "3000"}


def ws_connect(base: str, uid: str) -> websocket.WebSocket:
    url = "ws" + base[4:] + f"/chsk?client-id={uuid.uuid4()}&uid={uid}"
    ws = websocket.create_connection(url, timeout=10)
    assert json.loads(ws.recv())[0][0] == "chsk/handshake"
    return ws


def test_gthread_with_4_threads_serves_60_websockets_and_30_long_polls_and_plain_routes():
    server = gunicorn_process("gthread", "--threads", "4", env=ENV)
    try:
        sockets = [ws_connect(server.url, f"ws{i}") for i in range(60)]
        http = requests.Session()
        chsk = server.url + "/chsk"
        results: list[object] = []

        def long_poll(i: int) -> None:
            params = {"client-id": f"lp{i}", "uid": f"lp{i}"}
            http.get(chsk, params={**params, "handshake?": "1"}, timeout=10)
            results.append(requests.get(chsk, params=params, timeout=15).json())

        pollers = [threading.Thread(target=long_poll, args=(i,)) for i in range(30)]
        for t in pollers:
            t.start()
        wait_until(
            lambda: len(requests.get(server.url + "/uids", timeout=5).json()["ajax"]) == 30, 10
        )
        # every WebSocket still answers, and a plain route still answers, while all are held
        for i, ws in enumerate(sockets):
            ws.send(json.dumps([["test/echo", i], "e00001"]))
            assert json.loads(ws.recv()) == [{"echo": i}, "e00001"]
        assert len(requests.get(server.url + "/uids", timeout=5).json()["ws"]) == 60
        for i in range(0, 30, 2):
            requests.get(server.url + "/push", params={"uid": f"lp{i}", "data": i}, timeout=5)
        for t in pollers:
            t.join(20)
        pushed = [r for r in results if r != ["chsk/timeout", None]]
        timed_out = [r for r in results if r == ["chsk/timeout", None]]
        assert len(results) == 30
        assert sorted(int(r[0][0][1]) for r in pushed) == list(range(0, 30, 2))  # type: ignore[index]
        assert len(timed_out) == 15
        for ws in sockets:
            ws.close()
    finally:
        server.stop()


def test_gunicorn_shutdown_closes_every_taken_over_websocket():
    server = gunicorn_process("gthread", "--threads", "2", env=ENV)
    sockets = [ws_connect(server.url, f"s{i}") for i in range(10)]
    server.stop()
    for ws in sockets:
        ws.settimeout(10)
        try:
            opcode, data = ws.recv_data(control_frame=True)
        except (websocket.WebSocketConnectionClosedException, ConnectionError):
            continue  # the TCP connection went away: also closed
        assert opcode == 8 and int.from_bytes(data[:2], "big") == 1001


def test_werkzeug_request_threads_return_to_the_pool(no_thread_leaks):
    with running() as server:
        before = threading.active_count()
        peers = [WsPeer(server, uid=f"t{i}") for i in range(40)]
        for peer in peers:
            peer.recv()
        # the loop holds them; request threads have finished (allow the few that are ending)
        wait_until(lambda: threading.active_count() <= before + 12, 5)
        assert server.app.extensions["sente"].loop.connections == 40
        for peer in peers:
            peer.close()
        wait_until(lambda: server.app.extensions["sente"].loop.connections == 0, 5)


def test_a_peer_that_vanishes_is_reaped_by_keepalive():
    with running(ws_kalive_ms=400, ws_ping_timeout_ms=300) as server:
        raw = socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        request = (
            "GET /chsk?client-id=ghost&uid=ghost HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        raw.sendall(request.encode())
        assert raw.recv(4096).startswith(b"HTTP/1.1 101")
        server.recorder.wait_for(lambda m: m.id == "chsk/uidport-open" and m.data == "ghost")
        # the client never answers a ping: the server closes it and the uid leaves
        server.recorder.wait_for(lambda m: m.id == "chsk/uidport-close" and m.data == "ghost", 5)
        assert server.app.extensions["sente"].loop.connections == 0
        raw.close()


@pytest.mark.parametrize("kind", ["ws", "poll", "post"])
def test_held_requests_beyond_the_limit_get_503(kind):
    with running(connection_mode="thread", max_held_requests=2, lp_timeout_ms=3000) as server:
        held = [WsPeer(server, uid=f"h{i}") for i in range(2)]
        for peer in held:
            peer.recv()
        if kind == "ws":
            with pytest.raises(websocket.WebSocketBadStatusException) as info:
                WsPeer(server, uid="third")
            assert info.value.status_code == 503
        elif kind == "poll":
            params = {"client-id": "p", "uid": "p"}
            requests.get(server.chsk, params={**params, "handshake?": "1"}, timeout=5)
            response = requests.get(server.chsk, params=params, timeout=5)
            assert response.status_code == 503 and "busy" in response.text
        else:  # a POST that wants a reply waits for it on its thread
            ppstr = json.dumps([["test/echo", 1], "ajax"])
            response = requests.post(
                server.chsk, data={"client-id": "p", "ppstr": ppstr}, timeout=5
            )
            assert response.status_code == 503 and "busy" in response.text
        held[0].close()
        wait_until(lambda: server.app.extensions["sente"].held < 2, 5)
        third = WsPeer(server, uid="third")
        assert third.recv()[0][0] == "chsk/handshake"
        for peer in [*held, third]:
            peer.close()


def test_posts_waiting_for_a_reply_hold_no_thread():
    server = gunicorn_process("gthread", "--threads", "2", env={"SENTE_LP_TIMEOUT_MS": "3000"})
    try:
        chsk = server.url + "/chsk"
        results: list[object] = []

        def waiting_post(i: int) -> None:
            data = {"client-id": f"p{i}", "ppstr": json.dumps([["test/no-reply", i], "ajax"])}
            results.append(requests.post(chsk, data=data, timeout=10).json())

        posts = [threading.Thread(target=waiting_post, args=(i,)) for i in range(10)]
        for t in posts:
            t.start()
        # with 2 threads and 10 held POSTs, the server still answers at once
        for i in range(5):
            hs = requests.get(chsk, params={"client-id": f"h{i}", "handshake?": "1"}, timeout=2)
            assert hs.json()[0][0] == "chsk/handshake"
        for t in posts:
            t.join(10)
        assert results == [["chsk/timeout", None]] * 10
    finally:
        server.stop()


def test_a_message_in_many_tiny_fragments_costs_what_the_message_costs():
    with running() as server:
        raw = socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import AcceptConnection, Request, TextMessage

        ws = WSConnection(ConnectionType.CLIENT)
        raw.sendall(ws.send(Request(host="x", target="/chsk?client-id=frag&uid=frag")))
        events: list = []
        while not any(isinstance(e, AcceptConnection) for e in events):
            ws.receive_data(raw.recv(65536))
            events += list(ws.events())
        text = json.dumps([["test/echo", "ab" * 20000], "frag01"])
        pieces = [text[i : i + 2] for i in range(0, len(text), 2)]
        raw.sendall(
            b"".join(
                ws.send(TextMessage(p, message_finished=(n == len(pieces) - 1)))
                for n, p in enumerate(pieces)
            )
        )
        msg = server.recorder.wait_for(lambda m: m.id == "test/echo")
        assert msg.data == "ab" * 20000
        raw.close()
