"""Bounded waits and servers for the client tests (no bare sleeps anywhere)."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask_sente.client import Client, ClientEventMsg
from flask_sente.client.recovery import parse_seq
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]
CLIENT_THREAD_PREFIX = "flask_sente.client"


def next_matching(
    client: Client, predicate: Callable[[ClientEventMsg], bool], timeout: float = 5.0
) -> ClientEventMsg:
    """Read ``client``'s events until one matches; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        left = deadline - time.monotonic()
        msg = client.next_event(max(left, 0)) if left > 0 else None
        if msg is None:
            raise AssertionError(f"no matching event within {timeout} s; saw {seen}")
        if predicate(msg):
            return msg
        seen.append(msg.event)


def next_id(client: Client, event_id: str, timeout: float = 5.0) -> ClientEventMsg:
    return next_matching(client, lambda m: m.id == event_id, timeout)


def received_stream(client: Client, count: int, timeout: float = 20.0) -> list[Any]:
    """The data of ``client``'s ``test/n`` pushes until ``test/end`` (which must come)."""
    got: list[Any] = []
    while True:
        msg = next_matching(client, lambda m: m.id in ("test/n", "test/end"), timeout)
        if msg.id == "test/end":
            return got
        got.append(msg.data)
        assert len(got) <= count, f"more than {count} pushes: {got}"


class Pusher:
    """Pushes ``["test/n", i]`` for i in 0..count-1, then ``["test/end"]``, from a thread.

    Before push ``i`` in ``breaks`` it waits until the client has received every earlier
    push (its ``last_seq`` reached ``i``), then calls ``breaks[i]()``: the pushes that follow
    meet a broken connection. Errors are raised again when the ``with`` block ends.
    """

    def __init__(
        self,
        push: Callable[[list[Any]], None],
        client: Client,
        count: int,
        breaks: dict[int, Callable[[], None]] | None = None,
    ) -> None:
        self.push, self.client, self.count = push, client, count
        self.breaks = breaks or {}
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="test-pusher", daemon=True)

    def _caught_up(self, i: int) -> bool:
        seq = parse_seq(self.client.last_seq)
        return (seq[1] if seq else 0) == i

    def _run(self) -> None:
        try:
            for i in range(self.count):
                if i in self.breaks:
                    wait_until(lambda i=i: self._caught_up(i), 20)
                    self.breaks[i]()
                self.push(["test/n", i])
            self.push(["test/end"])
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> Pusher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join(60)
        assert not self._thread.is_alive(), "the pusher is stuck"
        if self.error is not None:
            raise self.error


def client_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(CLIENT_THREAD_PREFIX)]


def assert_no_client_threads(timeout: float = 10.0) -> None:
    try:
        wait_until(lambda: not client_threads(), timeout)
    except AssertionError:
        raise AssertionError(f"client threads left: {[t.name for t in client_threads()]}") from None


class Conformance:
    """``examples/conformance.py`` in a subprocess; restartable on the same port."""

    READY = re.compile(r"listening on (http://\S+)")

    def __init__(self, *args: str, port: int = 0) -> None:
        self.args = list(args)
        self.port = port
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/chsk"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Conformance:
        argv = [sys.executable, "examples/conformance.py", "--port", str(self.port), *self.args]
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        lines: queue.Queue[str] = queue.Queue()

        def read(proc: subprocess.Popen[str] = self.proc) -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                self.output.append(line)
                lines.put(line)

        threading.Thread(target=read, name="conformance-output", daemon=True).start()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("conformance app did not start:\n" + "".join(self.output))
            try:
                line = lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            match = self.READY.search(line)
            if match:
                self.port = int(match.group(1).rsplit(":", 1)[1].rstrip("/"))
                return self

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
