"""The load generator: one asyncio process speaking Sente's or Socket.IO's wire protocol.

Each scenario prints one JSON line with its figures and the generator's own CPU time
over the measured window (``resource.getrusage``), so a saturated generator shows::

    python benchmarks/loadgen.py ws-rr   --proto sente    --url http://127.0.0.1:8000
    python benchmarks/loadgen.py push    --proto socketio --url http://127.0.0.1:8000
    python benchmarks/loadgen.py ajax-rr --proto sente    --url http://127.0.0.1:8000
    python benchmarks/loadgen.py ajax-push --proto sente  --url http://127.0.0.1:8000
    python benchmarks/loadgen.py idle    --proto sente    --url http://127.0.0.1:8000

``idle`` is driven line by line on stdin (``open N``, ``check``, ``close``) so that the
caller can read the server's memory between steps. Both protocols are spoken by hand over
the ``websockets`` and ``aiohttp`` clients, with no compression and no keepalive pings of
their own (the servers' pings are answered, as real clients do), so the generator does as
little work per message as it can.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

PAYLOAD_BYTES = 64
WS_PING = "chsk/ws-ping"
WS_PONG_PACKED = json.dumps([["chsk/ws-pong"], None])
_cb_ids = itertools.count(0x100000)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[index]


def ws_url(base: str, path: str) -> str:
    return "ws" + base.removeprefix("http") + path


async def open_ws(url: str) -> ClientConnection:
    return await connect(
        url,
        compression=None,
        ping_interval=None,
        proxy=None,
        open_timeout=30,
        max_size=None,
        max_queue=None,
    )


# ---------------------------------------------------------------------- the two protocols


class SenteWs:
    """Sente over WebSocket: ``[[id, data], cb]`` out, ``[reply, cb]`` and batches in.

    Like every Sente client, it answers the server's ``chsk/ws-ping`` with ``chsk/ws-pong``
    (a server closes a connection that stays silent after its ping)."""

    def __init__(self, base: str, n: int) -> None:
        self.url = ws_url(base, f"/chsk?client-id=bench-c{n}&uid=bench-u{n}")
        self.ws: ClientConnection

    async def open(self) -> None:
        self.ws = await open_ws(self.url)
        handshake = json.loads(await self.ws.recv())
        assert handshake[0][0] == "chsk/handshake", handshake

    async def _recv(self) -> list[Any]:
        while True:
            message = json.loads(await self.ws.recv())
            if message[0] == WS_PING:  # the server's ping is the bare id: ["chsk/ws-ping", null]
                await self.ws.send(WS_PONG_PACKED)
                continue
            return message

    async def echo(self, payload: str) -> None:
        cb = f"{next(_cb_ids) & 0xFFFFFF:06x}"
        await self.ws.send(json.dumps([["test/echo", payload], cb]))
        while True:
            reply, got = await self._recv()
            if got == cb:
                assert reply == {"echo": payload}, reply
                return

    async def trigger_push(self, n: int) -> None:
        await self.ws.send(json.dumps([["bench/push-n", n]]))

    async def pushed(self) -> list[list[Any]]:
        """The next batch of pushed events' data: ``[[i, sent_at], ...]``."""
        while True:
            value, _ = await self._recv()
            if value and isinstance(value[0], list):
                return [ev[1] for ev in value if ev[0] == "bench/pushed"]

    async def answer_pings(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await self._recv()


class SocketIoWs:
    """Socket.IO v5 over an Engine.IO v4 WebSocket: ``42["ev",data]``, acks ``43n[...]``."""

    def __init__(self, base: str, n: int) -> None:
        self.url = ws_url(base, f"/socket.io/?EIO=4&transport=websocket&uid=bench-u{n}")
        self.ws: ClientConnection
        self._acks = itertools.count(1)

    async def open(self) -> None:
        self.ws = await open_ws(self.url)
        opened = await self.ws.recv()
        assert opened.startswith("0{"), opened
        await self.ws.send("40")
        while not (await self._recv()).startswith("40"):
            pass

    async def _recv(self) -> str:
        while True:
            packet = await self.ws.recv()
            if packet == "2":
                await self.ws.send("3")
                continue
            return packet

    async def echo(self, payload: str) -> None:
        ack = next(self._acks)
        await self.ws.send(f"42{ack}" + json.dumps(["echo", payload]))
        prefix = f"43{ack}["
        while True:
            packet = await self._recv()
            if packet.startswith(prefix):
                assert json.loads(packet[len(prefix) - 1 :]) == [{"echo": payload}], packet
                return

    async def trigger_push(self, n: int) -> None:
        await self.ws.send("42" + json.dumps(["push_n", n]))

    async def pushed(self) -> list[list[Any]]:
        while True:
            packet = await self._recv()
            if packet.startswith('42["pushed"'):
                return [json.loads(packet[2:])[1]]

    async def answer_pings(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await self._recv()


class BareWs:
    """The bare flask-sock server: every message comes back as sent; ``push <n>`` asks it
    for ``n`` messages ``[i, sent_at]``."""

    def __init__(self, base: str, n: int) -> None:
        self.url = ws_url(base, "/ws")
        self.ws: ClientConnection

    async def open(self) -> None:
        self.ws = await open_ws(self.url)

    async def echo(self, payload: str) -> None:
        await self.ws.send(payload)
        reply = await self.ws.recv()
        assert reply == payload, reply

    async def trigger_push(self, n: int) -> None:
        await self.ws.send(f"push {n}")

    async def pushed(self) -> list[list[Any]]:
        return [json.loads(await self.ws.recv())]

    async def answer_pings(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await self.ws.recv()


WS_PROTOCOLS: dict[str, Callable[[str, int], Any]] = {
    "sente": SenteWs,
    "socketio": SocketIoWs,
    "bare": BareWs,
}


# ---------------------------------------------------------------------- scenarios


def payload_for(n: int) -> str:
    return f"client-{n:04d}-".ljust(PAYLOAD_BYTES, "x")


async def timed_loop(
    clients: list[Any],
    step: Callable[[Any, str], Awaitable[None]],
    *,
    warmup_s: float,
    duration_s: float,
) -> dict[str, Any]:
    """Each client runs ``step`` back to back; replies inside the window are counted."""
    start = time.perf_counter() + warmup_s
    end = start + duration_s
    latencies: list[float] = []
    errors = 0

    async def run(client: Any, n: int) -> None:
        nonlocal errors
        payload = payload_for(n)
        while True:
            t0 = time.perf_counter()
            if t0 >= end:
                return
            try:
                await step(client, payload)
            except Exception:
                errors += 1
                if errors > 100:
                    raise
                continue
            if t0 >= start:
                latencies.append(time.perf_counter() - t0)

    tasks = [asyncio.create_task(run(c, n)) for n, c in enumerate(clients)]
    await asyncio.sleep(max(0.0, start - time.perf_counter()))
    cpu0 = cpu_seconds()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds() - cpu0
    latencies.sort()
    return {
        "requests": len(latencies),
        "per_second": len(latencies) / duration_s,
        "p50_ms": 1000 * (percentile(latencies, 0.50) or 0.0),
        "p99_ms": 1000 * (percentile(latencies, 0.99) or 0.0),
        "errors": errors,
        "loadgen_cpu_pct": 100 * cpu / elapsed,
    }


async def open_all(proto: str, base: str, count: int, *, first: int = 0, parallel: int = 100):
    """Open ``count`` WebSocket clients, at most ``parallel`` handshakes at a time."""
    gate = asyncio.Semaphore(parallel)
    clients: list[Any] = []
    failures: list[str] = []

    async def one(n: int) -> None:
        client = WS_PROTOCOLS[proto](base, n)
        async with gate:
            try:
                await client.open()
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
                return
        clients.append(client)

    await asyncio.gather(*(one(n) for n in range(first, first + count)))
    return clients, failures


async def close_all(clients: list[Any]) -> None:
    async def one(client: Any) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.ws.close(), 5)

    await asyncio.gather(*(one(c) for c in clients))


async def ws_rr(args: argparse.Namespace) -> dict[str, Any]:
    clients, failures = await open_all(args.proto, args.url, args.clients)
    if failures:
        raise RuntimeError(f"{len(failures)} clients failed to connect: {failures[0]}")
    try:
        return await timed_loop(
            clients, lambda c, p: c.echo(p), warmup_s=args.warmup, duration_s=args.duration
        )
    finally:
        await close_all(clients)


async def push(args: argparse.Namespace) -> dict[str, Any]:
    """Every client asks the server to push it ``events`` events, all at once, for
    ``rounds`` rounds; each event carries the server's ``time.time()`` at its send, so
    its latency is from that send to its receipt here."""
    clients, failures = await open_all(args.proto, args.url, args.clients)
    if failures:
        raise RuntimeError(f"{len(failures)} clients failed to connect: {failures[0]}")
    try:
        return await pushes(clients, args)
    finally:
        await close_all(clients)


async def ajax_push(args: argparse.Namespace) -> dict[str, Any]:
    """:func:`push` over Ajax long-polling: each client's poll always waits for the next
    batch (Sente's client; Engine.IO's polling GET)."""
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        clients = [AJAX_PROTOCOLS[args.proto](session, args.url, n) for n in range(args.clients)]
        await asyncio.gather(*(c.open() for c in clients))
        await asyncio.gather(*(c.start_polling() for c in clients))
        try:
            return await pushes(clients, args)
        finally:
            await asyncio.gather(*(c.close() for c in clients))


async def pushes(clients: list[Any], args: argparse.Namespace) -> dict[str, Any]:
    latencies: list[float] = []
    received = 0
    elapsed = 0.0
    cpu = 0.0
    complete = True

    async def receive(client: Any) -> int:
        got = 0
        while got < args.events:
            batch = await client.pushed()
            now = time.time()
            latencies.extend(now - sent_at for _, sent_at in batch)
            got += len(batch)
        return got

    for _ in range(args.rounds):
        readers = [asyncio.create_task(receive(c)) for c in clients]
        cpu0 = cpu_seconds()
        start = time.perf_counter()
        await asyncio.gather(*(c.trigger_push(args.events) for c in clients))
        done, pending = await asyncio.wait(readers, timeout=args.timeout)
        elapsed += time.perf_counter() - start
        cpu += cpu_seconds() - cpu0
        for task in pending:
            task.cancel()
        received += sum(t.result() for t in done if not t.exception())
        if pending:
            complete = False
            break
    latencies.sort()
    return {
        "events": received,
        "expected": args.clients * args.events * args.rounds,
        "complete": complete,
        "seconds": elapsed,
        "per_second": received / elapsed if elapsed > 0 else 0.0,
        "p50_ms": 1000 * (percentile(latencies, 0.50) or 0.0),
        "p99_ms": 1000 * (percentile(latencies, 0.99) or 0.0),
        "loadgen_cpu_pct": 100 * cpu / max(elapsed, 1e-9),
    }


class SenteAjax:
    """Sente's Ajax: a handshake GET, then POSTs whose answer is the handler's reply; for
    pushes, one long-poll GET always waiting, as Sente's client does."""

    def __init__(self, session: aiohttp.ClientSession, base: str, n: int) -> None:
        self.session = session
        self.url = f"{base}/chsk"
        self.client_id = f"bench-ajax-c{n}"  # also its uid: the app's uid is the client-id
        self._batches: asyncio.Queue[list[list[Any]]] = asyncio.Queue()
        self._poller: asyncio.Task[None] | None = None

    async def open(self) -> None:
        params = {"client-id": self.client_id, "handshake?": "1"}
        async with self.session.get(self.url, params=params) as resp:
            assert resp.status == 200, resp.status
            assert json.loads(await resp.text())[0][0] == "chsk/handshake"

    async def start_polling(self) -> None:
        self._poller = asyncio.create_task(self._poll())

    async def _poll(self) -> None:
        params = {"client-id": self.client_id}
        while True:
            async with self.session.get(self.url, params=params) as resp:
                assert resp.status == 200, resp.status
                value, _ = json.loads(await resp.text())
            if isinstance(value, list):  # a batch; else chsk/timeout: poll again
                await self._batches.put([ev[1] for ev in value if ev[0] == "bench/pushed"])

    async def trigger_push(self, n: int) -> None:
        form = {"client-id": self.client_id, "ppstr": json.dumps([["bench/push-n", n]])}
        async with self.session.post(self.url, data=form) as resp:
            assert resp.status == 200, resp.status
            await resp.read()

    async def pushed(self) -> list[list[Any]]:
        return await self._batches.get()

    async def echo(self, payload: str) -> None:
        form = {"client-id": self.client_id, "ppstr": json.dumps([["test/echo", payload], "ajax"])}
        async with self.session.post(self.url, data=form) as resp:
            assert resp.status == 200, resp.status
            reply, _ = json.loads(await resp.text())
            assert reply == {"echo": payload}, reply

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._poller


class SocketIoPolling:
    """Socket.IO over Engine.IO v4 long-polling: one GET always waiting for packets, and a
    POST per emit; the ack comes back on the GET, as python-socketio's client does it."""

    def __init__(self, session: aiohttp.ClientSession, base: str, n: int) -> None:
        self.session = session
        self.url = f"{base}/socket.io/"
        self.params = {"EIO": "4", "transport": "polling", "uid": f"bench-ajax-u{n}"}
        self._acks = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._connected: asyncio.Future[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._pushed: asyncio.Queue[list[list[Any]]] = asyncio.Queue()

    async def _post(self, body: str) -> None:
        async with self.session.post(self.url, params=self.params, data=body.encode()) as resp:
            assert resp.status == 200, (resp.status, await resp.text())
            await resp.read()

    async def _get(self) -> list[str]:
        async with self.session.get(self.url, params=self.params) as resp:
            assert resp.status == 200, (resp.status, await resp.text())
            return (await resp.text()).split("\x1e")

    async def open(self) -> None:
        opened = (await self._get())[0]
        assert opened.startswith("0{"), opened
        self.params["sid"] = json.loads(opened[1:])["sid"]
        self._connected = asyncio.get_running_loop().create_future()
        self._poller = asyncio.create_task(self._poll())
        await self._post("40")
        await asyncio.wait_for(self._connected, 30)

    async def start_polling(self) -> None:
        pass  # its GET always waits already

    async def _poll(self) -> None:
        while True:
            pushed = []
            for packet in await self._get():
                if packet.startswith('42["pushed"'):
                    pushed.append(json.loads(packet[2:])[1])
                elif packet.startswith("43"):
                    body = packet.index("[")
                    future = self._waiting.pop(int(packet[2:body]), None)
                    if future is not None and not future.done():
                        future.set_result(json.loads(packet[body:]))
                elif packet == "2":
                    await self._post("3")
                elif packet.startswith("40") and self._connected and not self._connected.done():
                    self._connected.set_result(None)
            if pushed:
                await self._pushed.put(pushed)

    async def trigger_push(self, n: int) -> None:
        await self._post("42" + json.dumps(["push_n", n]))

    async def pushed(self) -> list[list[Any]]:
        return await self._pushed.get()

    async def echo(self, payload: str) -> None:
        ack = next(self._acks)
        future = self._waiting[ack] = asyncio.get_running_loop().create_future()
        await self._post(f"42{ack}" + json.dumps(["echo", payload]))
        assert await asyncio.wait_for(future, 30) == [{"echo": payload}]

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(Exception):
                await self._post("1")


AJAX_PROTOCOLS: dict[str, Callable[[aiohttp.ClientSession, str, int], Any]] = {
    "sente": SenteAjax,
    "socketio": SocketIoPolling,
}


async def ajax_rr(args: argparse.Namespace) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        clients = [AJAX_PROTOCOLS[args.proto](session, args.url, n) for n in range(args.clients)]
        await asyncio.gather(*(c.open() for c in clients))
        try:
            return await timed_loop(
                clients, lambda c, p: c.echo(p), warmup_s=args.warmup, duration_s=args.duration
            )
        finally:
            await asyncio.gather(*(c.close() for c in clients))


async def idle(args: argparse.Namespace) -> dict[str, Any]:
    """Hold idle WebSocket clients, driven by stdin: ``open N`` adds N, ``check`` asks each
    for an echo (are they all still served?), ``close`` ends. One JSON line per command."""
    clients: list[Any] = []
    readers: list[asyncio.Task[None]] = []
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := (await reader.readline()).decode().strip():
            command, *rest = line.split()
            if command == "open":
                t0 = time.perf_counter()
                cpu0 = cpu_seconds()
                opened, failures = await open_all(
                    args.proto, args.url, int(rest[0]), first=len(clients)
                )
                clients += opened
                readers += [asyncio.create_task(c.answer_pings()) for c in opened]
                emit(
                    {
                        "opened": len(opened),
                        "failed": len(failures),
                        "first_failure": failures[0] if failures else None,
                        "total": len(clients),
                        "seconds": time.perf_counter() - t0,
                        "loadgen_cpu_s": cpu_seconds() - cpu0,
                    }
                )
            elif command == "check":
                for task in readers:
                    task.cancel()
                await asyncio.gather(*readers, return_exceptions=True)
                alive = await count_alive(clients)
                readers = [asyncio.create_task(c.answer_pings()) for c in clients]
                emit({"alive": alive, "total": len(clients)})
            elif command == "close":
                break
    finally:
        for task in readers:
            task.cancel()
        await close_all(clients)
    return {"closed": len(clients)}


async def count_alive(clients: list[Any]) -> int:
    gate = asyncio.Semaphore(200)

    async def one(client: Any, n: int) -> bool:
        async with gate:
            try:
                await asyncio.wait_for(client.echo(payload_for(n)), 30)
            except Exception:
                return False
            return True

    return sum(await asyncio.gather(*(one(c, n) for n, c in enumerate(clients))))


# ---------------------------------------------------------------------- command line


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result), flush=True)


SCENARIOS = {
    "ws-rr": ws_rr,
    "push": push,
    "ajax-rr": ajax_rr,
    "ajax-push": ajax_push,
    "idle": idle,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--proto", choices=sorted(WS_PROTOCOLS), required=True)
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--events", type=int, default=1000, help="pushed events per client")
    parser.add_argument("--rounds", type=int, default=3, help="push: rounds of pushes")
    parser.add_argument("--timeout", type=float, default=60.0, help="push: give up a round after")
    args = parser.parse_args(argv)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop
    except ImportError:
        run = asyncio.run
    else:
        run = uvloop.run
    result = run(SCENARIOS[args.scenario](args))
    emit({"scenario": args.scenario, "proto": args.proto, "pid": os.getpid(), **result})


if __name__ == "__main__":
    main()
