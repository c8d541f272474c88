"""Push recovery, the client half: the report, the filter, and recovery against a server
that speaks it (the scripted server with ``recovery=True``).

Every scenario pushes numbered events while the connection is lost in some way and checks
that the client delivers each exactly once, in order; a final ``test/end`` push closes the
stream, so a duplicate or a reordering would show up before it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from flask_sente.client import Client
from flask_sente.client.recovery import Received, parse_seq, unpack_numbered
from flask_sente.packers import EdnPacker, JsonPacker
from flask_sente.protocol import pack
from flask_sente.values import Keyword
from tests.client.helpers import Pusher, next_id, next_matching, received_stream, wait_until
from tests.client.sente_server import ScriptedSente

TRANSPORTS = ["ws", "ajax"]
FAST = {"backoff_ms_fn": lambda n: 50}


# ---------------------------------------------------------------------- the pure parts


def test_parse_seq() -> None:
    assert parse_seq("ep1:3") == ("ep1", 3)
    assert parse_seq("a:b:40") == ("a:b", 40)
    assert parse_seq("e:0") == ("e", 0)
    for junk in ["-", "", "e", ":3", "e:", "e:-1", "e:x", "e:²", "e:3.0", None, 3, ["e", 3]]:
        assert parse_seq(junk) is None, junk


def test_received_drops_repeats_and_adopts_new_epochs(caplog: pytest.LogCaptureFixture) -> None:
    r = Received()
    assert r.param == "-"
    assert r.accept(["a1", "a2", "a3"], "e:3") == ["a1", "a2", "a3"]
    assert r.param == "e:3"
    assert r.accept(["a2", "a3", "a4"], "e:4") == ["a4"]
    assert r.accept(["a1", "a2"], "e:2") == [] and r.param == "e:4"
    assert r.accept([], "e:4") == [] and r.param == "e:4"
    assert r.accept(["x"], None) == ["x"] and r.param == "e:4"
    assert not caplog.records
    with caplog.at_level(logging.WARNING, "flask_sente.client.recovery"):
        assert r.accept(["a7"], "e:7") == ["a7"]
        assert "pushes 5 to 6 never arrived" in caplog.text
        assert r.accept(["b1", "b2"], "f:2") == ["b1", "b2"] and r.param == "f:2"
        assert "epoch f, was e" in caplog.text
        assert r.accept(["y"], "f-2") == ["y"] and r.param == "f:2"
        assert "not '<epoch>:<n>'" in caplog.text


@pytest.mark.parametrize("packer", [JsonPacker(), EdnPacker()], ids=["json", "edn"])
def test_unpack_numbered_reads_the_third_element(packer: Any) -> None:
    batch = [[Keyword("a/b"), 1], [Keyword("a/b"), 2], [Keyword("a/b"), 3]]
    value, cb, seq = unpack_numbered(packer, packer.pack([batch, None, "ep:3"]))
    assert (value, cb, seq) == (batch, None, "ep:3")
    assert unpack_numbered(packer, pack(packer, batch)) == (batch, None, None)
    assert unpack_numbered(packer, pack(packer, "pong", "abc123")) == ("pong", "abc123", None)


def test_unpack_numbered_ignores_the_legacy_format() -> None:
    edn = EdnPacker()
    three_events = "-[[:a/b 1] [:a/b 2] [:a/b 3]]"
    value, cb, seq = unpack_numbered(edn, three_events)
    assert len(value) == 3 and cb is None and seq is None
    assert unpack_numbered(edn, '+[[:a/b 1] "cb1234"]')[2] is None


# ---------------------------------------------------------------------- against a server


@pytest.fixture
def server(scripted: Callable[..., ScriptedSente]) -> ScriptedSente:
    return scripted(recovery=True, lp_timeout_ms=500)


@pytest.fixture
def recovering(make_client: Callable[..., Client]) -> Callable[..., Client]:
    def make(url: str, **kwargs: Any) -> Client:
        return make_client(url, **{**FAST, **kwargs})

    return make


def _pushing(server: ScriptedSente) -> Callable[[list[Any]], None]:
    return lambda event: server.push("c1", [event], flush=True)


@pytest.fixture
def opened(
    server: ScriptedSente, recovering: Callable[..., Client]
) -> Iterator[Callable[..., Client]]:
    def open_(transport: str, **kwargs: Any) -> Client:
        client = recovering(server.url, type=transport, client_id="c1", **kwargs).connect()
        assert client.wait_open(5)
        return client

    yield open_


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reports_the_last_push_on_every_connect_and_poll(
    server: ScriptedSente, opened: Callable[..., Client], transport: str
) -> None:
    client = opened(transport)
    assert client.last_seq == "-"
    client.send(["test/push-3"])
    assert [next_id(client, "test/pushed").data for _ in range(3)] == [0, 1, 2]
    assert client.last_seq == "ep1:3"
    if transport == "ws":
        server.close_uid("c1")
        next_matching(client, lambda m: m.id == "chsk/handshake" and m.data[3] is False)
    wait_until(lambda: server.last_seqs()[-1] == "ep1:3")
    gets = [e[1] for e in server.http_log if e[0] == "GET"]
    if transport == "ws":
        assert gets[0] == "/chsk?client-id=c1&csrf-token=test-csrf-token&fs-last-seq=-"
        assert gets[1] == "/chsk?client-id=c1&csrf-token=test-csrf-token&fs-last-seq=ep1%3A3"
    else:
        assert re.fullmatch(r"/chsk\?udt=\d+&client-id=c1&handshake%3F=1&fs-last-seq=-", gets[0])
        assert re.fullmatch(r"/chsk\?udt=\d+&client-id=c1&fs-last-seq=-", gets[1])
        assert re.fullmatch(r"/chsk\?udt=\d+&client-id=c1&fs-last-seq=ep1%3A3", gets[-1])
    assert set(server.last_seqs()) <= {"-", "ep1:3"}
    assert '[[[:test/pushed 0] [:test/pushed 1] [:test/pushed 2]] nil "ep1:3"]' in server.sent


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_repeated_events_are_dropped_and_new_epochs_adopted(
    server: ScriptedSente, opened: Callable[..., Client], transport: str
) -> None:
    client = opened(transport)
    a = [["test/n", f"a{i}"] for i in range(1, 6)]
    frames = [
        server.numbered(a[0:2], 2),  # a1 a2
        server.numbered(a[0:3], 3),  # a1 a2 again, then a3
        server.numbered(a[1:2], 2),  # all old
        server.numbered(a[3:4], 4),  # a4
        str(EdnPacker().pack([[[Keyword("test/n"), "plain"]], None])),  # unnumbered: kept
        server.numbered([["test/n", "b1"]], 1, epoch="ep2"),  # a new mailbox
        server.numbered([["test/n", "b1"], ["test/n", "b2"]], 2, epoch="ep2"),
        server.numbered([["test/end"]], 3, epoch="ep2"),
    ]
    for frame in frames:
        if transport == "ws":
            server.send_raw("c1", frame)
        else:
            server.answer_raw("c1", frame)
    assert received_stream(client, 7) == ["a1", "a2", "a3", "a4", "plain", "b1", "b2"]
    assert client.last_seq == "ep2:3"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_recover_false_sends_no_parameter_and_filters_nothing(
    server: ScriptedSente, opened: Callable[..., Client], transport: str
) -> None:
    client = opened(transport, recover=False)
    assert client.last_seq is None
    client.send(["test/push-3"])
    assert [next_id(client, "test/pushed").data for _ in range(3)] == [0, 1, 2]
    wait_until(lambda: "[[[:test/pushed 0] [:test/pushed 1] [:test/pushed 2]] nil]" in server.sent)
    frame = server.numbered([["test/n", 1]], 1)
    for _ in range(2):
        if transport == "ws":
            server.send_raw("c1", frame)
        else:
            server.answer_raw("c1", frame)
    server.push("c1", [["test/end"]], flush=True)
    assert received_stream(client, 2) == [1, 1]
    assert all(seq is None for seq in server.last_seqs())


def _three_times(brk: Callable[[], None]) -> dict[int, Callable[[], None]]:
    return {20: brk, 50: brk, 80: brk}


def test_ws_server_side_closes_lose_nothing(
    server: ScriptedSente, opened: Callable[..., Client]
) -> None:
    client = opened("ws")
    with Pusher(_pushing(server), client, 100, _three_times(lambda: server.close_uid("c1"))):
        assert received_stream(client, 100) == list(range(100))
    assert server.ws_upgrades == 4


def test_ws_silent_breaks_lose_nothing(
    server: ScriptedSente, opened: Callable[..., Client]
) -> None:
    client = opened("ws", ws_kalive_ms=200, ws_ping_timeout_ms=300)
    brk = _three_times(lambda: client.break_connection(close_ws=False))
    with Pusher(_pushing(server), client, 100, brk):
        assert received_stream(client, 100) == list(range(100))
    assert server.ws_upgrades == 4
    assert client.state["last-close"]["reason"] == "ws-ping-timeout"


def test_ajax_answers_lost_in_transit_are_sent_again(
    server: ScriptedSente, opened: Callable[..., Client]
) -> None:
    client = opened("ajax")

    def lose_two_answers() -> None:
        with server.cond:
            server.drop_answers = 2

    with Pusher(_pushing(server), client, 100, _three_times(lose_two_answers)):
        assert received_stream(client, 100) == list(range(100))
    assert server.drop_answers == 0


def test_ajax_broken_polls_lose_nothing(
    server: ScriptedSente, opened: Callable[..., Client]
) -> None:
    client = opened("ajax")
    with Pusher(_pushing(server), client, 100, _three_times(client.break_connection)):
        assert received_stream(client, 100) == list(range(100))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_lost_first_batch_is_sent_again(
    server: ScriptedSente, opened: Callable[..., Client], transport: str
) -> None:
    client = opened(transport)
    if transport == "ws":
        server.close_uid("c1")  # the close frame goes first; the batch meets a closing socket
    else:
        server.drop_answers = 1
    server.push("c1", [["test/n", 0], ["test/n", 1]], flush=True)
    server.push("c1", [["test/end"]], flush=True)
    assert received_stream(client, 2) == [0, 1]
    assert "-" in server.last_seqs()[1:]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_server_that_forgot_the_client_is_followed(
    server: ScriptedSente, opened: Callable[..., Client], transport: str
) -> None:
    client = opened(transport)
    server.push("c1", [["test/n", 0], ["test/n", 1]], flush=True)
    assert [next_id(client, "test/n").data for _ in range(2)] == [0, 1]
    assert client.last_seq == "ep1:2"
    server.forget()
    if transport == "ws":
        server.close_uid("c1")
        next_matching(client, lambda m: m.id == "chsk/handshake" and m.data[3] is False)
    server.push("c1", [["test/n", 2]], flush=True)
    server.push("c1", [["test/end"]], flush=True)
    assert received_stream(client, 1) == [2]
    assert client.last_seq == "ep2:2"


def test_the_report_survives_disconnect_and_connect(
    server: ScriptedSente, opened: Callable[..., Client]
) -> None:
    client = opened("ws")
    server.push("c1", [["test/n", 0]], flush=True)
    assert next_id(client, "test/n").data == 0
    client.disconnect()
    server.push("c1", [["test/n", 1]], flush=True)
    client.connect()
    server.push("c1", [["test/end"]], flush=True)
    assert received_stream(client, 1) == [1]
    assert server.last_seqs()[-1] == "ep1:1"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_simulated_bad_connections_sabotage_receives_and_recovery_repairs_them(
    server: ScriptedSente,
    opened: Callable[..., Client],
    transport: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "flask_sente.client")
    client = opened(transport, simulated_bad_conn_rate=0.2, ws_kalive_ms=None)
    one_at_a_time = dict.fromkeys(range(60), lambda: None)
    with Pusher(_pushing(server), client, 60, one_at_a_time):
        assert received_stream(client, 60, timeout=30) == list(range(60))
    lost = "dropping the WebSocket on a receive" if transport == "ws" else "the answer was lost"
    assert lost in caplog.text
