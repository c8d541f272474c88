"""``examples/emitter.py``: a script, no web server, pushes through Redis to a uid's
WebSockets on a gunicorn with two workers."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
import requests
import websocket

from flask_sente import Emitter
from flask_sente.errors import InvalidEvent
from tests.support import ROOT, ServerProcess, free_port, gunicorn_process, wait_until


@pytest.fixture
def two_workers(redis_url: str) -> Iterator[ServerProcess]:
    # --reuse-port: each worker listens on the port itself, the kernel spreads connections
    server = gunicorn_process(
        "gthread",
        "-w",
        "2",
        "--threads",
        "8",
        "--reuse-port",
        env={"SENTE_MESSAGE_QUEUE": redis_url, "SENTE_LP_TIMEOUT_MS": "2000"},
        port=free_port(),
    )
    try:
        wait_until(lambda: all(healthy(server) for _ in range(4)), 20)
        yield server
    finally:
        server.stop()


def healthy(server: ServerProcess) -> bool:
    try:
        return bool(requests.get(server.url + "/health", timeout=2).json()["ok"])
    except (requests.RequestException, ValueError, KeyError):
        return False


def connected(
    server: ServerProcess, uid: str, *, client_id: str | None = None, last_seq: str | None = None
) -> websocket.WebSocket:
    url = f"ws{server.url[4:]}/chsk?client-id={client_id or uuid.uuid4()}&uid={uid}"
    if last_seq is not None:
        url += f"&fs-last-seq={last_seq}"
    ws = websocket.create_connection(url, timeout=10)
    assert json.loads(ws.recv())[0][0] == "chsk/handshake"
    return ws


def emitter(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "examples/emitter.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_event_reaches_every_websocket_of_the_uid(two_workers, redis_url):
    # six tabs: over two workers, almost surely on both; each must get the event either way
    tabs = [connected(two_workers, "carol") for _ in range(6)]
    wait_until(
        lambda: "carol" in requests.get(two_workers.url + "/uids", timeout=5).json()["ws"], 10
    )
    result = emitter(redis_url, "carol", '["report/ready", {"id": 42}]')
    assert result.returncode == 0, result.stderr
    for ws in tabs:
        assert json.loads(ws.recv()) == [[["report/ready", {"id": 42}]], None]
        ws.close()


def test_a_uid_connected_nowhere_exits_2(two_workers, redis_url):
    result = emitter(redis_url, "nobody", '["report/ready", {"id": 1}]')
    assert result.returncode == 2
    assert "not delivered" in result.stderr and "'nobody'" in result.stderr


def test_an_invalid_event_or_an_unreachable_redis_exits_1(redis_url):
    invalid = emitter(redis_url, "carol", '["no-namespace"]')
    assert invalid.returncode == 1 and invalid.stderr.startswith("InvalidEvent"), invalid.stderr
    nobody_listens = f"redis://127.0.0.1:{free_port()}/0"
    down = emitter(nobody_listens, "carol", '["report/ready", {}]')
    assert down.returncode == 1
    assert f"cannot reach Redis at {nobody_listens}" in down.stderr, down.stderr


def test_pairs_go_in_one_batch_in_order_and_a_missing_uid_exits_2(two_workers, redis_url):
    carol = [connected(two_workers, "carol") for _ in range(4)]
    dave = connected(two_workers, "dave")
    wait_until(lambda: {"carol", "dave"} <= set(uids(two_workers)), 10)
    result = emitter(
        redis_url,
        *("carol", '["a/b", 1]', "dave", '["a/b", 2]', "nobody", '["a/b", 3]'),
        *("carol", '["a/b", 4]'),
    )
    assert result.returncode == 2, result.stderr
    assert "'nobody'" in result.stderr and "'carol'" not in result.stderr
    for ws in carol:
        assert received(ws, 2) == [["a/b", 1], ["a/b", 4]]
    assert received(dave, 1) == [["a/b", 2]]
    for ws in [*carol, dave]:
        ws.close()


def test_a_batch_is_sent_on_leaving_the_block_and_may_close_a_uid(two_workers, redis_url):
    tabs = [connected(two_workers, "erin", client_id=f"tab-{n}") for n in range(4)]
    wait_until(lambda: "erin" in uids(two_workers), 10)
    with Emitter(redis_url) as sender:
        with pytest.raises(InvalidEvent), sender.batch() as bad:
            bad.send("erin", ["a/b", "never"])
            bad.send("erin", ["no-namespace"])  # refused at once: the batch is not sent
        assert bad.results is None
        with sender.batch() as batch:
            batch.send("erin", ["a/b", 1])
            batch.send("erin", ["chsk/close"])
            batch.send("erin", ["a/b", 2])
        assert batch.results == [True, True, True]
    for ws in tabs:
        assert_closed(ws)
    # both pushes are in each tab's mailbox, in order, and nothing of the refused batch
    back = connected(two_workers, "erin", client_id="tab-0", last_seq="-")
    assert received(back, 2) == [["a/b", 1], ["a/b", 2]]
    back.close()


def uids(server: ServerProcess) -> list[str]:
    return requests.get(server.url + "/uids", timeout=5).json()["ws"]


def received(ws: websocket.WebSocket, n: int) -> list:
    got: list = []
    while len(got) < n:
        got.extend(json.loads(ws.recv())[0])  # [[ev ...] nil] or [[ev ...] nil "epoch:n"]
    return got


def assert_closed(ws: websocket.WebSocket) -> None:
    """The server closes the socket: what follows is a close frame, or the end of it."""
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        for _ in range(10):  # a keepalive or two may come first; bounded
            if not ws.recv():
                raise websocket.WebSocketConnectionClosedException("closed")
