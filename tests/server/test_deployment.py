"""The core scenarios as real server processes: Werkzeug, gunicorn gthread, gunicorn gevent."""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Iterator

import pytest
import requests
import websocket

from tests.support import ServerProcess, conformance_process, gunicorn_process

ENV = {"SENTE_LP_TIMEOUT_MS": "1500", "SENTE_CSRF_TOKEN": "tok"}


@contextlib.contextmanager
def deployed(mode: str) -> Iterator[ServerProcess]:
    if mode == "werkzeug":
        server = conformance_process("--csrf-token", "tok", "--lp-timeout-ms", "1500")
    elif mode == "gthread":
        server = gunicorn_process("gthread", "--threads", "32", env=ENV)
    else:
        server = gunicorn_process("gevent", "--worker-connections", "2000", env=ENV)
    try:
        yield server
    finally:
        server.stop()


MODES = ["werkzeug", "gthread", "gevent"]


def ws_connect(base: str, uid: str) -> websocket.WebSocket:
    url = "ws" + base[4:] + f"/chsk?client-id={uuid.uuid4()}&csrf-token=tok&uid={uid}"
    ws = websocket.create_connection(url, timeout=10)
    handshake, cb = json.loads(ws.recv())
    assert handshake == ["chsk/handshake", [uid, None, {"hello": "world", "n": 1}]] and cb is None
    return ws


@pytest.mark.parametrize("mode", MODES)
def test_websocket_core_scenario(mode):
    with deployed(mode) as server:
        ws = ws_connect(server.url, "alice")
        ws.send(json.dumps([["test/echo", {"a": 1}], "abc123"]))
        assert json.loads(ws.recv()) == [{"echo": {"a": 1}}, "abc123"]
        ws.send(json.dumps([["test/push-3"], None]))
        assert json.loads(ws.recv()) == [
            [["test/pushed", 0], ["test/pushed", 1], ["test/pushed", 2]],
            None,
        ]
        assert (
            requests.get(server.url + "/push", params={"uid": "alice", "data": "x"}, timeout=5).text
            == "ok"
        )
        assert json.loads(ws.recv()) == [[["test/oob-push", "x"]], None]
        assert requests.get(server.url + "/uids", timeout=5).json()["ws"] == ["alice"]
        ws.send(json.dumps([["test/close-me"], None]))
        opcode, data = ws.recv_data(control_frame=True)
        assert opcode == 8 and int.from_bytes(data[:2], "big") == 1000
        ws.close()


@pytest.mark.parametrize("mode", MODES)
def test_ajax_core_scenario(mode):
    with deployed(mode) as server:
        http = requests.Session()
        http.headers["X-CSRF-Token"] = "tok"
        chsk = server.url + "/chsk"
        params = {"client-id": "cid-ajax", "uid": "bob"}
        hs = http.get(chsk, params={**params, "handshake?": "1"}, timeout=5).json()
        assert hs[0][0] == "chsk/handshake"
        reply = http.post(
            chsk,
            params={"uid": "bob"},
            timeout=5,
            data={"client-id": "cid-ajax", "ppstr": json.dumps([["test/echo", 2], "ajax"])},
        )
        assert reply.json() == [{"echo": 2}, None]
        result: list = []
        poller = threading.Thread(
            target=lambda: result.append(http.get(chsk, params=params, timeout=10))
        )
        poller.start()
        http.post(
            chsk,
            params={"uid": "bob"},
            timeout=5,
            data={"client-id": "other", "ppstr": json.dumps([["test/push-3"], None])},
        )
        poller.join(10)
        got = result[0].json()
        if got == ["chsk/timeout", None]:  # the push raced ahead of the poll: it waits for the next
            got = http.get(chsk, params=params, timeout=10).json()
        assert got == [[["test/pushed", 0], ["test/pushed", 1], ["test/pushed", 2]], None]
        assert (
            http.get(
                chsk, params={"client-id": "x"}, headers={"X-CSRF-Token": "no"}, timeout=5
            ).status_code
            == 403
        )


def test_gevent_worker_holds_many_connections_at_once():
    with deployed("gevent") as server:
        sockets = [ws_connect(server.url, f"user{i % 50}") for i in range(300)]
        assert len(requests.get(server.url + "/uids", timeout=10).json()["ws"]) == 50
        for i, ws in enumerate(sockets[::30]):
            ws.send(json.dumps([["test/echo", i], "e"]))
            assert json.loads(ws.recv()) == [{"echo": i}, "e"]
        for ws in sockets:
            ws.close()
