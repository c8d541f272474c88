"""Soak: does memory stay flat under churned connections, in one process and through Redis?

    python benchmarks/soak.py [--setup both|one|redis] [--minutes 10] [--clients 150]

Runs the conformance app under gunicorn (gthread, 64 threads a worker) on 127.0.0.1 in each
set-up, one after the other, ``--minutes`` each:

* ``one``: one worker, no broker (the default deployment);
* ``redis``: two workers sharing a Redis bus (a ``redis-server`` started here, on a free
  port), so pushes, presence and Ajax polls cross workers.

Meanwhile ``--clients`` threads churn channel sockets over both transports
(``benchmarks/soak_clients.py``). Every ``--interval`` seconds it samples the resident memory
(``VmRSS``) of each worker and of ``redis-server``, and prints it. At the end it prints, per
process, RSS at start (before any client), after warm-up and at the end (means of three
samples), and the least-squares slope over the second half of the run, with the cycles and
failures of each set-up: a table ready for ``docs/reliability.md``. A step (an allocator
arena, a high-water mark) shows in the growth but not in the late slope; a leak shows in both.

It exits 1 when a process grew more than ``--max-growth-mib`` after warm-up, when a worker
died or was replaced, or when more than ``--max-error-rate`` of the cycles failed. Every
request is bounded by a timeout, and every process started here is stopped on the way out.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.soak_clients import TIMEOUT_S, Stats, client_thread  # noqa: E402

SETUPS = {"one": "one process", "redis": "Redis bus, 2 workers"}
#: The conformance app records uidport events in Redis for the cluster tests; not here.
UIDPORT_RECORD = "conformance:uidport"


# ---------------------------------------------------------------------------- processes


class Started:
    """A process group started here, stopped (SIGTERM, then SIGKILL) by :meth:`stop`."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log = [*self.log[-200:], line]

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(workdir: str) -> tuple[Started, str]:
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    server = Started([*argv, "--appendonly", "no", "--dir", workdir])
    wait_for(lambda: "Ready to accept" in "".join(server.log), 20, "redis-server")
    return server, f"redis://127.0.0.1:{port}/0"


#: A gunicorn config file: each worker says when it has loaded the app.
READY_HOOK = """
def post_worker_init(worker):
    print("soak: worker", worker.pid, "ready", flush=True)
"""


def start_gunicorn(
    workers: int, threads: int, env: dict[str, str], workdir: str
) -> tuple[Started, str]:
    port = free_port()
    hook = Path(workdir) / "ready.py"
    hook.write_text(READY_HOOK)
    argv = [sys.executable, "-m", "gunicorn", "-c", str(hook), "-k", "gthread"]
    argv += ["-w", str(workers), "--threads", str(threads), "-b", f"127.0.0.1:{port}"]
    server = Started([*argv, "--graceful-timeout", "3", "examples.conformance:create_app()"], env)
    ready = lambda: "".join(server.log).count("soak: worker") == workers  # noqa: E731
    wait_for(ready, 60, "gunicorn workers with the app loaded")
    return server, f"http://127.0.0.1:{port}"


def children(pid: int) -> list[int]:
    """The child processes of ``pid``, from /proc."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    with contextlib.suppress(OSError):
        return sorted(int(p) for p in path.read_text().split())
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return sorted(found)


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


# ---------------------------------------------------------------------------- one set-up


@dataclass
class Result:
    setup: str
    stats: Stats
    #: process name -> [(seconds since start, KiB)]
    samples: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    #: Redis's key count at each sample (mailboxes, presence): it must level off too.
    keys: list[tuple[float, int]] = field(default_factory=list)
    failure: str | None = None


def run_setup(setup: str, args: argparse.Namespace) -> Result:
    result = Result(setup, Stats())
    env = {"SENTE_LP_TIMEOUT_MS": "5000"}
    started: list[Started] = []
    stop = threading.Event()
    threads: list[threading.Thread] = []
    workdir = tempfile.TemporaryDirectory(prefix="soak-")
    try:
        if setup == "redis":
            redis_server, redis_url = start_redis(workdir.name)
            started.append(redis_server)
            env["SENTE_MESSAGE_QUEUE"] = redis_url
        workers = 2 if setup == "redis" else 1
        gunicorn, url = start_gunicorn(workers, args.threads, env, workdir.name)
        started.append(gunicorn)
        pids = {f"worker {i + 1}": pid for i, pid in enumerate(children(gunicorn.proc.pid))}
        if setup == "redis":
            pids["redis-server"] = redis_server.proc.pid
        print(f"\n{SETUPS[setup]}: gunicorn at {url}, processes {pids}", flush=True)
        result.samples = {name: [] for name in pids}
        start = time.monotonic()
        end = start + args.minutes * 60
        print(f"{'t (s)':>7} {'RSS (MiB)':>28} {'cycles':>8} {'failed':>7}", flush=True)
        while True:
            now = time.monotonic()
            if children(gunicorn.proc.pid) != sorted(p for n, p in pids.items() if "worker" in n):
                result.failure = "a gunicorn worker died or was replaced"
                break
            if setup == "redis":
                redis_client(env["SENTE_MESSAGE_QUEUE"], "DEL", UIDPORT_RECORD)
                keys = redis_client(env["SENTE_MESSAGE_QUEUE"], "DBSIZE")
                result.keys.append((now - start, int(keys)))
            for name, pid in pids.items():
                result.samples[name].append((now - start, rss_kib(pid) or 0))
            with result.stats.lock:
                done = sum(result.stats.cycles.values())
                failed = sum(result.stats.errors.values())
            shown = " ".join(f"{s[-1][1] / 1024:.1f}" for s in result.samples.values())
            print(f"{now - start:7.0f} {shown:>28} {done:8d} {failed:7d}", flush=True)
            if not threads:  # the first sample is taken before any client
                for n in range(args.clients):
                    thread = threading.Thread(
                        target=client_thread, args=(n, url, stop, result.stats), daemon=True
                    )
                    thread.start()
                    threads.append(thread)
            if now >= end:
                break
            time.sleep(min(args.interval, max(0.0, end - time.monotonic())))
    except KeyboardInterrupt:
        result.failure = "interrupted"
    finally:
        stop.set()
        for thread in threads:
            thread.join(TIMEOUT_S * 3)
        for process in reversed(started):
            process.stop()
        workdir.cleanup()
    return result


def redis_client(url: str, *command: str) -> Any:
    """One command through redis-py (the bus's own client library)."""
    import redis

    with contextlib.closing(redis.Redis.from_url(url)) as client:
        return client.execute_command(*command)


# ---------------------------------------------------------------------------- figures


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


@dataclass
class Figures:
    start: float
    warm: float
    end: float
    late_slope: float

    @property
    def growth(self) -> float:
        return self.end - self.warm


def figures(samples: list[tuple[float, int]], warmup_s: float, run_s: float) -> Figures | None:
    after = [s for s in samples if s[0] >= warmup_s]
    late = [s for s in samples if s[0] >= run_s / 2]
    if len(after) < 4 or len(late) < 3:
        return None
    return Figures(
        start=samples[0][1] / 1024,
        warm=mean_mib(after[:3]),
        end=mean_mib(after[-3:]),
        late_slope=slope_mib_per_min(late),
    )


def table(results: list[Result], args: argparse.Namespace, warmup_s: float) -> str:
    lines = [
        "| set-up | process | cycles (WS / Ajax) | failed | RSS start (MiB) | "
        f"after warm-up ({warmup_s / 60:g} min) | end | slope, second half (MiB/min) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        cycles = result.stats.cycles
        failed = sum(result.stats.errors.values())
        first = True
        for name, samples in result.samples.items():
            f = figures(samples, warmup_s, args.minutes * 60)
            shown = (
                f"{f.start:.1f} | {f.warm:.1f} | {f.end:.1f} | {f.late_slope:+.3f}"
                if f is not None
                else "too few samples | | |"
            )
            head = (
                f"{SETUPS[result.setup]} | {name} | {cycles['ws']:,} / {cycles['ajax']:,} | "
                f"{failed:,}"
                if first
                else f" | {name} | |"
            )
            lines.append(f"| {head} | {shown} |")
            first = False
    return "\n".join(lines)


def verdict(result: Result, args: argparse.Namespace, warmup_s: float) -> str | None:
    if result.failure is not None:
        return result.failure
    for name, samples in result.samples.items():
        f = figures(samples, warmup_s, args.minutes * 60)
        if f is None:
            return f"{name}: too few samples after warm-up; run longer"
        if f.growth > args.max_growth_mib:
            return f"{name} grew {f.growth:.1f} MiB after warm-up (limit {args.max_growth_mib})"
    done = sum(result.stats.cycles.values())
    failed = sum(result.stats.errors.values())
    rate = failed / (done + failed) if done + failed else 1.0
    if rate > args.max_error_rate:
        return f"{rate:.2%} of the cycles failed (limit {args.max_error_rate:.2%})"
    return None


def commit() -> str:
    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True).stdout

    dirty = "+uncommitted changes" if git("status", "--porcelain", "flask_sente").strip() else ""
    return git("rev-parse", "--short", "HEAD").strip() + dirty


# ---------------------------------------------------------------------------- main


def interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--setup", choices=["both", *SETUPS], default="both")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of each set-up's run")
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
    signal.signal(signal.SIGTERM, interrupt)  # ends the run early, through the same clean-up
    setups = list(SETUPS) if args.setup == "both" else [args.setup]
    results = [run_setup(setup, args) for setup in setups]

    print(
        f"\nflask_sente at {commit()}, {args.minutes:g} min per set-up, {args.clients} clients "
        f"(WebSocket and Ajax), gunicorn gthread --threads {args.threads}, "
        f"{os.cpu_count()} CPUs\n"
    )
    print(table(results, args, warmup_s))
    status = 0
    for result in results:
        for what, count in result.stats.errors.most_common(5):
            print(f"  {SETUPS[result.setup]}: failed x{count}: {what}")
        failure = verdict(result, args, warmup_s)
        if result.keys:
            after = [n for t, n in result.keys if t >= warmup_s] or [0]
            print(
                f"  {SETUPS[result.setup]}: Redis keys at start {result.keys[0][1]:,}, after "
                f"warm-up {after[0]:,}, at the end {after[-1]:,}"
            )
        print(f"{SETUPS[result.setup]}: {'FAIL: ' + failure if failure else 'OK, memory flat'}")
        status |= failure is not None
    return status


if __name__ == "__main__":
    sys.exit(main())
