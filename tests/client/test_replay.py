"""The Python client against the recorded real Sente server, scenario by scenario.

A :class:`~tests.client.replay.server.ReplayServer` answers with the bytes of the transcripts
of ``tests/fixtures/protocol/transcripts`` (real Sente 1.22 clients and server), and the client
must send what the real ClojureScript and JVM clients sent, byte for byte after the
normalising the transcripts' README allows: the same upgrade and poll URLs, frames, form
bodies, msgpack bodies and headers, the pong to a server ping, its own keepalive ping, the
reconnect after a server close and the close frame of a disconnect.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from flask_sente.client import Client, ClientEventMsg
from flask_sente.packers import get_packer
from tests import transcripts
from tests.client.replay.scenarios import WAIT, assert_wire, play
from tests.client.replay.script import Script
from tests.client.replay.server import ReplayServer

#: The recorded client's options (the transcripts' README): params, CSRF token, keepalive.
RECORDED = {
    "params": {"uid": "u-1", "foo": "bar baz"},
    "csrf_token": "test-csrf-token",
    "ws_kalive_ms": 4000,
}
CASES = [
    ("cljs-ws", "edn", "ws"),
    ("jvm-ws", "edn", "ws"),
    ("cljs-ws-msgpack", "msgpack", "ws"),
    ("cljs-ajax", "edn", "ajax"),
    ("cljs-ajax-msgpack", "msgpack", "ajax"),
    ("cljs-ws-transit", "transit", "ws"),
    ("cljs-ajax-transit", "transit", "ajax"),
]


class PythonDriver:
    """The scenarios' :class:`~tests.client.replay.scenarios.Driver` for :class:`Client`."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.received: list[ClientEventMsg] = []

    def connect(self) -> None:
        self.client.connect()

    def _read_until(self, done: Callable[[], bool], timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            msg = self.client.next_event(left) if left > 0 else None
            if msg is None:
                seen = [m.event for m in self.received]
                raise AssertionError(f"not received within {timeout} s; got {seen}")
            self.received.append(msg)

    def events(self, event_id: str, n: int) -> list[Any]:
        def matching() -> list[ClientEventMsg]:
            return [m for m in self.received if m.id == event_id]

        self._read_until(lambda: len(matching()) >= n)
        return [m.data for m in matching()[:n]]

    def states(self) -> list[dict[str, Any]]:
        while (msg := self.client.next_event(0)) is not None:
            self.received.append(msg)
        return [m.data[1] for m in self.received if m.id == "chsk/state"]

    def request(self, event: Any, timeout_ms: int) -> Any:
        box: list[Any] = []
        done = threading.Event()
        self.client.send(event, timeout_ms, lambda reply: (box.append(reply), done.set()))
        assert done.wait(timeout_ms / 1000 + WAIT), f"the callback of {event} never ran"
        return box[0]

    def send(self, event: Any) -> bool:
        return self.client.send(event)

    def disconnect(self) -> None:
        self.client.disconnect()


@pytest.mark.parametrize(("name", "packer", "transport"), CASES)
def test_the_client_sends_what_sentes_client_sent(
    make_client: Callable[..., Client], name: str, packer: str, transport: str
) -> None:
    _replay(make_client, name, packer, transport)


def test_a_poll_ended_by_closing_its_connection_is_f11_too(
    make_client: Callable[..., Client],
) -> None:
    """F11's other form (the terminator, then the connection closed): the same reconnect."""
    _replay(make_client, "cljs-ajax", "edn", "ajax", close_after_raw=True)


def _replay(
    make_client: Callable[..., Client], name: str, packer: str, transport: str, **options: Any
) -> None:
    script = Script(transcripts.load(name), get_packer(packer))
    backoffs: list[int] = []

    def backoff(attempt: int) -> int:
        backoffs.append(attempt)
        return 60_000

    with ReplayServer(script, **options) as server:
        client = make_client(
            server.url,
            type=transport,
            packer=packer,
            client_id=script.client_id,
            recover=False,
            backoff_ms_fn=backoff,
            **RECORDED,
        )
        play(script, server, PythonDriver(client), transport)
    assert_wire(script, server, transport)
    assert backoffs == [], "every reconnect of the scenarios is immediate (F9, F11)"


@pytest.mark.parametrize(
    ("name", "transport", "lane"), [("cljs-ws", "ws", "ws"), ("cljs-ajax", "ajax", "poll")]
)
def test_recovery_adds_one_parameter_and_nothing_else(
    make_client: Callable[..., Client], name: str, transport: str, lane: str
) -> None:
    """With ``recover`` on (the default), the first request is the real client's plus
    ``fs-last-seq`` (which a real Sente server ignores)."""
    script = Script(transcripts.load(name), get_packer("edn"))
    with ReplayServer(script) as server:
        make_client(server.url, type=transport, client_id=script.client_id, **RECORDED).connect()
        first = server.wait_for(lambda: server.lane(lane))[0].record
    _, method, target, body = script.key(script.client_records(lane)[0])
    assert script.key(first) == ("http", method, target + "&fs-last-seq=-", body)
