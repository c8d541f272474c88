"""Many workers, two "machines", one Redis: pushes, presence and Ajax without stickiness."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import uuid
from collections.abc import Iterator

import pytest
import requests
import websocket

from flask_sente import Emitter
from tests.support import (
    ServerProcess,
    established_connections,
    free_port,
    gunicorn_process,
    wait_until,
)


def cluster_env(url: str) -> dict[str, str]:
    return {"SENTE_MESSAGE_QUEUE": url, "SENTE_LP_TIMEOUT_MS": "2000"}


@contextlib.contextmanager
def gunicorn(worker: str, url: str, workers: int = 4) -> Iterator[ServerProcess]:
    # --reuse-port: the kernel spreads connections over the workers
    extra = ["--reuse-port", *(["--threads", "16"] if worker == "gthread" else [])]
    server = gunicorn_process(
        worker, "-w", str(workers), *extra, env=cluster_env(url), port=free_port()
    )
    try:
        wait_until(lambda: _health(server).get("ok"), 20)
        yield server
    finally:
        server.stop()


def _health(server: ServerProcess) -> dict:
    try:
        return requests.get(server.url + "/health", timeout=2).json()
    except (requests.RequestException, ValueError):
        return {}


def ws_client(base: str, uid: str, last_seq: str = "-") -> websocket.WebSocket:
    url = "ws" + base[4:] + f"/chsk?client-id={uuid.uuid4()}&uid={uid}&fs-last-seq={last_seq}"
    ws = websocket.create_connection(url, timeout=10)
    assert json.loads(ws.recv())[0][0] == "chsk/handshake"
    return ws


def collect(ws: websocket.WebSocket, n: int) -> list:
    got: list = []
    while len(got) < n:
        batch = json.loads(ws.recv())
        got.extend(ev[1] for ev in batch[0])
    return got


@pytest.mark.parametrize("worker", ["gthread", "gevent"])
def test_pushes_from_every_worker_reach_clients_on_every_worker(redis_url, worker):
    with gunicorn(worker, redis_url) as server:
        sockets = {f"u{i}": ws_client(server.url, f"u{i}") for i in range(12)}
        wait_until(
            lambda: len(requests.get(server.url + "/uids", timeout=5).json()["ws"]) == 12, 10
        )
        # /push lands on whichever worker accepts it: over 12 x 10 requests, on all of them
        for n in range(10):
            for uid in sockets:
                requests.get(server.url + "/push", params={"uid": uid, "data": n}, timeout=5)
        for uid, ws in sockets.items():
            assert collect(ws, 10) == [str(n) for n in range(10)], uid
            ws.close()


def test_ajax_alternating_between_two_machines_gets_every_push_once_in_order(redis_url):
    with gunicorn("gthread", redis_url, 2) as one, gunicorn("gthread", redis_url, 2) as two:
        machines = [one.url, two.url]
        http = requests.Session()
        cid = str(uuid.uuid4())
        params = {"client-id": cid, "uid": "roamer"}
        hs = http.get(
            machines[0] + "/chsk",
            params={**params, "handshake?": "1", "fs-last-seq": "-"},
            timeout=5,
        )
        assert hs.json()[0][0] == "chsk/handshake"
        got: list[str] = []
        last = "-"
        stop = threading.Event()

        def pushes() -> None:
            for n in range(60):
                requests.get(
                    machines[n % 2] + "/push", params={"uid": "roamer", "data": n}, timeout=5
                )
            stop.set()

        pusher = threading.Thread(target=pushes)
        pusher.start()
        polls = 0
        while (not stop.is_set() or len(got) < 60) and polls < 200:
            base = machines[polls % 2]
            polls += 1
            answer = http.get(
                base + "/chsk", params={**params, "fs-last-seq": last}, timeout=10
            ).json()
            assert answer[0] != "chsk/handshake" and answer[0][0] != "chsk/handshake", answer
            if answer[0] == "chsk/timeout":
                continue
            epoch, n = answer[2].split(":")
            old_epoch, _, old_n = last.partition(":")
            first = int(n) - len(answer[0]) + 1
            for i, ev in enumerate(answer[0]):
                if epoch != old_epoch or first + i > int(old_n or 0):
                    got.append(ev[1])
            last = answer[2]
        pusher.join(30)
        assert got == [str(n) for n in range(60)]


def test_uidport_events_fire_once_per_cluster(redis_url, redis_server):
    with gunicorn("gthread", redis_url) as server:
        tabs = [ws_client(server.url, "alice") for _ in range(8)]  # spread over the workers
        record = redis_server.client()
        wait_until(lambda: record.llen("conformance:uidport") >= 1, 10)
        for ws in tabs:
            ws.close()
        wait_until(lambda: record.llen("conformance:uidport") >= 2, 15)
        events = [json.loads(x) for x in record.lrange("conformance:uidport", 0, -1)]
        assert events == [["chsk/uidport-open", "alice"], ["chsk/uidport-close", "alice"]]
        assert requests.get(server.url + "/uids", timeout=5).json()["any"] == []


def test_the_emitter_reaches_clients_on_every_worker(redis_url):
    with gunicorn("gthread", redis_url) as server, Emitter(redis_url) as emitter:
        sockets = [ws_client(server.url, "bob") for _ in range(6)]
        wait_until(lambda: "bob" in emitter.connected_uids["any"], 10)
        for n in range(5):
            assert emitter.send("bob", ["emit/x", n]) is True
        for ws in sockets:
            assert collect(ws, 5) == list(range(5))
            ws.close()
        assert emitter.send("nobody", ["emit/x", 0]) is False


def test_a_killed_worker_and_a_redis_restart_lose_nothing_for_good(redis_url, redis_server):
    with gunicorn("gthread", redis_url) as server:
        sockets = {f"k{i}": ws_client(server.url, f"k{i}") for i in range(16)}
        workers = [int(p) for p in os.popen(f"pgrep -P {server.proc.pid}").read().split()]
        assert len(workers) == 4
        port = int(server.url.rsplit(":", 1)[1])
        held = established_connections(workers, port)
        victim = max(workers, key=lambda pid: held[pid])  # --reuse-port may leave one idle
        assert held[victim] > 0
        os.kill(victim, signal.SIGKILL)  # its clients lose their connection, its uids go stale
        alive = []
        for uid, ws in sockets.items():
            try:
                ws.send(json.dumps([["test/echo", uid], "e00001"]))
                assert json.loads(ws.recv()) == [{"echo": uid}, "e00001"]
                alive.append(uid)
            except (websocket.WebSocketException, ConnectionError, OSError):
                ws.close()
        assert len(alive) < len(sockets)  # the killed worker held some
        # the stale uids of the dead worker leave within the documented bound
        wait_until(
            lambda: (
                sorted(requests.get(server.url + "/uids", timeout=5).json()["any"]) == sorted(alive)
            ),
            25,
        )
        survivor = ws_client(server.url, "survivor")
        redis_server.restart()  # the broker loses everything and comes back
        wait_until(lambda: all(_health(server).get("ok") for _ in range(8)), 20)
        # a client connected before the restart still gets pushes, and is still "connected"
        wait_until(
            lambda: "survivor" in requests.get(server.url + "/uids", timeout=5).json()["any"], 10
        )
        requests.get(server.url + "/push", params={"uid": "survivor", "data": "y"}, timeout=5)
        assert collect(survivor, 1) == ["y"]
        again = ws_client(server.url, "after-restart")
        requests.get(server.url + "/push", params={"uid": "after-restart", "data": "x"}, timeout=5)
        assert collect(again, 1) == ["x"]
        for ws in [survivor, again, *sockets.values()]:
            ws.close()
