"""Push recovery against the project's own server: ``examples/conformance.py`` in this
process, so that the tests push with ``sente.send`` and close connections from the server.

Each test pushes 100 numbered events (``test/n``, flushed one by one) to a client whose
connection breaks three times on the way, and checks that the client delivers each
exactly once, in order (see :class:`~tests.client.helpers.Pusher`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from examples.conformance import create_app
from flask_sente.client import Client
from flask_sente.client.runner import ProtocolRunner
from tests.client.helpers import Pusher, received_stream, wait_until
from tests.support import serve_in_thread

TRANSPORTS = ["ws", "ajax"]
UID = "c1"


@dataclass
class Served:
    url: str
    sente: Any

    def push(self, event: list[Any]) -> None:
        self.sente.send(UID, event, flush=True)

    def close_client(self) -> None:
        self.sente.send(UID, ["chsk/close"])


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """Start conformance apps with extra options; each is stopped after the test."""
    with contextlib.ExitStack() as stack:

        def start(**options: Any) -> Served:
            app = create_app(lp_timeout_ms=1000, **options)
            base = stack.enter_context(serve_in_thread(app))
            return Served(base + "/chsk", app.extensions["sente_extension"])

        yield start


@pytest.fixture
def served(serve: Callable[..., Served]) -> Served:
    return serve()


@pytest.fixture
def make_opened(make_client: Callable[..., Client]) -> Callable[..., Client]:
    def open_(served: Served, transport: str, **kwargs: Any) -> Client:
        kwargs = {"packer": "json", "csrf_token": None, "backoff_ms_fn": lambda n: 50, **kwargs}
        client = make_client(served.url, type=transport, client_id=UID, **kwargs).connect()
        assert client.wait_open(5)
        return client

    return open_


@pytest.fixture
def opened(served: Served, make_opened: Callable[..., Client]) -> Callable[..., Client]:
    return lambda transport, **kwargs: make_opened(served, transport, **kwargs)


def _three_times(brk: Callable[[], None]) -> dict[int, Callable[[], None]]:
    return {20: brk, 50: brk, 80: brk}


def _lose_poll_answers(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Make the client lose the next long-poll answer that carries pushes, after the server
    wrote it (an answer lost in transit); returns the function that arms it."""
    armed: list[bool] = []
    answered = ProtocolRunner.http_answered

    def losing(self: ProtocolRunner, link: int, status: int, body: bytes) -> None:
        if armed and b"test/n" in body:
            armed.clear()
            error = requests.ConnectionError("the answer was lost in transit")
            self.http_failed(link, error, timed_out=False)
            return
        answered(self, link, status, body)

    monkeypatch.setattr(ProtocolRunner, "http_answered", losing)
    return lambda: armed.append(True)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_server_side_closes_lose_nothing(
    served: Served, opened: Callable[..., Client], transport: str
) -> None:
    client = opened(transport)
    with Pusher(served.push, client, 100, _three_times(served.close_client)):
        assert received_stream(client, 100) == list(range(100))
    assert client.last_seq is not None and client.last_seq.endswith(":101")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_client_side_breaks_lose_nothing(
    served: Served, opened: Callable[..., Client], transport: str
) -> None:
    client = opened(transport)
    with Pusher(served.push, client, 100, _three_times(client.break_connection)):
        assert received_stream(client, 100) == list(range(100))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_disconnect_and_connect_lose_nothing(
    served: Served, opened: Callable[..., Client], transport: str
) -> None:
    client = opened(transport)

    def cycle() -> None:
        client.disconnect()
        client.connect()

    with Pusher(served.push, client, 100, _three_times(cycle)):
        pass  # read afterwards: reading a disconnected client's ch_recv ends at once
    assert received_stream(client, 100) == list(range(100))


def test_silent_websocket_breaks_lose_nothing(
    served: Served, opened: Callable[..., Client]
) -> None:
    client = opened("ws", ws_kalive_ms=200, ws_ping_timeout_ms=300)
    brk = _three_times(lambda: client.break_connection(close_ws=False))
    with Pusher(served.push, client, 100, brk):
        assert received_stream(client, 100) == list(range(100))
    assert client.state["last-close"]["reason"] == "ws-ping-timeout"


def test_poll_answers_lost_in_transit_are_sent_again(
    served: Served, opened: Callable[..., Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    lose_next = _lose_poll_answers(monkeypatch)
    client = opened("ajax")
    with Pusher(served.push, client, 100, _three_times(lose_next)):
        assert received_stream(client, 100) == list(range(100))


def test_a_new_epoch_is_followed(
    serve: Callable[..., Served], make_opened: Callable[..., Client]
) -> None:
    served = serve(recovery_window_ms=300, ms_allow_reconnect_before_close_ajax=300)
    client = make_opened(served, "ajax")
    with Pusher(served.push, client, 3):
        assert received_stream(client, 3) == [0, 1, 2]
    first = client.last_seq
    assert first is not None and first.endswith(":4")
    client.disconnect()
    bus = served.sente.server().bus
    wait_until(lambda: not bus.knows(UID, UID), 5)  # the window passed: the mailbox is gone
    client.connect()
    assert client.wait_open(5)
    with Pusher(served.push, client, 3):
        assert received_stream(client, 3) == [0, 1, 2]
    assert client.last_seq is not None and client.last_seq.endswith(":4")
    assert client.last_seq.split(":")[0] != first.split(":")[0]


def test_a_lost_first_answer_is_sent_again(
    served: Served, opened: Callable[..., Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    lose_next = _lose_poll_answers(monkeypatch)
    client = opened("ajax")
    with Pusher(served.push, client, 10, {0: lose_next}):
        assert received_stream(client, 10, timeout=5) == list(range(10))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_backlog_overflow_is_a_logged_gap(
    serve: Callable[..., Served],
    make_opened: Callable[..., Client],
    transport: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    served = serve(recovery_backlog=10)
    client = make_opened(served, transport)
    with Pusher(served.push, client, 2):
        assert received_stream(client, 2) == [0, 1]
    client.disconnect()
    for i in range(2, 32):
        served.push(["test/n", i])
    served.push(["test/end"])  # before the reconnect: the backlog is then 23..31 and the end
    with caplog.at_level(logging.WARNING, "flask_sente.client.recovery"):
        client.connect()
        assert received_stream(client, 32) == list(range(23, 32))
    assert "pushes 4 to 24 never arrived" in caplog.text
