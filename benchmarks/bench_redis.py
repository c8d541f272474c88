"""Scale-out through Redis: flask_sente beside Flask-SocketIO, 4 gevent workers, one command.

For each framework it starts one redis-server (a free port of 127.0.0.1, shared by both,
emptied between runs) and the framework under ``gunicorn -k gevent -w 4 --reuse-port``
with Redis as its message queue: flask_sente's ``benchmarks/sente_app.py`` with
``SENTE_MESSAGE_QUEUE``, Flask-SocketIO's ``benchmarks/socketio_app.py`` with
``BENCH_MESSAGE_QUEUE`` (``SocketIO(app, message_queue=...)``, async mode gevent). Then:

* one asyncio process (``receive``) opens 1,000 WebSocket clients, users ``bench-u0`` to
  ``bench-u999``, which the kernel spreads over the 4 workers (counted with ``ss``);
* ``--pushers`` processes (``push``) push ``--events`` events to each user from outside the
  web servers: ``flask_sente.Emitter(redis_url).send_many(...)`` in batches of ``--batch``
  (100; ``--batch 1`` sends each with ``Emitter.send``), and for Flask-SocketIO a
  ``SocketIO(message_queue=redis_url).emit(..., to=uid)`` per event (it has no batch call),
  each uid being a room its connections join. Every event carries ``time.time()`` at its
  send;
* the receiver counts the events and their latency, from that send to their receipt.

First each framework runs flat out (``--repeat`` times, alternating which goes first; the
medians count). Then both run again at a fixed offered load, half of flask_sente's median
peak, the pushers pacing their sends, for the latency that a cluster not saturated shows
(the target: p99 at most 50 ms).

Delivered events per second are the events received over the time from the first send to
the last receipt. Both frameworks push the same events from the same number of processes
on the same machine; the table also shows where the CPU went (the receiver, the pushers,
the 4 workers together, redis-server, kernel interrupts, everything else on the machine),
and the CPU each part spent per delivered event, which other jobs on the machine disturb
less than the rates. Every process started here is killed, its whole process group, on the
way out, error or not; the whole takes about ten minutes, ``--quick`` (200 clients, 20
events, 4 pushers, once) about one::

    python benchmarks/bench_redis.py [--quick] [--clients 1000] [--events 50] [--pushers 8]

The helpers of ``bench_server.py`` (processes, servers, CPU accounting) and the protocol
clients of ``loadgen.py`` do the work; this file only adds the cluster, the pushers and
the receiver.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import queue
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench_server import (
    APPS,
    CLK_TCK,
    BenchError,
    Processes,
    Server,
    judged,
    log,
    machine_busy_s,
    ratio,
    source_version,
    wait_for_quiet,
)
from loadgen import close_all, cpu_seconds, emit, open_all, percentile
from websockets.exceptions import ConnectionClosed

#: The servers with a Redis message queue (the bare flask-sock server has none).
SERVERS = ("flask_sente", "Flask-SocketIO")

THIS = Path(__file__).resolve()
WORKERS = 4


# ---------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def flags(**options: object) -> list[str]:
    return [word for key, value in options.items() for word in (f"--{key}", str(value))]


def redis_parser() -> str:
    from redis.utils import HIREDIS_AVAILABLE

    return "with hiredis" if HIREDIS_AVAILABLE else "pure Python (no hiredis)"


def kernel_irq_s() -> float:
    """CPU seconds the machine spent in interrupts so far (much of the loopback traffic is
    processed there), which no process is charged for."""
    ticks = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return (int(ticks[6]) + int(ticks[7])) / CLK_TCK


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class RedisServer:
    """redis-server on a free port, no persistence; in its own process group."""

    def __init__(self, procs: Processes) -> None:
        import redis

        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = procs.start(
            ["redis-server", *flags(port=self.port, bind="127.0.0.1", save="", appendonly="no")],
            cpus=set(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise BenchError("redis-server did not start") from None
                time.sleep(0.05)

    def cpu_s(self) -> float:
        return proc_cpu_s(self.proc.pid)


class Cluster(Server):
    """gunicorn gevent with ``WORKERS`` workers, each with its own listening socket
    (``--reuse-port``) on one port, Redis as the message queue."""

    def __init__(self, procs: Processes, name: str, redis_url: str) -> None:
        self.name = name
        self.procs = procs
        self.port = free_port()
        app, _ = APPS[name]
        argv = [sys.executable, "-m", "gunicorn", "-k", "gevent", "-w", str(WORKERS)]
        argv += ["--reuse-port", "--worker-connections", "10000"]
        argv += ["--bind", f"127.0.0.1:{self.port}", "--log-level", "info"]
        argv += ["--graceful-timeout", "3", "--no-control-socket", app]
        env = {"BENCH_ASYNC_MODE": "gevent"}
        env["SENTE_MESSAGE_QUEUE" if name == "flask_sente" else "BENCH_MESSAGE_QUEUE"] = redis_url
        self.proc = procs.start(
            argv, cpus=set(), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self.output: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.port}"
        self.worker_pids = [
            int(self._wait_for(r"Booting worker with pid: (\d+)")) for _ in range(WORKERS)
        ]
        self._wait_until_serving()

    def cpu_s(self) -> float:
        return sum(proc_cpu_s(pid) for pid in self.worker_pids)

    def spread(self) -> list[int]:
        """Established connections on the server port, per worker (from ``ss``)."""
        out = subprocess.run(
            ["ss", "-Htnp", "state", "established", f"( sport = :{self.port} )"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        counts = collections.Counter(int(pid) for pid in re.findall(r"pid=(\d+)", out))
        return [counts[pid] for pid in self.worker_pids]


class Line:
    """A subprocess speaking one JSON line per step on stdout, driven on stdin."""

    def __init__(self, procs: Processes, argv: list[str]) -> None:
        self.proc = procs.start(
            [sys.executable, str(THIS), *argv],
            cpus=set(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._answers: collections.deque[str] = collections.deque()
        self._ready = threading.Condition()
        self.errors: collections.deque[str] = collections.deque(maxlen=50)
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_errors, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._ready:
                self._answers.append(line)
                self._ready.notify_all()
        with self._ready:
            self._ready.notify_all()

    def _read_errors(self) -> None:
        assert self.proc.stderr is not None
        self.errors.extend(self.proc.stderr)

    def tell(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def answer(self, timeout_s: float) -> dict[str, Any]:
        with self._ready:
            self._ready.wait_for(
                lambda: self._answers or self.proc.poll() is not None, timeout=timeout_s
            )
            if self._answers:
                return json.loads(self._answers.popleft())
        raise BenchError(f"{self.proc.args[2]} gave no answer:\n" + "".join(self.errors))


# ---------------------------------------------------------------------- one run


def run(
    procs: Processes,
    redis: RedisServer,
    name: str,
    opts: argparse.Namespace,
    *,
    rate: float = 0.0,
) -> dict:
    """One run; ``rate`` > 0 offers that many events per second in all (else: flat out)."""
    load_kind = f"offered {rate:,.0f} events/s" if rate else "flat out"
    log(f"{name}: gunicorn -k gevent -w {WORKERS} --reuse-port, Redis message queue, {load_kind}")
    redis.client.flushall()
    _, proto = APPS[name]
    server = Cluster(procs, name, redis.url)
    load = {"clients": opts.clients, "events": opts.events}
    try:
        receiver = Line(
            procs,
            ["receive", *flags(proto=proto, url=server.url, timeout=opts.timeout, **load)],
        )
        opened = receiver.answer(timeout_s=120)
        spread = server.spread()
        log(f"  {opened['ready']} WebSocket clients open, per worker {spread}")
        pushers = [
            Line(
                procs,
                [
                    "push",
                    *flags(proto=proto, redis=redis.url, part=k, parts=opts.pushers, **load),
                    *flags(batch=opts.batch, rate=rate / opts.pushers),
                ],
            )
            for k in range(opts.pushers)
        ]
        for pusher in pushers:
            pusher.answer(timeout_s=60)
        wait_for_quiet(opts)
        cpu0 = {
            "workers": server.cpu_s(),
            "redis": redis.cpu_s(),
            "machine": machine_busy_s(),
            "irq": kernel_irq_s(),
        }
        t0 = time.monotonic()
        for line in (receiver, *pushers):
            line.tell("go")
        pushed = [p.answer(timeout_s=opts.timeout + 30) for p in pushers]
        result = receiver.answer(timeout_s=opts.timeout + 30)
        wall = time.monotonic() - t0
        cpu_s = {
            "workers": server.cpu_s() - cpu0["workers"],
            "redis": redis.cpu_s() - cpu0["redis"],
            "pushers": sum(p["cpu_s"] for p in pushed),
        }
        for part, seconds in cpu_s.items():
            result[f"{part}_cpu_pct"] = 100 * seconds / wall
            result[f"{part}_us_per_event"] = 1e6 * seconds / max(1, result["events"])
        result["irq_cpu_pct"] = 100 * (kernel_irq_s() - cpu0["irq"]) / wall
        parts = ("workers", "redis", "pushers", "loadgen", "irq")
        ours = sum(result[f"{k}_cpu_pct"] for k in parts)
        busy_pct = 100 * (machine_busy_s() - cpu0["machine"]) / wall
        result["other_cpu_pct"] = max(0.0, busy_pct - ours)
        result["not_pushed"] = sum(p["not_pushed"] for p in pushed)
        result["push_seconds"] = max(p["seconds"] for p in pushed)
        result["spread"] = spread
        receiver.tell("close")
        receiver.answer(timeout_s=60)
        if result["lost_connections"]:
            log(f"  {result['lost_connections']} connections lost; first: {result['first_lost']}")
        for line in (receiver, *pushers):
            if line.errors:
                log(f"  {line.proc.args[2]} said: " + "  ".join(list(line.errors)[-5:]))
    finally:
        server.stop()
    log(
        f"  {result['events']}/{result['expected']} events, {result['per_second']:,.0f}/s, "
        f"p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms, all pushed in "
        f"{result['push_seconds']:.1f} s; CPU % "
        f"receiver {result['loadgen_cpu_pct']:.0f}, pushers {result['pushers_cpu_pct']:.0f}, "
        f"workers {result['workers_cpu_pct']:.0f}, redis {result['redis_cpu_pct']:.0f}, "
        f"kernel interrupts {result['irq_cpu_pct']:.0f}, other processes "
        f"{result['other_cpu_pct']:.0f}"
    )
    return result


# ---------------------------------------------------------------------- the table


def median_run(runs: list[dict]) -> dict:
    """Each figure's median over the runs (the spread: of the run of median rate)."""
    middle = sorted(runs, key=lambda r: r["per_second"])[len(runs) // 2]
    merged = dict(middle)
    for key, value in middle.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            merged[key] = statistics.median(r[key] for r in runs)
    return merged


def table(
    results: dict[str, dict], fixed: dict[str, dict] | None, rate: float, opts: argparse.Namespace
) -> str:
    s, o = results["flask_sente"], results["Flask-SocketIO"]
    rate_ratio = ratio(s["per_second"], o["per_second"])
    rows = [("delivered events per s (flat out)", "{per_second:,.0f}", rate_ratio, ">=2x")]
    rows += [
        ("p50 latency ms (flat out)", "{p50_ms:.0f}", "", ""),
        ("p99 latency ms (flat out)", "{p99_ms:.0f}", "", ""),
        ("events delivered", "{events:,.0f}/{expected:,.0f}", "", ""),
        ("connections lost", "{lost_connections:.0f}", "", ""),
        ("WebSockets per worker", "{spread[0]}/{spread[1]}/{spread[2]}/{spread[3]}", "", ""),
        ("CPU % receiver (the generator)", "{loadgen_cpu_pct:.0f}", "", ""),
        (f"CPU % {opts.pushers} pushers", "{pushers_cpu_pct:.0f}", "", ""),
        (f"CPU % {WORKERS} workers", "{workers_cpu_pct:.0f}", "", ""),
        ("CPU % redis-server", "{redis_cpu_pct:.0f}", "", ""),
        ("CPU % kernel interrupts (loopback)", "{irq_cpu_pct:.0f}", "", ""),
        ("CPU % other processes", "{other_cpu_pct:.0f}", "", ""),
        ("CPU µs per event: pushers", "{pushers_us_per_event:.0f}", "", ""),
        ("CPU µs per event: workers", "{workers_us_per_event:.0f}", "", ""),
        ("CPU µs per event: redis-server", "{redis_us_per_event:.0f}", "", ""),
    ]
    cells = [
        (
            label,
            fmt.format(**s),
            fmt.format(**o),
            r,
            judged(s["per_second"], o["per_second"], t) if t else "",
        )
        for label, fmt, r, t in rows
    ]
    if fixed is not None:
        fs, fo = fixed["flask_sente"], fixed["Flask-SocketIO"]
        met = "yes" if fs["p99_ms"] <= 50 else "NO"
        at = f"at {rate:,.0f}/s offered"
        cells += [
            (f"p50 latency ms {at}", f"{fs['p50_ms']:.1f}", f"{fo['p50_ms']:.1f}", "", ""),
            (
                f"p99 latency ms {at}",
                f"{fs['p99_ms']:.1f}",
                f"{fo['p99_ms']:.1f}",
                "",
                f"<=50 {met}",
            ),
            (
                f"delivered events per s {at}",
                f"{fs['per_second']:,.0f}",
                f"{fo['per_second']:,.0f}",
                "",
                "",
            ),
        ]
    header = ("figure", "flask_sente", "Flask-SocketIO", "ratio", "target")
    widths = [max(len(r[i]) for r in [header, *cells]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        padded = (
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in cells)])


# ---------------------------------------------------------------------- receiver, pushers


async def receive(args: argparse.Namespace) -> dict[str, Any]:
    """Open the clients and answer ``ready``; after ``go``, count pushes until each client
    has ``events`` (or ``timeout``); ``close`` closes them."""
    stdin = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    clients, failures = await open_all(args.proto, args.url, args.clients)
    if failures:
        raise RuntimeError(f"{len(failures)} clients failed to connect: {failures[0]}")
    latencies: list[float] = []
    first_sent = float("inf")
    last_received = 0.0
    received = 0
    finished = 0
    all_finished = asyncio.Event()
    went_at: float | None = None
    lost: list[str] = []

    async def one(client: Any) -> None:
        """Take the client's events, then keep answering the server's pings."""
        nonlocal first_sent, last_received, received, finished
        got = 0
        try:
            while got < args.events:
                batch = await client.pushed()
                now = time.time()
                for _, sent_at in batch:
                    latencies.append(now - sent_at)
                    first_sent = min(first_sent, sent_at)
                last_received = now
                got += len(batch)
                received += len(batch)
        except ConnectionClosed as exc:
            when = "before go" if went_at is None else f"{time.time() - went_at:.1f} s after go"
            lost.append(f"{exc}, {when}")
            return
        finally:
            finished += 1
            if finished == len(clients):
                all_finished.set()
        await client.answer_pings()

    readers = [asyncio.create_task(one(c)) for c in clients]
    emit({"ready": len(clients)})
    assert (await stdin.readline()).strip() == b"go"
    went_at = time.time()
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_finished.wait(), args.timeout)
    cpu, elapsed = cpu_seconds() - cpu0, time.perf_counter() - t0
    latencies.sort()
    window = last_received - first_sent
    emit(
        {
            "events": received,
            "expected": args.clients * args.events,
            "complete": all_finished.is_set() and not lost,
            "lost_connections": len(lost),
            "first_lost": lost[0] if lost else None,
            "seconds": window,
            "per_second": received / window if window > 0 else 0.0,
            "p50_ms": 1000 * (percentile(latencies, 0.50) or 0.0),
            "p99_ms": 1000 * (percentile(latencies, 0.99) or 0.0),
            "max_ms": 1000 * (latencies[-1] if latencies else 0.0),
            "loadgen_cpu_pct": 100 * cpu / elapsed,
        }
    )
    await stdin.readline()
    for task in readers:
        task.cancel()
    await close_all(clients)
    return {"closed": len(clients)}


def push(args: argparse.Namespace) -> dict[str, Any]:
    """Push ``events`` events to each user of this part, one round over the users at a
    time, from outside the web servers: flask_sente in ``Emitter.send_many`` batches of
    ``batch`` (1: ``Emitter.send`` each), Flask-SocketIO one ``emit`` each (it has no
    batch call). ``rate`` > 0 paces the events to that many per second."""
    uids = [f"bench-u{n}" for n in range(args.part, args.clients, args.parts)]
    if args.proto == "sente":
        from flask_sente import Emitter

        emitter = Emitter(args.redis)

        def send(chunk: list[tuple[str, int]]) -> int:
            now = time.time()
            if len(chunk) == 1:
                uid, i = chunk[0]
                return int(not emitter.send(uid, ["bench/pushed", [i, now]]))
            reached = emitter.send_many([(uid, ["bench/pushed", [i, now]]) for uid, i in chunk])
            return reached.count(False)

        size = max(1, args.batch)
    else:
        from flask_socketio import SocketIO

        socketio = SocketIO(message_queue=args.redis, async_mode="threading")

        def send(chunk: list[tuple[str, int]]) -> int:
            for uid, i in chunk:
                socketio.emit("pushed", [i, time.time()], to=uid)
            return 0

        size = 1
    order = [(uid, i) for i in range(args.events) for uid in uids]
    chunks = [order[k : k + size] for k in range(0, len(order), size)]
    emit({"ready": len(uids)})
    assert sys.stdin.readline().strip() == "go"
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    not_pushed = sent = 0
    for chunk in chunks:
        if args.rate > 0:
            delay = t0 + sent / args.rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)  # pacing the offered load, not synchronisation
        not_pushed += send(chunk)
        sent += len(chunk)
    return {
        "seconds": time.perf_counter() - t0,
        "pushed": len(order),
        "not_pushed": not_pushed,
        "cpu_s": cpu_seconds() - cpu0,
    }


# ---------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clients", type=int, default=1000, help="WebSocket clients, one user each"
    )
    parser.add_argument("--events", type=int, default=50, help="events pushed to each user")
    parser.add_argument("--pushers", type=int, default=8, help="pushing processes")
    parser.add_argument(
        "--batch", type=int, default=100, help="flask_sente events per send_many (1: send)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs each; medians count")
    parser.add_argument(
        "--no-fixed", action="store_true", help="skip the runs at half the peak offered load"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 200 clients, 20 events, 4 pushers, once"
    )
    parser.add_argument("--timeout", type=float, default=90.0, help="give a run up after")
    parser.add_argument(
        "--quiet-pct", type=float, default=15.0, help="machine CPU %% that counts as quiet"
    )
    parser.add_argument(
        "--quiet-wait", type=float, default=10.0, help="longest wait for quiet before a run"
    )
    parser.add_argument("--json", type=Path, help="also write every figure here")
    opts = parser.parse_args(argv)
    if opts.quick:
        opts.clients, opts.events, opts.pushers, opts.repeat = 200, 20, 4, 1
        opts.quiet_wait = 0.0
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    procs = Processes(pin=False)
    runs: dict[str, list[dict]] = {name: [] for name in SERVERS}
    fixed_runs: dict[str, list[dict]] = {name: [] for name in SERVERS}
    rate = 0.0
    started = time.monotonic()
    try:
        redis = RedisServer(procs)
        for round_ in range(opts.repeat):
            for name in list(SERVERS)[:: 1 if round_ % 2 == 0 else -1]:
                runs[name].append(run(procs, redis, name, opts))
        if not opts.no_fixed:
            rate = median_run(runs["flask_sente"])["per_second"] / 2
            for round_ in range(opts.repeat):
                for name in list(SERVERS)[:: 1 if round_ % 2 == 0 else -1]:
                    fixed_runs[name].append(run(procs, redis, name, opts, rate=rate))
    except KeyboardInterrupt:
        log("interrupted: stopping every process started")
        sys.exit(130)
    finally:
        procs.stop_all()
    medians = {name: median_run(r) for name, r in runs.items()}
    fixed = None if opts.no_fixed else {name: median_run(r) for name, r in fixed_runs.items()}
    print(
        f"\nflask_sente vs Flask-SocketIO through Redis: gunicorn -k gevent -w {WORKERS} "
        f"--reuse-port, {opts.clients:,} WebSocket clients, {opts.events} events each from "
        f"{opts.pushers} pushing processes (flask_sente: send_many batches of {opts.batch}), "
        f"redis-py {redis_parser()}, {os.cpu_count()} CPUs, flask_sente at {source_version()}, "
        f"medians of {opts.repeat}, {time.monotonic() - started:.0f} s run\n"
    )
    print(table(medians, fixed, rate, opts))
    if opts.json:
        opts.json.write_text(json.dumps({"peak": runs, "fixed": fixed_runs}, indent=2) + "\n")


def subcommand(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["receive", "push"])
    parser.add_argument("--proto", choices=["sente", "socketio"], required=True)
    parser.add_argument("--url")
    parser.add_argument("--redis")
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=90.0)
    parser.add_argument("--part", type=int, default=0)
    parser.add_argument("--parts", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rate", type=float, default=0.0)
    args = parser.parse_args(argv)
    if args.role == "push":
        emit(push(args))
        return
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop
    except ImportError:
        emit(asyncio.run(receive(args)))
    else:
        emit(uvloop.run(receive(args)))


if __name__ == "__main__":
    if sys.argv[1:2] in (["receive"], ["push"]):
        subcommand(sys.argv[1:])
    else:
        main()
