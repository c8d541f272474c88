"""Soak: does the server's memory stay flat under churned connections? (run by hand, not a test)

    python benchmarks/soak.py [--minutes 10] [--clients 150] [--max-growth-mib 16]

Starts the conformance app under gunicorn (one gthread worker) on 127.0.0.1, then for a
bounded time runs ``--clients`` client threads, each churning connections: a WebSocket or an
Ajax client (half and half) with a new client-id connects, makes a request and waits for its
reply, asks for a push and waits for it, receives a push sent from another request
(``GET /push``), and disconnects. uids repeat, so slots are reused as well as made anew.

Every ``--interval`` seconds it samples the worker's resident memory (``VmRSS`` of the
gunicorn master's child process) and prints it. At the end it prints the RSS at start, after
warm-up and at the end, and the least-squares slope after warm-up and over its second half
(a one-off step raises the first; a steady leak raises both). It exits 1 when RSS grew more
than ``--max-growth-mib`` after warm-up, when the worker died or was replaced, or when more
than ``--max-error-rate`` of the cycles failed. Every request is bounded by a timeout, and
the gunicorn process group is stopped on the way out, whatever happens.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import websocket

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flask_sente.packers import get_packer  # noqa: E402
from flask_sente.protocol import new_cb_uuid, pack, unpack  # noqa: E402

PACKER = get_packer("json")
TIMEOUT_S = 10.0
UIDS_PER_CLIENT = 5


# ---------------------------------------------------------------------------- the server


class Gunicorn:
    """The conformance app under gunicorn -k gthread, in its own process group."""

    def __init__(self, threads: int) -> None:
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "SENTE_LP_TIMEOUT_MS": "5000",
        }
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "-k",
            "gthread",
            "-w",
            "1",
            "--threads",
            str(threads),
            "-b",
            "127.0.0.1:0",
            "--graceful-timeout",
            "3",
            "--log-level",
            "info",
            "examples.conformance:create_app()",
        ]
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log_tail: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("gunicorn did not start:\n" + "".join(self.log_tail))
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            match = re.search(r"Listening at: (http://\S+)", line)
            if match:
                self.url = match.group(1).rstrip("/")
                break
        self.worker_pid = wait_for(lambda: single_child(self.proc.pid), 30, "gunicorn worker")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log_tail = [*self.log_tail[-200:], line]
            self.lines.put(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def children(pid: int) -> list[int]:
    """The child processes of ``pid``, from /proc."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    with contextlib.suppress(OSError):
        return [int(p) for p in path.read_text().split()]
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def single_child(pid: int) -> int | None:
    kids = children(pid)
    return kids[0] if len(kids) == 1 else None


def rss_kib(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise RuntimeError(f"no {what} within {timeout} s")


# ---------------------------------------------------------------------------- the clients


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


# ---------------------------------------------------------------------------- the run


def slope_mib_per_min(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of RSS over time, in MiB per minute."""
    if len(samples) < 2:
        return 0.0
    xs = [t / 60 for t, _ in samples]
    ys = [kib / 1024 for _, kib in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def mean_mib(samples: list[tuple[float, int]]) -> float:
    return sum(kib for _, kib in samples) / len(samples) / 1024


def interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the run")
    parser.add_argument("--warmup-minutes", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=150, help="concurrent client threads")
    parser.add_argument("--threads", type=int, default=64, help="gunicorn --threads")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--max-growth-mib", type=float, default=16.0)
    parser.add_argument("--max-error-rate", type=float, default=0.01)
    args = parser.parse_args(argv)
    if not 0 < args.clients <= 400:
        parser.error("--clients must be between 1 and 400")
    warmup_s = min(args.warmup_minutes * 60, args.minutes * 60 / 2)

    # a SIGTERM (or SIGINT) ends the run early, through the same clean-up
    signal.signal(signal.SIGTERM, interrupt)
    server = Gunicorn(args.threads)
    stop = threading.Event()
    stats = Stats()
    threads: list[threading.Thread] = []
    samples: list[tuple[float, int]] = []
    failure: str | None = None
    try:
        print(f"gunicorn at {server.url}, worker pid {server.worker_pid}", flush=True)
        start = time.monotonic()
        for n in range(args.clients):
            thread = threading.Thread(
                target=client_thread, args=(n, server.url, stop, stats), daemon=True
            )
            thread.start()
            threads.append(thread)
        print(f"{'t (s)':>7} {'RSS (MiB)':>10} {'cycles':>8} {'errors':>7}", flush=True)
        end = start + args.minutes * 60
        while True:
            now = time.monotonic()
            kib = rss_kib(server.worker_pid)
            if kib is None or single_child(server.proc.pid) != server.worker_pid:
                failure = "the gunicorn worker died or was replaced"
                break
            samples.append((now - start, kib))
            with stats.lock:
                done, errors = sum(stats.cycles.values()), sum(stats.errors.values())
            print(f"{now - start:7.0f} {kib / 1024:10.1f} {done:8d} {errors:7d}", flush=True)
            if now >= end:
                break
            time.sleep(min(args.interval, max(0.0, end - time.monotonic())))
    except KeyboardInterrupt:
        failure = "interrupted"
    finally:
        stop.set()
        for thread in threads:
            thread.join(TIMEOUT_S * 3)
        server.stop()

    after = [s for s in samples if s[0] >= warmup_s]
    print()
    print(f"cycles: {dict(stats.cycles)}")
    for what, count in stats.errors.most_common(10):
        print(f"  error x{count}: {what}")
    if failure is not None or len(after) < 4:
        print(f"FAIL: {failure or f'too few samples after warm-up ({len(after)}); run longer'}")
        return 1
    start_mib = samples[0][1] / 1024
    warm_mib, end_mib = mean_mib(after[:3]), mean_mib(after[-3:])
    growth = end_mib - warm_mib
    slope = slope_mib_per_min(after)
    # a step (an allocator arena, a high-water mark) raises the slope once; a leak keeps
    # raising it, so the second half tells them apart
    late_slope = slope_mib_per_min(after[len(after) // 2 :])
    total = sum(stats.cycles.values()) + sum(stats.errors.values())
    error_rate = sum(stats.errors.values()) / total if total else 1.0
    print(
        f"RSS: start {start_mib:.1f} MiB, after warm-up ({warmup_s / 60:.1f} min) "
        f"{warm_mib:.1f} MiB, end {end_mib:.1f} MiB; growth after warm-up {growth:+.1f} MiB, "
        f"slope {slope:+.3f} MiB/min ({late_slope:+.3f} over the second half); "
        f"{total} cycles, error rate {error_rate:.2%}"
    )
    if failure is None and growth > args.max_growth_mib:
        failure = f"RSS grew {growth:.1f} MiB after warm-up (limit {args.max_growth_mib} MiB)"
    if failure is None and error_rate > args.max_error_rate:
        failure = f"{error_rate:.2%} of the cycles failed (limit {args.max_error_rate:.2%})"
    if failure is not None:
        print(f"FAIL: {failure}")
        return 1
    print("OK: memory flat after warm-up")
    return 0


if __name__ == "__main__":
    sys.exit(main())
