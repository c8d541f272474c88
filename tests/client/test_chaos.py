"""Chaos: 50 clients on a bad network, against the conformance app in this process.

Half the clients use WebSocket, half Ajax; clients and server each sabotage 10% of their
connection activities (``simulated_bad_conn_rate=0.1``). Each client does request/reply and
has numbered events pushed to it meanwhile. Every request must end, within its timeout, in
its reply or a typed error; every push must reach its client once, in order (all clients
stay well within the recovery window); the whole run is bounded; no thread is left behind.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from examples.conformance import create_app
from flask_sente.client import Client
from flask_sente.errors import ChannelClosed, ReplyError, ReplyTimeout
from tests.client.helpers import assert_no_client_threads, received_stream
from tests.support import serve_in_thread

CLIENTS = 50
REQUESTS = 10
PUSHES_PER_REQUEST = 3
RATE = 0.1
REQUEST_TIMEOUT = 3.0
#: How much later than its timeout a request may end (thread scheduling under load).
SLACK = 1.0
DEADLINE = 100.0


@dataclass
class Outcome:
    """What one client saw."""

    requests: Counter[str] = field(default_factory=Counter)
    late: list[float] = field(default_factory=list)
    wrong: list[Any] = field(default_factory=list)
    stream: list[Any] | None = None
    error: BaseException | None = None


def _request(client: Client, payload: dict[str, int], outcome: Outcome) -> None:
    client.wait_open(REQUEST_TIMEOUT)
    started = time.monotonic()
    try:
        reply = client.request(["test/echo", payload], timeout=REQUEST_TIMEOUT)
    except (ReplyTimeout, ChannelClosed, ReplyError) as exc:
        outcome.requests[type(exc).__name__] += 1
    else:
        outcome.requests["reply"] += 1
        if reply != {"echo": payload}:
            outcome.wrong.append(reply)
    elapsed = time.monotonic() - started
    if elapsed > REQUEST_TIMEOUT + SLACK:
        outcome.late.append(elapsed)


def test_fifty_clients_on_a_bad_network(
    no_thread_leaks: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "flask_sente.client")
    started = time.monotonic()
    deadline = started + DEADLINE
    app = create_app(lp_timeout_ms=1000, simulated_bad_conn_rate=RATE)
    sente = app.extensions["sente_extension"]
    outcomes = [Outcome() for _ in range(CLIENTS)]
    closes: list[Any] = []

    with serve_in_thread(app) as base:
        clients = [
            Client(
                base + "/chsk",
                type="ws" if i % 2 else "ajax",
                client_id=f"chaos-{i}",
                packer="json",
                simulated_bad_conn_rate=RATE,
                backoff_ms_fn=lambda n: 100,
                ws_kalive_ms=2000,
                ws_ping_timeout_ms=1000,
            )
            for i in range(CLIENTS)
        ]
        for client in clients:
            client.state.add_watch(
                "chaos", lambda k, ref, old, new: closes.append(new.get("last-ws-close"))
            )

        def run(i: int) -> None:
            client, outcome = clients[i], outcomes[i]
            try:
                client.connect()
                assert client.wait_open(20), f"{client.client_id} never opened"
                n = 0
                for k in range(REQUESTS):
                    _request(client, {"i": i, "k": k}, outcome)
                    for _ in range(PUSHES_PER_REQUEST):
                        sente.send(client.client_id, ["test/n", n], flush=n % 3 == 0)
                        n += 1
                sente.send(client.client_id, ["test/end"], flush=True)
                outcome.stream = received_stream(client, n, timeout=30)
            except BaseException as exc:
                outcome.error = exc

        threads = [
            threading.Thread(target=run, args=(i,), name=f"chaos-client-{i}", daemon=True)
            for i in range(CLIENTS)
        ]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(max(deadline - time.monotonic(), 0))
            hung = [t.name for t in threads if t.is_alive()]
            assert not hung, f"still running after {DEADLINE} s: {hung}"
        finally:
            for client in clients:
                client.disconnect()
    assert_no_client_threads()

    errors = {i: repr(o.error) for i, o in enumerate(outcomes) if o.error is not None}
    assert not errors, errors
    total = sum((o.requests for o in outcomes), Counter())
    assert sum(total.values()) == CLIENTS * REQUESTS
    assert total["reply"] >= CLIENTS * REQUESTS // 2, total
    assert not [o.wrong for o in outcomes if o.wrong]
    assert not [o.late for o in outcomes if o.late], f"requests ended late; {total}"
    pushed = REQUESTS * PUSHES_PER_REQUEST
    lost = {i: o.stream for i, o in enumerate(outcomes) if o.stream != list(range(pushed))}
    assert not lost, lost
    # Both sides sabotaged: the clients dropped sockets and answers, the server closed
    # WebSockets (1001) and refused polls (503).
    assert "simulated bad connection" in caplog.text
    assert any(c and c["code"] == 1001 for c in closes)
    assert "HTTP 503: simulated bad connection" in caplog.text
    assert time.monotonic() - started < DEADLINE
