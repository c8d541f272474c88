"""The recorded real-Sente traffic, replayed against flask_sente's conformance app.

Each case is a transcript and the packer it was recorded with. The server is the conformance
app as the transcripts' README describes the real one (lp_timeout_ms 3000, ws_kalive_ms 2000,
CSRF token ``test-csrf-token``, uid from the ``uid`` parameter else the client-id, handshake
data ``{:hello "world", :n 1}``, the ``test/*`` handlers and ``/push``), under gunicorn's
gthread worker, which keeps connections alive as http-kit does. Every answer must be the one
real Sente gave, byte for byte, apart from the deliberate differences of docs/protocol.md;
where timing is behaviour it must be Sente's too. A transcript recorded with another packer
joins the list with one line once flask_sente has that packer (the transit recordings).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from flask_sente.packers import Packer, get_packer
from flask_sente.protocol import MessageKind
from tests import transcripts
from tests.server.replay import (
    ADDED,
    BINARY_CONTENT_TYPE,
    NOT_COMPARED,
    Replay,
    TimingRule,
    answers_to_abandoned_requests,
    differences,
    is_timeout,
    kind_is,
    replay,
    timing_violations,
)
from tests.support import ROOT, gunicorn_process

REPLAYS = [
    ("cljs-ws", "edn"),
    ("jvm-ws", "edn"),
    ("cljs-ajax", "edn"),
    ("curl-ajax-close-probe", "edn"),
    ("raw-ajax-close-probe", "edn"),
    ("cljs-ws-msgpack", "msgpack"),
    ("cljs-ajax-msgpack", "msgpack"),
    ("cljs-ws-transit", "transit"),
    ("cljs-ajax-transit", "transit"),
]

#: The real server's options, from the transcripts' README.
SERVER_ENV = {
    "SENTE_CSRF_TOKEN": "test-csrf-token",
    "SENTE_LP_TIMEOUT_MS": "3000",
    "SENTE_WS_KALIVE_MS": "2000",
}
LP_TIMEOUT_S, KALIVE_S, SEND_BUF_WS_S, SEND_BUF_AJAX_S = 3.0, 2.0, 0.03, 0.1
#: Generous: a shared, loaded machine may answer late, never early.
SLACK_S = 1.5

TIMING = [
    TimingRule(
        "a WebSocket push batch goes out after the 30 ms batching window",
        lambda seen, packer: seen.frame is not None and kind_is(MessageKind.PUSH)(seen, packer),
        "trigger",
        0.9 * SEND_BUF_WS_S,
        SEND_BUF_WS_S + SLACK_S,
    ),
    TimingRule(
        "an Ajax push batch answers the poll after the 100 ms batching window",
        lambda seen, packer: seen.http is not None and kind_is(MessageKind.PUSH)(seen, packer),
        "trigger",
        0.9 * SEND_BUF_AJAX_S,
        SEND_BUF_AJAX_S + SLACK_S,
    ),
    TimingRule(
        "an idle long-poll ends with chsk/timeout after lp_timeout_ms",
        is_timeout,
        "request",
        LP_TIMEOUT_S - 0.05,
        LP_TIMEOUT_S + SLACK_S,
    ),
    TimingRule(
        "the server pings a WebSocket idle for ws_kalive_ms/2 (Sente: between that and "
        "ws_kalive_ms)",
        kind_is(MessageKind.PING),
        "idle",
        KALIVE_S / 2 - 0.05,
        KALIVE_S + SLACK_S,
    ),
    TimingRule(
        "chsk/close closes a WebSocket at once (a close echo may come before the client's FIN)",
        lambda seen, packer: seen.frame is not None and seen.frame.opcode == "close",
        "trigger",
        -SLACK_S,
        SLACK_S,
    ),
    TimingRule(
        "chsk/close fails a waiting long-poll at once (F11)",
        lambda seen, packer: seen.record.kind == "raw",
        "trigger",
        0.0,
        SLACK_S,
    ),
]


@dataclass
class Replayed:
    result: Replay
    packer: Packer
    server_log: str


@pytest.fixture(scope="module", params=REPLAYS, ids=[name for name, _ in REPLAYS])
def replayed(request: pytest.FixtureRequest) -> Iterator[Replayed]:
    name, packer = request.param
    server = gunicorn_process(
        "gthread",
        "--threads",
        "8",
        "--keep-alive",
        "30",
        env={**SERVER_ENV, "SENTE_PACKER": packer},
    )
    try:
        port = int(server.url.rsplit(":", 1)[1])
        result = replay(transcripts.load(name), port)
    finally:
        server.stop()
    yield Replayed(result, get_packer(packer), "".join(server.output))


def test_every_answer_is_the_one_sente_gave(replayed: Replayed) -> None:
    binary = replayed.packer.binary
    problems = [
        problem
        for seen in replayed.result.seen
        if not answers_to_abandoned_requests(seen)
        for problem in differences(seen, binary=binary)
    ]
    assert problems == [], "\n".join(problems) + "\n" + replayed.server_log[-3000:]


def test_nothing_arrives_that_sente_did_not_send(replayed: Replayed) -> None:
    assert replayed.result.unrecorded == {}


def test_a_connection_closes_only_where_the_answer_says_so(replayed: Replayed) -> None:
    """Where http-kit keeps a connection open and we do not, the client was told: the
    answer said ``Connection: close``, or it was F11's terminator (docs/protocol.md)."""
    unannounced = [r for r in replayed.result.reopened if r.because == "unannounced"]
    assert unannounced == []


def test_a_late_answer_goes_only_to_a_client_that_stopped_writing(replayed: Replayed) -> None:
    """http-kit closes at once when a client half-closes during a POST (F7); flask_sente
    still answers it when the answer is ready (docs/protocol.md), and then closes."""
    records = replayed.result.transcript.records
    for seen in replayed.result.seen:
        if answers_to_abandoned_requests(seen):
            index = records.index(seen.record)
            before = [r for r in records[:index] if r.conn == seen.record.conn]
            assert before[-1].kind == "fin" and before[-1].direction == "C", seen
            assert seen.raw.startswith(b"HTTP/1.1 200 OK\r\n"), seen.raw


def test_timing_is_sentes_where_timing_is_behaviour(replayed: Replayed) -> None:
    problems = timing_violations(replayed.result, TIMING, replayed.packer)
    assert problems == [], "\n".join(problems)


def test_the_differences_the_replay_allows_are_the_documented_ones() -> None:
    page = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    table = page[page.index("### Deliberate differences") : page.index("## How a request ends")]
    for header in [*NOT_COMPARED, *ADDED]:
        assert f"`{header.title()}" in table, header
    assert all(f"`{content_type}`" in table for content_type in BINARY_CONTENT_TYPE)
    for also_documented in ("Connection: close", "0\\r\\n\\r\\n", "FIN", "keepalive ping"):
        assert also_documented in table, also_documented
