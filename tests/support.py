"""Test support: real servers on 127.0.0.1 (in-process or as subprocesses), bounded waits."""

from __future__ import annotations

import contextlib
import importlib
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest
import redis
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[1]
# Copies of the protocol reference (vectors, captured traffic, transcripts): a clone tests itself.
PROTOCOL_DIR = ROOT / "tests" / "fixtures" / "protocol"


# ---------------------------------------------------------------------------- test dependencies


def under_ci() -> bool:
    """Whether the run is CI's (``CI`` set to anything but empty, 0, false or no)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(what: str, install: str) -> NoReturn:
    """A test dependency is missing: a skip on a developer's machine, a failure under CI,
    where a broken install must not pass as a few skipped tests."""
    message = f"{what} is missing ({install})"
    if under_ci():
        pytest.fail(f"{message}; under CI every test must run", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def require_module(name: str, install: str) -> ModuleType:
    """``import name``, or :func:`missing` (usable at module level)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"the Python module {name}", install)


def require_program(name: str, install: str) -> str:
    """The path of a program (a name on PATH or an absolute path), or :func:`missing`."""
    path = shutil.which(name) or (
        name if Path(name).is_absolute() and Path(name).exists() else None
    )
    if path is None:
        missing(f"the program {name}", install)
    return path


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        time.sleep(interval)


@contextlib.contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Serve ``app`` with the threaded Werkzeug server on a free port; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        sente = app.extensions.get("sente")
        if sente is not None:
            sente.close()
        server.shutdown()
        server.server_close()
        thread.join(5)


class ServerProcess:
    """A server in a subprocess; ``url`` is read from the line it prints when ready."""

    def __init__(
        self,
        argv: list[str],
        *,
        ready: str,
        env: dict[str, str] | None = None,
        timeout: float = 20.0,
        url: str | None = None,
    ) -> None:
        self.argv = argv
        # the checkout under test, whatever flask_sente the environment has installed
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path, **(env or {})}
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        pattern = re.compile(ready)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"server did not start: {argv}\n" + "".join(self.output))
            try:
                line = self.lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            match = pattern.search(line)
            if match:
                self.url = url or match.group(1).rstrip("/")
                return

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
                self.proc.wait(5)


CONFORMANCE_READY = r"listening on (http://\S+)"
GUNICORN_READY = r"Listening at: (http://\S+)"


def conformance_process(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
    return ServerProcess(
        [sys.executable, "examples/conformance.py", "--port", "0", *args],
        ready=CONFORMANCE_READY,
        env=env,
    )


def gunicorn_process(
    worker: str, *extra: str, env: dict[str, str] | None = None, port: int = 0
) -> ServerProcess:
    """gunicorn serving the conformance app; ``port`` 0 lets the kernel pick one (not with
    ``--reuse-port``, where each worker would get its own)."""
    return ServerProcess(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-k",
            worker,
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "info",
            "--graceful-timeout",
            "3",
            *extra,
            "examples.conformance:create_app()",
        ],
        ready=GUNICORN_READY if port == 0 else r"(Booting worker)",
        env=env,
        url=None if port == 0 else f"http://127.0.0.1:{port}",
    )


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def established_connections(pids: list[int], port: int) -> dict[int, int]:
    """How many established TCP connections to local ``port`` each process holds (read
    from ``/proc``), so a test can pick the gunicorn worker that serves some clients."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
                    inodes.add(fields[9])
    held: dict[int, int] = {}
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        count = 0
        for fd in fd_dir.iterdir() if fd_dir.is_dir() else []:
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    count += 1
        held[pid] = count
    return held


class RedisServer:
    """redis-server in a subprocess; ``restart()`` keeps its port (and loses its data)."""

    def __init__(self) -> None:
        require_program("redis-server", "apt-get install redis-server; .ci/run installs it")
        self.dir = tempfile.mkdtemp(prefix="sente-redis-")
        self.proc: subprocess.Popen[bytes] | None = None
        for _ in range(3):  # a free port may be taken before redis-server binds it
            self.port = free_port()
            self.url = f"redis://127.0.0.1:{self.port}/0"
            try:
                self.start()
                return
            except RuntimeError:
                continue
        raise RuntimeError("redis-server would not start on a free port")

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)

        def pong() -> bool:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited (port {self.port} taken?)")
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_until(pong, timeout=10, interval=0.05)
        client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True)
