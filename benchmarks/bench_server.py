"""flask_sente beside Flask-SocketIO and a bare flask-sock echo server, side by side, in one run.

For each gunicorn mode (``gthread``, then ``gevent``; one worker each) it starts, in turn,
the flask_sente app (``benchmarks/sente_app.py``), the Flask-SocketIO app
(``benchmarks/socketio_app.py``) and the bare flask-sock echo server
(``benchmarks/flasksock_app.py``, WebSocket only), and drives each with
``benchmarks/loadgen.py``:

* WebSocket request/reply: 50 clients, 64-byte payloads, send, await the reply, repeat;
* push: 50 connected users each asking for 1,000 events (3 rounds), timed send to receipt;
* Ajax request/reply: 50 clients (Sente's POST with a callback; Socket.IO long-polling
  with an acknowledged emit);
* Ajax push: the push scenario over long-polling;
* under gevent only, on a fresh server: the worker's resident memory before and after
  1,000 idle WebSocket connections, then up to 5,000 of them, checked with an echo each.

Each framework and mode runs ``--repeat`` times (3), alternating who goes first; every
figure is the median of its runs. Besides each rate, the server worker's CPU time per
request (or event), which a machine shared with other work disturbs far less than the rate.
The server is pinned to CPU 0 and the load generator to CPU 1 (when there are two). It
prints one table, ready to paste, with the ratios to Flask-SocketIO and to flask-sock under
gevent and the targets of issue 16. Everything listens on 127.0.0.1 only, on ports the kernel
picks; every process started here is killed (its whole process group) on the way out, error
or not. About 20 minutes on a quiet machine; ``--quick`` (one short run each, no 5,000) takes
about three::

    python benchmarks/bench_server.py            # the figures for docs/benchmarks.md
    python benchmarks/bench_server.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOADGEN = ROOT / "benchmarks" / "loadgen.py"
APPS = {
    "flask_sente": ("benchmarks.sente_app:create_app()", "sente"),
    "Flask-SocketIO": ("benchmarks.socketio_app:create_app()", "socketio"),
    "flask-sock": ("benchmarks.flasksock_app:create_app()", "bare"),
}
FRAMEWORKS = tuple(APPS)
#: The scenarios each framework runs: the bare server has no Ajax.
SCENARIOS = {
    "flask_sente": ("ws", "push", "ajax", "ajax_push"),
    "Flask-SocketIO": ("ws", "push", "ajax", "ajax_push"),
    "flask-sock": ("ws", "push"),
}
SOCKETIO_ASYNC_MODE = {"gthread": "threading", "gevent": "gevent"}
SERVER_CPUS = {0}
LOADGEN_CPUS = {1}
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    pass


# ---------------------------------------------------------------------- processes


class Processes:
    """Every process group started by the run, killed on exit whatever happens."""

    def __init__(self, *, pin: bool) -> None:
        self.pin = pin
        self._started: list[subprocess.Popen[str]] = []

    def start(
        self, argv: list[str], *, cpus: set[int], env: dict[str, str] | None = None, **kw: Any
    ) -> subprocess.Popen[str]:
        def preexec() -> None:
            if self.pin:
                os.sched_setaffinity(0, cpus)

        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=child_env(env),
            text=True,
            start_new_session=True,
            preexec_fn=preexec,
            **kw,
        )
        self._started.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[str], *, grace_s: float = 10.0) -> None:
        if proc.poll() is None:
            killpg(proc, signal.SIGTERM)
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                killpg(proc, signal.SIGKILL)
                proc.wait(5)
        killpg(proc, signal.SIGKILL)  # anything left in its group

    def stop_all(self) -> None:
        for proc in reversed(self._started):
            with contextlib.suppress(Exception):
                self.stop(proc, grace_s=5.0)


def killpg(proc: subprocess.Popen[str], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def child_env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        env.pop(proxy, None)
    return env


class Server:
    """One gunicorn master with one worker, listening on a port the kernel picked."""

    def __init__(self, procs: Processes, name: str, mode: str) -> None:
        self.name = name
        app, _ = APPS[name]
        worker = ["-k", "gthread", "--threads", "200"] if mode == "gthread" else ["-k", "gevent"]
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            *worker,
            "--workers",
            "1",
            "--worker-connections",
            "10000",
            "--bind",
            "127.0.0.1:0",
            "--log-level",
            "info",
            "--graceful-timeout",
            "3",
            "--no-control-socket",
            app,
        ]
        self.procs = procs
        self.proc = procs.start(
            argv,
            cpus=SERVER_CPUS,
            env={"BENCH_ASYNC_MODE": SOCKETIO_ASYNC_MODE[mode]},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.output: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self._wait_for(r"Listening at: (http://\S+)").rstrip("/")
        self.worker_pid = int(self._wait_for(r"Booting worker with pid: (\d+)"))
        self._wait_until_serving()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self._lines.put(line)

    def _wait_for(self, pattern: str, timeout_s: float = 30.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.proc.poll() is None:
            with contextlib.suppress(queue.Empty):
                match = re.search(pattern, self._lines.get(timeout=0.2))
                if match:
                    return match.group(1)
        raise BenchError(f"{self.name} did not start:\n" + "".join(self.output[-30:]))

    def _wait_until_serving(self, timeout_s: float = 30.0) -> None:
        """The worker imports the app after it boots: wait for a first HTTP answer."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/", timeout=2).close()
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        raise BenchError(f"{self.name} never answered:\n" + "".join(self.output[-30:]))

    def rss_kb(self) -> int:
        status = Path(f"/proc/{self.worker_pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]

    def cpu_s(self) -> float:
        """The worker's CPU time, every thread's (those that ended too), in clock ticks."""
        fields = Path(f"/proc/{self.worker_pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def stop(self) -> None:
        self.procs.stop(self.proc)


@contextlib.contextmanager
def running(procs: Processes, name: str, mode: str) -> Iterator[Server]:
    server = Server(procs, name, mode)
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------------- scenarios


def machine_busy_s() -> float:
    """CPU seconds spent by everything on the machine so far (``/proc/stat``)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def own_cpu_s() -> float:
    """CPU seconds of this process and of its reaped children (the load generators)."""
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def wait_for_quiet(opts: argparse.Namespace) -> None:
    """Other processes share this machine: wait (bounded) until they leave it nearly idle."""
    deadline = time.monotonic() + opts.quiet_wait
    while True:
        busy0, t0 = machine_busy_s(), time.monotonic()
        time.sleep(1.0)
        busy_pct = 100 * (machine_busy_s() - busy0) / (time.monotonic() - t0)
        if busy_pct <= opts.quiet_pct:
            return
        if time.monotonic() >= deadline:
            log(f"  (machine still {busy_pct:.0f}% busy after {opts.quiet_wait:g} s; going on)")
            return


def loadgen(
    procs: Processes, server: Server, scenario: str, *args: str, timeout_s: float = 120.0
) -> dict[str, Any]:
    """Run one load-generator scenario; its JSON result, plus the CPU use of the server
    worker and of every other process on the machine meanwhile (``other_cpu_pct``)."""
    _, proto = APPS[server.name]
    argv = [sys.executable, str(LOADGEN), scenario, "--proto", proto, "--url", server.url, *args]
    proc = procs.start(argv, cpus=LOADGEN_CPUS, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    cpu0, t0 = server.cpu_s(), time.monotonic()
    busy0, own0 = machine_busy_s(), own_cpu_s()
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        procs.stop(proc)
        raise BenchError(f"loadgen {scenario} against {server.name} timed out") from None
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise BenchError(
            f"loadgen {scenario} against {server.name} failed:\n{err[-3000:]}\n"
            + "".join(server.output[-20:])
        )
    result = json.loads(out.strip().splitlines()[-1])
    server_s = server.cpu_s() - cpu0
    done = result.get("requests") or result.get("events")
    if done:
        # the whole run (warm-up, connecting) over the measured work: an upper bound
        result["server_us_per_op"] = 1e6 * server_s / done
    other_s = machine_busy_s() - busy0 - server_s - (own_cpu_s() - own0)
    result["server_cpu_pct"] = 100 * server_s / wall
    result["other_cpu_pct"] = max(0.0, 100 * other_s / wall)
    log(f"  {scenario:8} {summary(result)}")
    return result


def summary(result: dict[str, Any]) -> str:
    keys = ("per_second", "server_us_per_op", "p50_ms", "p99_ms", "errors", "complete")
    shown = {k: round(result[k], 1) for k in keys if k in result}
    shown["server_cpu_pct"] = round(result["server_cpu_pct"], 1)
    shown["other_cpu_pct"] = round(result["other_cpu_pct"], 1)
    return " ".join(f"{k}={v}" for k, v in shown.items())


def throughput(procs: Processes, name: str, mode: str, opts: argparse.Namespace) -> dict[str, Any]:
    log(f"{name} under gunicorn {mode}")
    timed = ["--clients", "50", "--duration", str(opts.duration), "--warmup", "1"]
    pushes = ["--clients", "50", "--events", str(opts.events), "--rounds", str(opts.rounds)]
    scenarios = {
        "ws": ("ws-rr", *timed),
        "push": ("push", *pushes),
        "ajax": ("ajax-rr", *timed),
        "ajax_push": ("ajax-push", *pushes),
    }
    results: dict[str, Any] = {}
    with running(procs, name, mode) as server:
        for key in SCENARIOS[name]:
            scenario, *args = scenarios[key]
            wait_for_quiet(opts)
            results[key] = loadgen(procs, server, scenario, *args)
    return results


class IdleClients:
    """The load generator's ``idle`` scenario, driven step by step."""

    def __init__(self, procs: Processes, server: Server) -> None:
        _, proto = APPS[server.name]
        argv = [sys.executable, str(LOADGEN), "idle", "--proto", proto, "--url", server.url]
        self.procs = procs
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed in close())
        self.proc = procs.start(
            argv,
            cpus=LOADGEN_CPUS,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._answers: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._answers.put(line)

    def ask(self, command: str, timeout_s: float = 120.0) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        try:
            return json.loads(self._answers.get(timeout=timeout_s))
        except queue.Empty:
            self._stderr.seek(0)
            err = self._stderr.read()[-3000:]
            raise BenchError(f"idle clients did not answer {command!r}\n{err}") from None

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError, BenchError):
            self.ask("close", timeout_s=60)
        self.procs.stop(self.proc)
        self._stderr.close()


def settled_rss(server: Server, *, settle_s: float = 2.0) -> int:
    time.sleep(settle_s)
    return server.rss_kb()


def memory(procs: Processes, name: str, opts: argparse.Namespace) -> dict[str, Any]:
    """RSS per idle WebSocket on a fresh gevent worker, then how many of ``idle_max`` it holds."""
    log(f"{name} under gunicorn gevent: idle WebSocket connections")
    with running(procs, name, "gevent") as server:
        warm = ["--clients", "50", "--duration", "1", "--warmup", "0"]
        loadgen(procs, server, "ws-rr", *warm)
        wait_for_quiet(opts)
        idle = IdleClients(procs, server)
        try:
            before = settled_rss(server)
            opened = idle.ask(f"open {opts.idle}")
            after = settled_rss(server)
            check = idle.ask("check")
            per_conn_kb = (after - before) / max(1, opened["total"])
            log(
                f"  idle     {opened['total']} open ({opened['failed']} failed), "
                f"RSS {before} -> {after} kB = {per_conn_kb:.1f} kB each, "
                f"{check['alive']} answer"
            )
            result: dict[str, Any] = {
                "rss_before_kb": before,
                "rss_after_kb": after,
                "idle_open": opened["total"],
                "idle_alive": check["alive"],
                "kb_per_conn": per_conn_kb,
            }
            if opts.idle_max > opts.idle:
                more = idle.ask(f"open {opts.idle_max - opts.idle}", timeout_s=300)
                time.sleep(opts.hold)
                rss_max = server.rss_kb()
                held = idle.ask("check", timeout_s=300)
                log(
                    f"  idle     {more['total']} open ({more['failed']} failed: "
                    f"{more['first_failure']}), {held['alive']} answer after {opts.hold:g} s, "
                    f"RSS {rss_max} kB"
                )
                result |= {
                    "max_target": opts.idle_max,
                    "max_open": more["total"],
                    "max_alive": held["alive"],
                    "max_open_s": opened["seconds"] + more["seconds"],
                    "max_rss_kb": rss_max,
                    "max_first_failure": more["first_failure"],
                }
        finally:
            idle.close()
    return result


# ---------------------------------------------------------------------- the run


def ratio(a: float, b: float) -> str:
    if not b:
        return "n/a"
    return f"{a / b:.2f}x" if a >= b else f"{a / b:.3f}x"


def judged(a: float, b: float, target: str) -> str:
    if not target or not b:
        return target
    bound = float(target[2:-1])
    met = a / b >= bound if target.startswith(">=") else a / b <= bound
    return f"{target} {'yes' if met else 'NO'}"


def source_version() -> str:
    """Which flask_sente was measured: the commit of this checkout, and whether it is dirty."""
    try:
        return subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="gthread,gevent", help="comma-separated")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per timed run")
    parser.add_argument("--events", type=int, default=1000, help="pushed events per client")
    parser.add_argument("--rounds", type=int, default=3, help="push rounds per run")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per server and mode; medians count"
    )
    parser.add_argument("--idle", type=int, default=1000, help="idle WS for the memory figure")
    parser.add_argument("--idle-max", type=int, default=5000, help="idle WS to try to hold")
    parser.add_argument("--hold", type=float, default=10.0, help="seconds to hold them")
    parser.add_argument(
        "--quiet-pct", type=float, default=15.0, help="machine CPU %% that counts as quiet"
    )
    parser.add_argument(
        "--quiet-wait", type=float, default=10.0, help="longest wait for quiet before a run"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: one 2 s run each, 1 push round, 200 idle WS, no 5,000",
    )
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="no CPU pinning")
    opts = parser.parse_args(argv)
    if opts.quick:
        opts.duration, opts.events, opts.rounds, opts.repeat = 2.0, 1000, 1, 1
        opts.idle, opts.idle_max, opts.quiet_wait = 200, 0, 0.0
    opts.modes = [m.strip() for m in opts.modes.split(",") if m.strip()]
    if opts.pin and len(os.sched_getaffinity(0)) < 2:
        opts.pin = False
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it
    if hard < 3 * opts.idle_max + 1000:
        log(f"note: the open-file limit ({hard}) may not allow {opts.idle_max} connections")

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    procs = Processes(pin=opts.pin)
    results: dict[str, Any] = {name: {"throughput": {}} for name in FRAMEWORKS}
    started = time.monotonic()
    try:
        for mode in opts.modes:
            for round_ in range(opts.repeat):
                # rotate who goes first, so a drift in the machine's load hits all alike
                order = FRAMEWORKS[round_ % 3 :] + FRAMEWORKS[: round_ % 3]
                for name in order:
                    runs = results[name]["throughput"].setdefault(mode, [])
                    runs.append(throughput(procs, name, mode, opts))
        if "gevent" in opts.modes and opts.idle > 0:
            for name in FRAMEWORKS:
                results[name]["memory"] = memory(procs, name, opts)
    except KeyboardInterrupt:
        log("interrupted: stopping every process started")
        sys.exit(130)
    finally:
        procs.stop_all()
    pinning = "server on CPU 0, load generator on CPU 1" if opts.pin else "no CPU pinning"
    print(
        f"\nflask_sente vs Flask-SocketIO vs bare flask-sock, gunicorn 1 worker, "
        f"{os.cpu_count()} CPUs ({pinning}), flask_sente at {source_version()}, "
        f"medians of {opts.repeat} run(s){' (--quick)' if opts.quick else ''}, "
        f"{time.monotonic() - started:.0f} s\n"
    )
    from bench_table import table  # beside this script (bench_connections imports it whole)

    print(table(results))
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
