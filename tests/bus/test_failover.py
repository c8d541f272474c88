"""Broker failover: the Redis master dies while pushes flow through two gunicorn workers.

A master, its replica and three sentinels run as real processes; the workers reach them
with ``message_queue="redis+sentinel://..."``. Pushes go to ``/push`` on either worker
all along. Half the clients stay connected; the other half leave when the master dies and
come back after the failover with their ``fs-last-seq``. Whatever happens, no push is
delivered twice, and each one is delivered or reported through ``on_undelivered``. (Order
is not promised across the failover: a push whose answer was lost in the crash is found in
the new master and delivered after pushes that went straight to local connections.)
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import websocket

from tests.bus.sentinels import SentinelCluster
from tests.support import ServerProcess, free_port, wait_until

pytestmark = pytest.mark.slow

UIDS = [f"f{n}" for n in range(8)]
STAYERS, WANDERERS = UIDS[:4], UIDS[4:]


class Client:
    """One WebSocket client reporting ``fs-last-seq``; a thread reads its pushes."""

    def __init__(self, base: str, uid: str) -> None:
        self.base, self.uid, self.client_id = base, uid, str(uuid.uuid4())
        self.got: list[int] = []
        self.tag = "-"
        #: (monotonic time, push numbers) of each frame numbered by the broker
        self.numbered: list[tuple[float, list[int]]] = []
        self.lock = threading.Lock()
        self._ws: websocket.WebSocket | None = None
        self._reader: threading.Thread | None = None
        self.connect()

    def connect(self) -> None:
        """(Re)connect, reporting the last tag seen."""
        url = (
            f"ws{self.base[4:]}/chsk?client-id={self.client_id}&uid={self.uid}"
            f"&fs-last-seq={self.tag}"
        )
        ws = websocket.create_connection(url, timeout=10)
        assert json.loads(ws.recv())[0][0] == "chsk/handshake"
        ws.settimeout(0.5)
        self._ws = ws
        self._reader = threading.Thread(target=self._read, args=(ws,), daemon=True)
        self._reader.start()

    def _read(self, ws: websocket.WebSocket) -> None:
        while True:
            try:
                frame = ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketException, OSError):
                return
            if not frame:
                return
            message = json.loads(frame)
            numbers = [int(ev[1]) for ev in message[0] if ev[0] == "test/oob-push"]
            with self.lock:
                self.got.extend(numbers)
                if len(message) > 2 and message[2]:
                    self.tag = message[2]
                    self.numbered.append((time.monotonic(), numbers))

    def leave(self) -> None:
        assert self._ws is not None and self._reader is not None
        self._ws.close()
        self._reader.join(5)


@contextlib.contextmanager
def two_workers(url: str, log: Path) -> Iterator[ServerProcess]:
    port = free_port()
    argv = ["python3", "-m", "gunicorn", "-k", "gthread", "-w", "2", "--threads", "16"]
    argv += ["--reuse-port", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "3"]
    server = ServerProcess(
        [*argv, "tests.bus.failover_app:create_app()"],
        ready=r"(Booting worker)",
        env={"SENTE_MESSAGE_QUEUE": url, "SENTE_UNDELIVERED_LOG": str(log)},
        url=f"http://127.0.0.1:{port}",
    )
    try:
        wait_until(lambda: all(_ok(server) for _ in range(6)), 30)
        yield server
    finally:
        server.stop()


def _ok(server: ServerProcess) -> bool:
    try:
        return bool(requests.get(server.url + "/health", timeout=2).json()["ok"])
    except (requests.RequestException, ValueError, KeyError):
        return False


class Pusher:
    """Pushes 0, 1, 2... round the uids through ``/push`` until told to stop."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.pushed: list[tuple[str, int]] = []
        self.stop = threading.Event()
        self.http = requests.Session()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        n = 0
        while not self.stop.is_set() and n < 20_000:
            uid = UIDS[n % len(UIDS)]
            answer = self.http.get(self.base + "/push", params={"uid": uid, "data": n}, timeout=10)
            assert answer.status_code == 200, answer.text
            self.pushed.append((uid, n))
            n += 1
            self.stop.wait(0.004)  # pacing, about 150 pushes a second at most

    def count(self) -> int:
        return len(self.pushed)


def test_delivery_resumes_after_the_master_dies_and_nothing_arrives_twice():
    cluster = SentinelCluster()
    log = Path(tempfile.mkdtemp(prefix="sente-failover-")) / "undelivered.jsonl"
    try:
        with two_workers(cluster.url, log) as server:
            clients = {uid: Client(server.url, uid) for uid in UIDS}
            pusher = Pusher(server.url)
            try:
                wait_until(lambda: all(len(c.numbered) >= 3 for c in clients.values()), 20)
                for uid in WANDERERS:
                    clients[uid].leave()
                pushed_before_kill = pusher.count()
                old_master = cluster.master_address()
                killed_at = time.monotonic()
                cluster.kill_master()

                def resumed() -> float | None:
                    for uid in STAYERS:
                        with clients[uid].lock:
                            for at, numbers in clients[uid].numbered:
                                if at > killed_at and any(n >= pushed_before_kill for n in numbers):
                                    return at
                    return None

                resumed_at = wait_until(resumed, 30, interval=0.02)
                assert cluster.master_address() != old_master
                # pushes made while the wanderers are away wait in their mailboxes
                pushed_at_resume = pusher.count()
                wait_until(lambda: pusher.count() >= pushed_at_resume + 40, 20)
                pushed_while_away = pusher.pushed[pushed_at_resume : pusher.count()]
                stored_while_away = {
                    uid: {n for u, n in pushed_while_away if u == uid} for uid in WANDERERS
                }
                for uid in WANDERERS:
                    clients[uid].connect()
                wait_until(
                    lambda: all(stored_while_away[u] <= set(clients[u].got) for u in WANDERERS),
                    20,
                )
                mark = pusher.count()
                wait_until(lambda: pusher.count() >= mark + 40, 20)
            finally:
                pusher.stop.set()
                pusher.thread.join(15)
            pushed = set(pusher.pushed)

            def reported() -> set[tuple[str, int]]:
                if not log.exists():
                    return set()
                lines = [json.loads(line) for line in log.read_text().splitlines()]
                return {(r["uid"], int(ev[1])) for r in lines for ev in r["events"]}

            def delivered() -> list[tuple[str, int]]:
                return [(uid, n) for uid, c in clients.items() for n in list(c.got)]

            # every push ends up delivered or reported (the reports of unsure pushes and
            # the last flushes may come a little after the last push)
            wait_until(lambda: pushed <= set(delivered()) | reported(), 20)
            got, lost = delivered(), reported()
            assert len(got) == len(set(got)), "a push was delivered twice"
            assert not set(got) & lost, "a push was both delivered and reported lost"
            assert lost, "the gap lost nothing: the master did not die while pushes flowed"
            # pushed after the failover while their clients were away, all fetched on return
            recovered = sum(len(stored) for stored in stored_while_away.values())
            assert recovered >= 15
            gap = resumed_at - killed_at
            assert gap < 15
            reasons: dict[str, int] = {}
            for line in log.read_text().splitlines():
                why = json.loads(line)["why"]
                reasons[why] = reasons.get(why, 0) + len(json.loads(line)["events"])
            print(
                f"\nfailover: gap {gap:.2f} s (master killed -> first numbered push delivered), "
                f"{len(pushed)} pushes, {len(lost)} reported lost, {recovered} recovered "
                f"through fs-last-seq, {len(got)} delivered, 0 twice; lost because: {reasons}"
            )
    finally:
        cluster.stop()
