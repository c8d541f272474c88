"""The clients of ``benchmarks/soak.py``: threads churning channel sockets, both transports.

Each cycle is a new client-id on WebSocket or Ajax (half and half): it connects, makes a
request and checks the reply, asks for a push and waits for it, receives a push sent from
another request (``GET /push``), and goes away. uids repeat, so slots and mailboxes are
reused as well as made anew. Every request is bounded by ``TIMEOUT_S``.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests
import websocket

from flask_sente.packers import get_packer
from flask_sente.protocol import new_cb_uuid, pack, unpack

PACKER = get_packer("json")
TIMEOUT_S = 10.0
UIDS_PER_CLIENT = 5


class CycleError(Exception):
    pass


def events_of(value: Any) -> list[Any]:
    """The events of a push batch (or of a handshake / timeout, which has none)."""
    if isinstance(value, list) and value and all(isinstance(e, list) for e in value):
        return value
    return []


def ws_cycle(url: str, http: requests.Session, uid: str) -> None:
    client_id = str(uuid.uuid4())
    ws = websocket.create_connection(
        f"{url.replace('http', 'ws', 1)}/chsk?client-id={client_id}&uid={uid}", timeout=TIMEOUT_S
    )
    try:

        def recv_until(want: Any) -> Any:
            deadline = time.monotonic() + TIMEOUT_S
            while time.monotonic() < deadline:
                value, cb = unpack(PACKER, ws.recv())
                found = want(value, cb)
                if found is not None:
                    return found
            raise CycleError("ws: nothing expected within the timeout")

        recv_until(lambda v, cb: v if isinstance(v, list) and v[:1] == ["chsk/handshake"] else None)
        cb = new_cb_uuid()
        token = uuid.uuid4().hex
        ws.send(pack(PACKER, ["test/echo", token], cb))
        reply = recv_until(lambda v, c: v if c == cb else None)
        if reply != {"echo": token}:
            raise CycleError(f"ws: wrong reply {reply!r}")
        ws.send(pack(PACKER, ["test/push-me", token], None))
        pushed = ["test/pushed", {"got": token}]
        recv_until(lambda v, c: True if pushed in events_of(v) else None)
        oob = uuid.uuid4().hex
        http.get(f"{url}/push", params={"uid": uid, "data": oob}, timeout=TIMEOUT_S)
        recv_until(lambda v, c: True if ["test/oob-push", oob] in events_of(v) else None)
    finally:
        with contextlib.suppress(Exception):
            ws.close()


def ajax_cycle(url: str, http: requests.Session, uid: str) -> None:
    client_id = str(uuid.uuid4())
    chsk = f"{url}/chsk"

    def get(**extra: str) -> Any:
        params = {"client-id": client_id, "uid": uid, "udt": str(int(time.time() * 1000))}
        response = http.get(chsk, params={**params, **extra}, timeout=TIMEOUT_S)
        if response.status_code != 200:
            raise CycleError(f"ajax GET: {response.status_code} {response.text[:80]}")
        return unpack(PACKER, response.text)[0]

    def post(event: Any, cb: Any) -> Any:
        data = {"client-id": client_id, "ppstr": pack(PACKER, event, cb)}
        response = http.post(chsk, data=data, params={"uid": uid}, timeout=TIMEOUT_S)
        if response.status_code != 200:
            raise CycleError(f"ajax POST: {response.status_code} {response.text[:80]}")
        return unpack(PACKER, response.text)[0]

    def poll_until(wanted: Any) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            if wanted in events_of(get()):
                return
        raise CycleError(f"ajax: {wanted!r} not received")

    get(**{"handshake?": "true"})
    token = uuid.uuid4().hex
    if post(["test/echo", token], "ajax-cb") != {"echo": token}:
        raise CycleError("ajax: wrong reply")
    post(["test/push-me", token], None)
    poll_until(["test/pushed", {"got": token}])
    oob = uuid.uuid4().hex
    http.get(f"{url}/push", params={"uid": uid, "data": oob}, timeout=TIMEOUT_S)
    poll_until(["test/oob-push", oob])


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    cycles: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def ok(self, kind: str) -> None:
        with self.lock:
            self.cycles[kind] += 1

    def failed(self, kind: str, exc: BaseException) -> None:
        with self.lock:
            self.errors[f"{kind}: {type(exc).__name__}: {str(exc)[:60]}"] += 1


def client_thread(n: int, url: str, stop: threading.Event, stats: Stats) -> None:
    rng = random.Random(n)
    cycle = 0
    while not stop.is_set():
        kind = "ws" if rng.random() < 0.5 else "ajax"
        uid = f"soak-{n}-{cycle % UIDS_PER_CLIENT}"
        # a new tab each cycle: its HTTP connections, like its client-id, are its own (and
        # none sits idle between cycles, racing the server's keep-alive timeout)
        with requests.Session() as http:
            try:
                (ws_cycle if kind == "ws" else ajax_cycle)(url, http, uid)
            except Exception as exc:
                stats.failed(kind, exc)
                # a refused or reset connection: back off a little, but stay within the run
                stop.wait(0.2)
            else:
                stats.ok(kind)
        cycle += 1
