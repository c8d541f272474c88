"""Connections without a thread each (issue 8): one gthread worker, thousands held (run by hand).

    python benchmarks/bench_connections.py [--ws 5000] [--polls 1000] [--window 20] [--profile DIR]

Against ONE ``gunicorn -k gthread --threads 8 -w 1`` worker serving the conformance app
(``examples/conformance.py``: the uid is the ``uid`` parameter, else the client-id; no CSRF):

* ``--ws`` idle WebSocket connections, each answering the server's keepalive pings; the
  worker's resident memory (``VmRSS``) before and after them gives KB per idle WebSocket;
* ``--polls`` Ajax clients, each keeping one long-poll waiting and polling again at each
  answer, as a real client does (``chsk/timeout`` every ``--lp-timeout-ms``); they start
  spread over one timeout, as a fleet's polls are, or all at once with ``--poll-herd``;
* while all are held, for ``--window`` seconds, at fixed rates (open loop, so a stall shows
  as latency rather than as fewer requests): ``[["test/echo", data], cb]`` over a random
  sample of the WebSockets; the same echo as Ajax POSTs from the long-poll clients; pushes
  to waiting long-polls (``GET /push``, timed until the poll's answer arrives); and the plain
  Flask route ``GET /uids``;
* then an echo from every WebSocket, and a count of the long-poll clients answered.

Then Flask-SocketIO under the same ``gunicorn -k gthread --threads 8`` (``socketio_app.py``
plus a plain route): WebSockets opened one by one, each handshake given 5 s, until the first
that hangs; then whether its plain route still answers.

Last, WebSocket request/reply throughput, 50 clients back to back (``loadgen.py``'s ``ws-rr``)
on the event loop (``--threads 8``) and on the thread-per-connection path
(``connection_mode="thread"``, ``--threads 64``), alternating, the best of ``--repeat`` each.

The worker is pinned to CPU 0 and this process, the asyncio load generator, to CPU 1.
It prints every figure beside its target, with the CPU use of the generator, of the worker
and of everything else on the machine. 127.0.0.1 only; every process group started here is
killed on the way out, error or not. The run takes about three minutes and gives up after
``--budget`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import math
import os
import queue
import random
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_server import (  # noqa: E402
    LOADGEN_CPUS,
    SERVER_CPUS,
    BenchError,
    Processes,
    Server,
    log,
    machine_busy_s,
    settled_rss,
    source_version,
    wait_for_quiet,
)
from benchmarks.loadgen import (  # noqa: E402
    WS_PING,
    WS_PONG_PACKED,
    SenteAjax,
    SenteWs,
    SocketIoWs,
    close_all,
    cpu_seconds,
    open_all,
    payload_for,
    percentile,
    ws_rr,
)

SENTE_APP = "examples.conformance:create_app({})"
SOCKETIO_APP = "benchmarks.bench_connections:socketio_app()"
REQUEST_TIMEOUT_S = 10.0
_cb_ids = itertools.count(1)


def socketio_app() -> Any:
    """``benchmarks/socketio_app.py``'s app plus a plain Flask route, ``GET /plain``."""
    from benchmarks.socketio_app import create_app

    app = create_app()
    app.add_url_rule("/plain", "plain", lambda: "ok")
    return app


# ---------------------------------------------------------------------- the server


class Worker(Server):
    """One ``gunicorn -k gthread`` master with one worker of ``threads`` threads."""

    def __init__(  # Server's own argv is bench_server's: its readers and probes are reused
        self, procs: Processes, name: str, app: str, *, threads: int, env: dict[str, str]
    ) -> None:
        self.name = name
        self.procs = procs
        argv = [sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", str(threads)]
        argv += ["--workers", "1", "--bind", "127.0.0.1:0", "--log-level", "info"]
        argv += ["--graceful-timeout", "3", "--no-control-socket", app]
        self.proc = procs.start(
            argv, cpus=SERVER_CPUS, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self.output: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self._wait_for(r"Listening at: (http://\S+)").rstrip("/")
        self.worker_pid = int(self._wait_for(r"Booting worker with pid: (\d+)"))
        self._wait_until_serving()

    def threads(self) -> int:
        status = Path(f"/proc/{self.worker_pid}/status").read_text()
        return int(re.search(r"Threads:\s+(\d+)", status).group(1))  # type: ignore[union-attr]


async def start_worker(procs: Processes, name: str, app: str, **kw: Any) -> Worker:
    return await asyncio.to_thread(Worker, procs, name, app, **kw)


async def quiet(opts: argparse.Namespace) -> None:
    """Other processes share this machine: wait (bounded) until it is nearly idle."""
    await asyncio.to_thread(wait_for_quiet, opts)


def sente_env(opts: argparse.Namespace) -> dict[str, str]:
    return {"SENTE_LP_TIMEOUT_MS": str(opts.lp_timeout_ms)}


class Usage:
    """CPU seconds of the generator (this process), the worker and everything else, from now."""

    def __init__(self, server: Worker) -> None:
        self.server = server
        self.t0, self.own0 = time.monotonic(), cpu_seconds()
        self.server0, self.busy0 = server.cpu_s(), machine_busy_s()

    def percents(self) -> dict[str, float]:
        wall = time.monotonic() - self.t0
        own, srv = cpu_seconds() - self.own0, self.server.cpu_s() - self.server0
        others = machine_busy_s() - self.busy0 - own - srv
        return {
            "wall_s": wall,
            "server_cpu_s": srv,
            "loadgen_cpu_pct": 100 * own / wall,
            "server_cpu_pct": 100 * srv / wall,
            "other_cpu_pct": max(0.0, 100 * others / wall),
        }


def profile(
    procs: Processes, opts: argparse.Namespace, server: Worker, name: str, secs: float
) -> subprocess.Popen[str] | None:
    """py-spy sampling the worker for ``secs``, with ``--profile``: folded stacks per thread,
    of the thread holding the GIL only (py-spy takes threads blocked in C for running ones).
    ``--profile-native`` adds C frames (the cyclic GC shows as ``gc_collect_main``), but then
    py-spy pauses the worker at every sample, which slows it."""
    if opts.profile is None:
        return None
    opts.profile.mkdir(parents=True, exist_ok=True)
    argv = ["py-spy", "record", "--pid", str(server.worker_pid), "--rate", "200"]
    argv += ["--duration", str(max(1, round(secs))), "--format", "raw", "--threads", "--gil"]
    argv += ["--native"] if opts.profile_native else ["--nonblocking"]
    argv += ["--output", str(opts.profile / f"{name}.txt")]
    return procs.start(
        argv, cpus=LOADGEN_CPUS, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


# ---------------------------------------------------------------------- the clients


@dataclass
class Timings:
    """Latencies in seconds; a failure counts as an infinite latency."""

    seconds: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)

    async def time(self, request: Awaitable[Any]) -> None:
        t0 = time.perf_counter()
        try:
            await asyncio.wait_for(request, REQUEST_TIMEOUT_S)
        except Exception as exc:
            self.fail(f"{type(exc).__name__}: {exc}"[:120])
        else:
            self.seconds.append(time.perf_counter() - t0)

    def fail(self, why: str) -> None:
        self.failures[why] += 1
        self.seconds.append(math.inf)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.seconds)
        ms = [1000 * (percentile(ordered, q) or 0.0) for q in (0.50, 0.99, 1.0)]
        return {
            "count": len(ordered),
            "failed": sum(self.failures.values()),
            "first_failure": next(iter(self.failures), None),
            "p50_ms": ms[0],
            "p99_ms": ms[1],
            "max_ms": ms[2],
        }


class HeldWs:
    """An open :class:`SenteWs` with one reader: it answers the server's pings, as every Sente
    client does, and hands each reply to the request waiting for it.

    A ping arrives as ``["chsk/ws-ping", null]``: the bare event id as the value, which Sente's
    client compares with ``:chsk/ws-ping`` (``SenteWs._recv`` looks for ``[["chsk/ws-ping"], ...]``,
    so it never answers one, and the server closes it after ``ws_kalive_ms / 2 +
    ws_ping_timeout_ms``)."""

    def __init__(self, client: SenteWs) -> None:
        self.client = client
        self._waiting: dict[str, asyncio.Future[Any]] = {}
        self.pings = 0
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        ws = self.client.ws
        with contextlib.suppress(ConnectionClosed):
            while True:
                message = json.loads(await ws.recv())
                if message[0] == WS_PING:
                    self.pings += 1
                    await ws.send(WS_PONG_PACKED)
                elif len(message) == 2 and isinstance(message[1], str):
                    future = self._waiting.pop(message[1], None)
                    if future is not None and not future.done():
                        future.set_result(message[0])

    async def echo(self, payload: str) -> None:
        cb = f"{next(_cb_ids) & 0xFFFFFF:06x}"
        future = self._waiting[cb] = asyncio.get_running_loop().create_future()
        try:
            await self.client.ws.send(json.dumps([["test/echo", payload], cb]))
            reply = await future
        finally:
            self._waiting.pop(cb, None)
        if reply != {"echo": payload}:
            raise BenchError(f"echo answered {reply!r}")

    async def close(self) -> None:
        self._reader.cancel()
        await close_all([self.client])


@dataclass
class PollStats:
    waiting: int = 0
    timeouts: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    push_sent: dict[str, float] = field(default_factory=dict)
    push_latency: Timings = field(default_factory=Timings)


class Poller:
    """A Sente Ajax client keeping one long-poll waiting: it polls again at each answer."""

    def __init__(self, session: aiohttp.ClientSession, base: str, n: int, stats: PollStats):
        self.ajax = SenteAjax(session, base, n)
        self.stats = stats
        self.answered_at = 0.0
        self.task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        await self.ajax.open()
        self.task = asyncio.create_task(self._poll_forever())

    async def _poll_forever(self) -> None:
        params = {"client-id": self.ajax.client_id}
        stats = self.stats
        while True:
            stats.waiting += 1
            try:
                async with self.ajax.session.get(self.ajax.url, params=params) as resp:
                    body, status = await resp.text(), resp.status
            except Exception as exc:
                body, status = f"{type(exc).__name__}: {exc}"[:120], 0
            finally:
                stats.waiting -= 1
            if status != 200:
                stats.errors[f"{status} {body[:80]}"] += 1
                await asyncio.sleep(1.0)  # as sente.js backs off
                continue
            self.answered_at = time.monotonic()
            answer = json.loads(body)
            if answer == ["chsk/timeout", None]:
                stats.timeouts += 1
                continue
            now = time.perf_counter()
            for event_id, data in answer[0]:
                sent = stats.push_sent.pop(data, None) if event_id == "test/oob-push" else None
                if sent is not None:
                    stats.push_latency.seconds.append(now - sent)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


@contextlib.contextmanager
def own_collector_paused() -> Iterator[None]:
    """This process holds thousands of connections too: a full collection of its own would
    stall its event loop for hundreds of ms and be counted as server latency. Everything
    alive now is frozen out of the collector, which stays off until the block ends."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


class LoopLag:
    """The generator's own event-loop lag meanwhile: its worst would show in every figure."""

    def __init__(self) -> None:
        self.worst_ms = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.01)
            self.worst_ms = max(self.worst_ms, 1000 * (time.perf_counter() - t0 - 0.01))

    def __enter__(self) -> LoopLag:
        self._task = asyncio.create_task(self._watch())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


async def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def paced(
    rate: float, seconds: float, fire: Callable[[int], Coroutine[Any, Any, None]]
) -> None:
    """Start ``fire(i)`` ``rate`` times a second without waiting for the earlier ones."""
    start = time.perf_counter()
    tasks: list[asyncio.Task[None]] = []
    for i in range(round(rate * seconds)):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(fire(i)))
    await asyncio.gather(*tasks)


async def get_ok(session: aiohttp.ClientSession, url: str, **params: str) -> str:
    async with session.get(url, params=params) as resp:
        body = await resp.text()
        if resp.status != 200:
            raise BenchError(f"GET {url}: {resp.status} {body[:80]}")
        return body


async def open_held(url: str, count: int, first: int = 0) -> tuple[list[HeldWs], list[str]]:
    clients, failures = await open_all("sente", url, count, first=first)
    return [HeldWs(c) for c in clients], failures


def new_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=60)
    )


# ---------------------------------------------------------------------- flask_sente held


async def open_pollers(pollers: list[Poller], opts: argparse.Namespace) -> None:
    """Spread over one ``lp_timeout_ms``, so their timeouts and polls again are spread as a
    fleet's are; with ``--poll-herd``, all at once, so they time out and poll again together
    (a reconnect storm)."""
    if not opts.poll_herd:
        spread_s = opts.lp_timeout_ms / 1000
        await paced(len(pollers) / spread_s, spread_s, lambda i: pollers[i].open())
        return
    gate = asyncio.Semaphore(100)

    async def open_poller(poller: Poller) -> None:
        async with gate:
            await poller.open()

    await asyncio.gather(*(open_poller(p) for p in pollers))


async def warm_up(server: Worker, session: aiohttp.ClientSession) -> None:
    """Every code path once, so lazily built state is not counted per connection."""
    held, failures = await open_held(server.url, 50, first=10**6)
    if failures:
        raise BenchError(f"warm-up WebSockets failed: {failures[0]}")
    await asyncio.gather(*(h.echo(payload_for(n)) for n, h in enumerate(held)))
    await asyncio.gather(*(h.close() for h in held))
    for _ in range(3):
        await get_ok(session, server.url + "/uids")


async def sente_held(procs: Processes, opts: argparse.Namespace) -> dict[str, Any]:
    log(f"flask_sente: {opts.ws} idle WebSockets and {opts.polls} long-polls on --threads 8")
    await quiet(opts)
    server = await start_worker(
        procs, "flask_sente", SENTE_APP.format(""), threads=8, env=sente_env(opts)
    )
    result: dict[str, Any] = {}
    held: list[HeldWs] = []
    pollers: list[Poller] = []
    stats = PollStats()
    async with new_session() as session, new_session() as poll_session:
        try:
            await warm_up(server, session)
            await quiet(opts)
            result["rss_before_kb"] = await asyncio.to_thread(settled_rss, server)
            result["threads_before"] = server.threads()

            usage, t0 = Usage(server), time.monotonic()
            held, failures = await open_held(server.url, opts.ws)
            result |= {"ws_open_s": time.monotonic() - t0, "ws_open": len(held)}
            result |= {"ws_failed": len(failures), "ws_first_failure": next(iter(failures), None)}
            result["open_usage"] = usage.percents()
            result["rss_after_kb"] = await asyncio.to_thread(settled_rss, server)
            result["kb_per_ws"] = (result["rss_after_kb"] - result["rss_before_kb"]) / max(
                1, len(held)
            )
            log(
                f"  {len(held)} WebSockets open ({len(failures)} failed) in "
                f"{result['ws_open_s']:.1f} s; RSS {result['rss_before_kb']} -> "
                f"{result['rss_after_kb']} kB = {result['kb_per_ws']:.1f} KB each"
            )

            pollers = [Poller(poll_session, server.url, n, stats) for n in range(opts.polls)]
            await open_pollers(pollers, opts)
            await wait_until(lambda: stats.waiting == opts.polls, 30, "every long-poll waiting")
            rss_all = await asyncio.to_thread(settled_rss, server, settle_s=1.0)
            result |= {"rss_all_kb": rss_all, "threads_held": server.threads()}
            log(f"  {opts.polls} long-polls waiting; RSS {rss_all} kB")
            await quiet(opts)

            result |= await measure_window(procs, opts, server, session, held, pollers, stats)
            result["rss_end_kb"] = server.rss_kb()
        finally:
            await asyncio.gather(*(p.close() for p in pollers))
            await asyncio.gather(*(h.close() for h in held))
            await asyncio.to_thread(server.stop)
    return result


async def measure_window(
    procs: Processes,
    opts: argparse.Namespace,
    server: Worker,
    session: aiohttp.ClientSession,
    held: list[HeldWs],
    pollers: list[Poller],
    stats: PollStats,
) -> dict[str, Any]:
    """Requests at fixed rates while everything is held, then every connection checked."""
    window = opts.window
    ws_echo, ajax_echo, plain = Timings(), Timings(), Timings()
    sample = random.Random(8).sample(held, min(opts.sample, len(held)))
    pick = random.Random(9)
    uids_seen: list[dict[str, int]] = []

    async def echo_ws(i: int) -> None:
        await ws_echo.time(sample[i % len(sample)].echo(payload_for(i)))

    async def echo_ajax(i: int) -> None:
        await ajax_echo.time(pick.choice(pollers).ajax.echo(payload_for(i)))

    async def push(i: int) -> None:
        token = f"push-{i}"
        stats.push_sent[token] = time.perf_counter()
        uid = pick.choice(pollers).ajax.client_id
        try:
            await get_ok(session, server.url + "/push", uid=uid, data=token)
        except Exception as exc:
            stats.push_sent.pop(token, None)
            stats.push_latency.fail(f"GET /push: {type(exc).__name__}: {exc}"[:120])

    async def uids() -> None:
        body = await get_ok(session, server.url + "/uids")
        uids_seen.append({kind: len(v) for kind, v in json.loads(body).items()})

    async def route(i: int) -> None:
        await plain.time(uids())

    log(f"  measuring for {window:g} s while all are held")
    usage = Usage(server)
    timeouts0, errors0 = stats.timeouts, sum(stats.errors.values())
    window_start = time.monotonic()
    spy = profile(procs, opts, server, "held", window)
    with own_collector_paused(), LoopLag() as lag:
        await asyncio.gather(
            paced(opts.ws_rate, window, echo_ws),
            paced(opts.ajax_rate, window, echo_ajax),
            paced(opts.push_rate, window, push),
            paced(opts.route_rate, window, route),
        )
    result: dict[str, Any] = {"window_usage": usage.percents(), "loadgen_lag_ms": lag.worst_ms}
    if spy is not None:
        await asyncio.to_thread(spy.wait, 30)
    with contextlib.suppress(BenchError):
        await wait_until(lambda: not stats.push_sent, opts.lp_timeout_ms / 1000 + 5, "pushes")
    for _ in stats.push_sent:
        stats.push_latency.fail("push never arrived")
    result |= {
        "ws_echo": ws_echo.summary(),
        "ajax_echo": ajax_echo.summary(),
        "push": stats.push_latency.summary(),
        "route": plain.summary(),
        "uids_seen": uids_seen[-1] if uids_seen else {},
        "poll_timeouts": stats.timeouts - timeouts0,
        "poll_errors": sum(stats.errors.values()) - errors0,
        "poll_first_error": next(iter(stats.errors), None),
        "polls_answered": sum(p.answered_at >= window_start for p in pollers),
    }
    for key in ("ws_echo", "ajax_echo", "push", "route"):
        s = result[key]
        log(
            f"  {key:9} n={s['count']} failed={s['failed']} p50={s['p50_ms']:.1f} ms "
            f"p99={s['p99_ms']:.1f} ms max={s['max_ms']:.1f} ms"
        )

    every = Timings()
    gate = asyncio.Semaphore(200)

    async def check(n: int, h: HeldWs) -> None:
        async with gate:
            await every.time(h.echo(payload_for(n)))

    with own_collector_paused():
        await asyncio.gather(*(check(n, h) for n, h in enumerate(held)))
    result["ws_alive"] = sum(not math.isinf(s) for s in every.seconds)
    result["ws_pings"] = sum(h.pings for h in held)
    result["ws_check"] = every.summary()
    log(
        f"  every WebSocket: {result['ws_alive']}/{len(held)} answer; long-polls answered "
        f"in the window: {result['polls_answered']}/{len(pollers)} "
        f"({result['poll_timeouts']} chsk/timeout, {result['poll_errors']} errors)"
    )
    return result


# ---------------------------------------------------------------------- Flask-SocketIO


async def socketio_wall(procs: Processes, opts: argparse.Namespace) -> dict[str, Any]:
    log("Flask-SocketIO: WebSockets one by one on --threads 8, until a handshake hangs")
    await quiet(opts)
    server = await start_worker(
        procs, "Flask-SocketIO", SOCKETIO_APP, threads=8, env={"BENCH_ASYNC_MODE": "threading"}
    )
    clients: list[SocketIoWs] = []
    keepers: list[asyncio.Task[None]] = []
    result: dict[str, Any] = {"hung_at": None, "failure": None}
    plain_before, plain_after = Timings(), Timings()
    async with new_session() as session:
        try:
            await plain_before.time(get_ok(session, server.url + "/plain"))
            for n in range(opts.socketio_max):
                client = SocketIoWs(server.url, n)
                try:
                    await asyncio.wait_for(client.open(), opts.handshake_timeout)
                except TimeoutError:
                    result["hung_at"] = n + 1
                    break
                except Exception as exc:
                    result["failure"] = f"{type(exc).__name__}: {exc}"[:120]
                    break
                clients.append(client)
                keepers.append(asyncio.create_task(client.answer_pings()))
            result["accepted"] = len(clients)
            result["threads_held"] = server.threads()
            await plain_after.time(get_ok(session, server.url + "/plain"))
        finally:
            for task in keepers:
                task.cancel()
            await close_all(clients)
            await asyncio.to_thread(server.stop)
    result |= {"plain_before": plain_before.summary(), "plain_after": plain_after.summary()}
    after = result["plain_after"]
    log(
        f"  {result['accepted']} accepted; connection {result['hung_at']} hung "
        f"({result['failure'] or 'no error'}); GET /plain then: "
        + ("no answer in 10 s" if after["failed"] else f"{after['p50_ms']:.1f} ms")
    )
    return result


# ---------------------------------------------------------------------- throughput


PATHS = {
    "loop": (SENTE_APP.format(""), 8),
    "thread": (SENTE_APP.format("connection_mode='thread'"), 64),
}


async def throughput(procs: Processes, opts: argparse.Namespace) -> dict[str, list[Any]]:
    runs: dict[str, list[Any]] = {path: [] for path in PATHS}
    for round_ in range(opts.repeat):
        for path in list(PATHS)[:: 1 if round_ % 2 == 0 else -1]:
            app, threads = PATHS[path]
            server = await start_worker(
                procs, f"flask_sente ({path})", app, threads=threads, env=sente_env(opts)
            )
            try:
                args = argparse.Namespace(
                    proto="sente", url=server.url, clients=50, warmup=1.0, duration=opts.duration
                )
                await quiet(opts)
                usage = Usage(server)
                spy = profile(procs, opts, server, f"ws-rr-{path}-{round_}", opts.duration + 1)
                result = await ws_rr(args)
                result |= usage.percents()
                if spy is not None:
                    await asyncio.to_thread(spy.wait, 30)
            finally:
                await asyncio.to_thread(server.stop)
            runs[path].append(result)
            log(
                f"  ws-rr on {path:6} (--threads {threads}): {result['per_second']:,.0f}/s "
                f"p99 {result['p99_ms']:.1f} ms, CPU gen/worker/others "
                f"{result['loadgen_cpu_pct']:.0f}/{result['server_cpu_pct']:.0f}/"
                f"{result['other_cpu_pct']:.0f} %"
            )
    return runs


# ---------------------------------------------------------------------- the table


def table(
    held: dict[str, Any], sio: dict[str, Any], runs: dict[str, list[Any]], opts: argparse.Namespace
) -> str:
    rows: list[tuple[str, str, str, str]] = []

    def row(label: str, value: str, target: str = "", met: bool | None = None) -> None:
        verdict = "" if met is None else ("yes" if met else "NO")
        rows.append((label, value, target, verdict))

    def lat(s: dict[str, Any]) -> str:
        failed = f", {s['failed']} failed" if s["failed"] else ""
        return f"{s['p50_ms']:.1f} / {s['p99_ms']:.1f} / {s['max_ms']:.1f}{failed}"

    def cpu(u: dict[str, float]) -> str:
        return "/".join(
            f"{u[k]:.0f}" for k in ("loadgen_cpu_pct", "server_cpu_pct", "other_cpu_pct")
        )

    ws, polls = opts.ws, opts.polls
    row(
        "idle WS open, no handshake hung",
        f"{held['ws_open']:,}/{ws:,} in {held['ws_open_s']:.1f} s",
        f"{ws:,}",
        held["ws_open"] == ws,
    )
    row("long-polls waiting at once", f"{polls:,}/{polls:,}", f"{polls:,}", True)
    for key, label in (
        ("ws_echo", f"(a) WS echo p50/p99/max ms, {{}} on {min(opts.sample, ws)} WS"),
        ("ajax_echo", "(a) Ajax echo from polling clients, {}"),
    ):
        e = held[key]
        row(label.format(e["count"]), lat(e), "p99 <= 100", e["p99_ms"] <= 100)
    p = held["push"]
    row(f"    push to a waiting long-poll, {p['count']}", lat(p))
    c = held["ws_check"]
    row(
        "    every WS answers an echo after",
        f"{held['ws_alive']:,}/{held['ws_open']:,}",
        "all",
        held["ws_alive"] == held["ws_open"],
    )
    row(
        f"    long-polls answered in the {opts.window:g} s window",
        f"{held['polls_answered']:,}/{polls:,} ({held['poll_timeouts']} timeouts, "
        f"{held['poll_errors']} errors)",
        "all",
        held["polls_answered"] == polls and not held["poll_errors"],
    )
    row("    echo from all, p50/p99/max ms", lat(c))
    row("    keepalive pings answered by the WS", f"{held['ws_pings']:,}")
    r = held["route"]
    row(f"(b) GET /uids p50/p99/max ms, {r['count']}", lat(r), "all answered", not r["failed"])
    seen = held["uids_seen"]
    row("    /uids counts (ws, ajax)", f"{seen.get('ws', 0):,}, {seen.get('ajax', 0):,}")
    row(
        "(c) worker RSS kB before / after WS",
        f"{held['rss_before_kb']:,} / {held['rss_after_kb']:,}",
    )
    row("(c) KB per idle WS", f"{held['kb_per_ws']:.1f}", "<= 20", held["kb_per_ws"] <= 20)
    row(
        "    worker RSS MB, all held / at end",
        f"{held['rss_all_kb'] / 1024:.0f} / {held['rss_end_kb'] / 1024:.0f}",
    )
    row(
        "    worker threads, before / all held",
        f"{held['threads_before']} / {held['threads_held']}",
    )
    row("    CPU % gen/worker/others, opening WS", cpu(held["open_usage"]))
    row("    CPU % gen/worker/others, window", cpu(held["window_usage"]))
    row(
        "    generator's own event-loop lag, worst",
        f"{held['loadgen_lag_ms']:.0f} ms",
        "< 50",
        held["loadgen_lag_ms"] < 50,
    )
    best = {path: max(rs, key=lambda x: x["per_second"]) for path, rs in runs.items()}
    loop, thread = best["loop"], best["thread"]
    for path, b in best.items():
        threads = PATHS[path][1]
        row(
            f"(d) WS req/reply per s, {path} (--threads {threads})",
            f"{b['per_second']:,.0f} (p99 {b['p99_ms']:.1f} ms)",
        )
        row(f"    CPU % gen/worker/others, {path}", cpu(b))
        per_request = b["server_cpu_s"] / (b["per_second"] * (opts.duration + 1.0))
        row(f"    worker CPU per req/reply, {path}", f"~{1e6 * per_request:.0f} µs")
    ratio = loop["per_second"] / thread["per_second"] if thread["per_second"] else math.inf
    row("(d) loop / thread", f"{ratio:.2f}x", ">= 1.00x", ratio >= 1.0)
    accepted = f"{sio['accepted']:,}"
    if sio["hung_at"]:
        accepted += f" (connection {sio['hung_at']} hung {opts.handshake_timeout:g} s)"
    elif sio["failure"]:
        accepted += f" (then {sio['failure']})"
    else:
        accepted += " (stopped at --socketio-max)"
    row("Flask-SocketIO: WS accepted, --threads 8", accepted)
    row("Flask-SocketIO: worker threads, all held", f"{sio['threads_held']}")
    sb, sa = sio["plain_before"], sio["plain_after"]
    row(
        "Flask-SocketIO: GET /plain before / while held",
        ("answered" if not sb["failed"] else "NO answer")
        + " / "
        + (f"answered, {sa['p50_ms']:.1f} ms" if not sa["failed"] else "NO answer in 10 s"),
    )
    header = ("figure", "value", "target", "met")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


# ---------------------------------------------------------------------- command line


async def run_all(procs: Processes, opts: argparse.Namespace) -> dict[str, Any]:
    async with asyncio.timeout(opts.budget):
        held = await sente_held(procs, opts)
        sio = await socketio_wall(procs, opts)
        log("WebSocket request/reply throughput, 50 clients: loop vs thread-per-connection")
        runs = await throughput(procs, opts)
    return {"flask_sente": held, "Flask-SocketIO": sio, "ws_rr": runs}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ws", type=int, default=5000, help="idle WebSockets to hold")
    parser.add_argument("--polls", type=int, default=1000, help="long-polls to keep waiting")
    parser.add_argument("--lp-timeout-ms", type=int, default=10000, help="SENTE_LP_TIMEOUT_MS")
    parser.add_argument(
        "--poll-herd", action="store_true", help="start every long-poll at once, not spread"
    )
    parser.add_argument("--window", type=float, default=20.0, help="seconds measured, all held")
    parser.add_argument("--sample", type=int, default=1000, help="WebSockets sampled for (a)")
    parser.add_argument("--ws-rate", type=float, default=100.0, help="WS echoes per second")
    parser.add_argument("--ajax-rate", type=float, default=20.0, help="Ajax echoes per second")
    parser.add_argument("--push-rate", type=float, default=20.0, help="pushes per second")
    parser.add_argument("--route-rate", type=float, default=5.0, help="GET /uids per second")
    parser.add_argument("--socketio-max", type=int, default=500, help="stop Flask-SocketIO here")
    parser.add_argument("--handshake-timeout", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per ws-rr run")
    parser.add_argument("--repeat", type=int, default=3, help="ws-rr runs per path; best counts")
    parser.add_argument(
        "--quiet-pct", type=float, default=15.0, help="machine CPU %% that counts as quiet"
    )
    parser.add_argument(
        "--quiet-wait", type=float, default=20.0, help="longest wait for quiet before a phase"
    )
    parser.add_argument("--budget", type=float, default=540.0, help="give up after, seconds")
    parser.add_argument("--profile", type=Path, help="py-spy folded stacks of the worker here")
    parser.add_argument(
        "--profile-native", action="store_true", help="with --profile: C frames too (slower)"
    )
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="no CPU pinning")
    opts = parser.parse_args(argv)
    if opts.window * 1000 <= opts.lp_timeout_ms:
        parser.error("--window must be longer than --lp-timeout-ms, so every poll is answered")
    if opts.pin and len(os.sched_getaffinity(0)) < 2:
        opts.pin = False
    if opts.pin:
        os.sched_setaffinity(0, LOADGEN_CPUS)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it
    if hard < opts.ws + opts.polls + 1000:
        log(f"note: the open-file limit ({hard}) may not allow {opts.ws + opts.polls} connections")

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    procs = Processes(pin=opts.pin)
    started = time.monotonic()
    try:
        import uvloop
    except ImportError:
        run = asyncio.run
    else:
        run = uvloop.run
    try:
        results = run(run_all(procs, opts))
    except KeyboardInterrupt:
        log("interrupted: stopping every process started")
        sys.exit(130)
    except TimeoutError:
        log(f"over the --budget of {opts.budget:g} s: stopping every process started")
        sys.exit(1)
    finally:
        procs.stop_all()
    pinning = "worker on CPU 0, generator on CPU 1" if opts.pin else "no CPU pinning"
    print(
        f"\nflask_sente connections on one gunicorn gthread worker, {os.cpu_count()} CPUs "
        f"({pinning}), flask_sente at {source_version()}, lp_timeout_ms {opts.lp_timeout_ms}, "
        f"{time.monotonic() - started:.0f} s run\n"
    )
    print(table(results["flask_sente"], results["Flask-SocketIO"], results["ws_rr"], opts))
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
