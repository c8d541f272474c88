"""Handlers just run: the registered handlers, ``start_router`` (Sente's style), one router.

Unit tests drive :class:`~flask_sente.client.routing.Routing` on a bare ``ChRecv``; the rest
use a connected client and the scripted Sente server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from flask_sente.client import ChRecv, Client, ClientEventMsg
from flask_sente.client.routing import Routing
from flask_sente.router import Router
from tests.client.helpers import next_id
from tests.client.sente_server import ScriptedSente
from tests.support import wait_until


class Recorder:
    """Handlers that record what they got, and from which thread."""

    def __init__(self) -> None:
        self.got: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, tag: str) -> Callable[[ClientEventMsg], None]:
        def handle(msg: ClientEventMsg) -> None:
            with self.lock:
                self.got.append((tag, msg.event))

        return handle

    def events(self) -> list[Any]:
        with self.lock:
            return [event for _, event in self.got]


@pytest.fixture
def routing() -> Iterator[tuple[Routing, ChRecv]]:
    ch_recv = ChRecv(100)
    routing = Routing(ch_recv, name="test-router")
    yield routing, ch_recv
    routing.disconnected()
    ch_recv.close()
    wait_until(lambda: not [t for t in threading.enumerate() if t.name == "test-router"], 5)


def test_registering_a_handler_routes_events_to_the_handlers(
    routing: tuple[Routing, ChRecv],
) -> None:
    router, ch_recv = routing
    seen = Recorder()
    router.connected()
    ch_recv.put(["a/first"])
    router.handlers.on("a/first")(seen("on"))
    router.registered()
    router.handlers.on_default(seen("default"))
    router.registered()
    ch_recv.put(["b/other", 1])
    wait_until(lambda: len(seen.got) == 2)
    assert seen.got == [("on", ["a/first"]), ("default", ["b/other", 1])]


def test_an_error_handler_alone_starts_no_router(routing: tuple[Routing, ChRecv]) -> None:
    router, ch_recv = routing
    router.connected()
    router.handlers.on_error(lambda msg, exc: None)
    router.registered()
    ch_recv.put(["a/b"])
    assert ch_recv.get(5) is not None  # still there for the caller to read


def test_an_error_handler_registered_later_takes_effect(routing: tuple[Routing, ChRecv]) -> None:
    router, ch_recv = routing
    errors: list[tuple[Any, str]] = []
    router.handlers.on("a/boom")(lambda msg: 1 / 0)
    router.registered()
    router.connected()
    router.handlers.on_error(lambda msg, exc: errors.append((msg.event, type(exc).__name__)))
    ch_recv.put(["a/boom"])
    wait_until(lambda: errors)
    assert errors == [(["a/boom"], "ZeroDivisionError")]


def test_start_router_replaces_the_handlers_and_stop_hands_events_back(
    routing: tuple[Routing, ChRecv],
) -> None:
    router, ch_recv = routing
    seen = Recorder()
    router.handlers.on_default(seen("handlers"))
    router.registered()
    router.connected()
    ch_recv.put(["a/1"])
    wait_until(lambda: len(seen.got) == 1)
    stop = router.start(seen("sente-style"), None, False)
    for i in range(2, 50):
        ch_recv.put([f"a/{i}"])
    wait_until(lambda: len(seen.got) == 49)
    assert seen.events() == [[f"a/{i}"] for i in range(1, 50)]  # each once, in order
    assert {tag for tag, _ in seen.got[1:]} == {"sente-style"}
    stop()
    ch_recv.put(["a/after-stop"])
    msg = ch_recv.get(5)
    assert msg is not None and msg.event == ["a/after-stop"]
    assert len(seen.got) == 49


def test_a_stopped_router_takes_nothing_more() -> None:
    ch_recv = ChRecv(10)
    stop = threading.Event()
    ch_recv.put(["a/b"])
    stop.set()
    assert ch_recv.get(1, cancel=stop) is None
    assert len(ch_recv) == 1


# ---------------------------------------------------------------------------- with a server


def test_handlers_run_without_start_router(
    sente: ScriptedSente, make_client: Callable[..., Client]
) -> None:
    """The issue's script: register, connect, and the handlers see the events."""
    client = make_client(sente.url, type="ws")
    handshakes: list[Any] = []
    pushed = threading.Event()
    client.on("chsk/handshake")(lambda msg: handshakes.append(msg.data))
    client.on("test/pushed")(lambda msg: pushed.set())
    client.connect()
    assert client.wait_open(5)
    client.send(["test/push-me", 1])
    assert pushed.wait(5)
    assert len(handshakes) == 1 and handshakes[0][3] is True


@pytest.mark.parametrize("transport", ["ws", "ajax"])
def test_a_handler_registered_on_a_connected_client_runs_at_once(
    sente: ScriptedSente, make_client: Callable[..., Client], transport: str
) -> None:
    client = make_client(sente.url, type=transport).connect()
    assert client.wait_open(5)
    got = threading.Event()

    @client.on("test/pushed")
    def pushed(msg: ClientEventMsg) -> None:
        got.set()

    client.send(["test/push-me", 2])
    assert got.wait(5)
    assert [t for t in threading.enumerate() if t.name.endswith("-router")]


def test_sente_style_start_router_dispatches_each_event_once(
    sente: ScriptedSente, make_client: Callable[..., Client]
) -> None:
    client = make_client(sente.url, type="ws")
    seen = Recorder()
    client.on_default(seen("registered"))
    stop = client.start_router(seen("router"))
    client.connect()
    assert client.wait_open(5)
    for i in range(5):
        client.send(["test/push-me", i])
    wait_until(lambda: len([e for e in seen.events() if e[0] == "test/pushed"]) == 5)
    assert {tag for tag, _ in seen.got} == {"router"}
    pushes = [e[1] for e in seen.events() if e[0] == "test/pushed"]
    assert pushes == [{"got": i} for i in range(5)]
    stop()
    wait_until(lambda: not [t for t in threading.enumerate() if t.name.endswith("-router")])
    client.send(["test/push-me", "to the caller"])
    assert next_id(client, "test/pushed").data == {"got": "to the caller"}


def test_router_error_handler_and_trace_evs(
    sente: ScriptedSente, make_client: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(sente.url, type="ws")
    errors: list[tuple[Any, str]] = []
    done = threading.Event()

    def handler(msg: ClientEventMsg) -> None:
        if msg.id == "test/pushed":
            raise KeyError(msg.data)

    def on_error(msg: ClientEventMsg, exc: BaseException) -> None:
        errors.append((msg.data, type(exc).__name__))
        done.set()

    caplog.set_level(logging.DEBUG, logger="flask_sente.router")
    client.start_router(handler, error_handler=on_error, trace_evs=True)
    client.connect()
    assert client.wait_open(5)
    client.send(["test/push-me", 3])
    assert done.wait(5)
    assert errors == [({"got": 3}, "KeyError")]
    traced = [r.getMessage() for r in caplog.records if "pre-handler event" in r.getMessage()]
    assert any("chsk/handshake" in line for line in traced)
    assert any("test/pushed" in line for line in traced)


def test_handlers_see_the_last_events_of_a_disconnect(
    sente: ScriptedSente, make_client: Callable[..., Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    """disconnect() lets the router handle what is left in ch_recv (the closed chsk/state)
    before it ends, however far behind the handlers are: the handler is let go only once
    disconnect() waits for the router."""
    client = make_client(sente.url, type="ws")
    seen = Recorder()
    release = threading.Event()
    join = Router._join

    def joining(router: Router[ClientEventMsg], deadline: float) -> None:
        release.set()
        join(router, deadline)

    monkeypatch.setattr(Router, "_join", joining)

    def slow(msg: ClientEventMsg) -> None:
        if msg.id == "chsk/handshake":
            assert release.wait(10)
        seen("slow")(msg)

    client.on_default(slow)
    client.connect()
    assert client.wait_open(5)
    client.disconnect()
    closed = [e for e in seen.events() if e[0] == "chsk/state" and e[1][1].get("closed?")]
    assert closed and closed[-1][1][1]["last-close"]["reason"] == "requested-disconnect"
