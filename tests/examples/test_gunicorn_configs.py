"""``examples/gunicorn_*.conf.py``: gunicorn started with each file serves both transports."""

from __future__ import annotations

import contextlib
import runpy
import signal
import sys
from collections.abc import Iterator

import pytest
import requests

from flask_sente.client import Client
from tests.support import GUNICORN_READY, ROOT, ServerProcess, wait_until

CONFIGS = {
    "gthread": "examples/gunicorn_gthread.conf.py",
    "gevent": "examples/gunicorn_gevent.conf.py",
}


@contextlib.contextmanager
def gunicorn(worker: str) -> Iterator[ServerProcess]:
    server = ServerProcess(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            CONFIGS[worker],
            "--bind",
            "127.0.0.1:0",
            "examples.conformance:create_app()",
        ],
        ready=GUNICORN_READY,
        env={"SENTE_LP_TIMEOUT_MS": "1500"},
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("worker", CONFIGS)
def test_config_serves_websocket_and_ajax(worker: str) -> None:
    with gunicorn(worker) as server:
        wait_until(lambda: f"Using worker: {worker}" in "".join(server.output))
        for transport in ("ws", "ajax"):
            uid = f"{worker}-{transport}"
            with Client(server.url + "/chsk", type=transport, params={"uid": uid}) as chsk:
                assert chsk.state["type"] == transport
                assert chsk.request(["test/echo", {"n": 1}], timeout=5) == {"echo": {"n": 1}}
                pushed = requests.get(
                    server.url + "/push", params={"uid": uid, "data": "x"}, timeout=5
                )
                assert pushed.text == "ok"
                msg = chsk.next_event(timeout=5)
                while msg is not None and msg.id != "test/oob-push":
                    msg = chsk.next_event(timeout=5)
                assert msg is not None and msg.data == "x"


def test_gthread_shutdown_closes_websockets_going_away() -> None:
    with (
        gunicorn("gthread") as server,
        Client(server.url + "/chsk", type="ws", params={"uid": "bye"}) as chsk,
    ):
        server.kill(signal.SIGTERM)
        assert chsk.state.wait_for(lambda s: "last-ws-close" in s, timeout=10)
        assert chsk.state["last-ws-close"]["code"] == 1001
        server.proc.wait(10)


def test_gevent_shutdown_ends_websockets_within_the_graceful_timeout() -> None:
    with (
        gunicorn("gevent") as server,
        Client(server.url + "/chsk", type="ws", params={"uid": "bye"}) as chsk,
    ):
        graceful_s = runpy.run_path(str(ROOT / CONFIGS["gevent"]))["graceful_timeout"]
        server.kill(signal.SIGTERM)
        assert chsk.state.wait_for(lambda s: "last-ws-close" in s, timeout=graceful_s + 5)
        server.proc.wait(5)
