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


def connected(server: ServerProcess, uid: str) -> websocket.WebSocket:
    url = f"ws{server.url[4:]}/chsk?client-id={uuid.uuid4()}&uid={uid}"
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
