"""``WsSession``, the sans-IO WebSocket, driven with bytes from a wsproto client and a fake
clock: no socket, no thread, no sleep."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Pong,
    Request,
    TextMessage,
)
from wsproto.frame_protocol import Opcode

import flask_sente.transports.websocket as websocket
from flask_sente.transports.websocket import (
    CLOSE_HANDSHAKE_TIMEOUT_S,
    GOING_AWAY,
    MESSAGE_TOO_BIG,
    NORMAL_CLOSURE,
    POLICY_VIOLATION,
    PROTOCOL_ERROR,
    CloseInfo,
    WsSession,
    WsState,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
T0 = 1000.0


def upgrade_environ(**extra: str | None) -> dict[str, Any]:
    """An upgrade request's environ; a header given as None is left out."""
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/chsk",
        "QUERY_STRING": "client-id=c1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_UPGRADE": "websocket",
        "HTTP_CONNECTION": "Upgrade",
        "HTTP_SEC_WEBSOCKET_KEY": KEY,
        "HTTP_SEC_WEBSOCKET_VERSION": "13",
        **extra,
    }
    return {k: v for k, v in environ.items() if v is not None}


class Peer:
    """The client side: a wsproto client connection fed with what the session writes."""

    def __init__(self) -> None:
        self.ws = WSConnection(ConnectionType.CLIENT)
        request = self.ws.send(Request(host="127.0.0.1", target="/chsk?client-id=c1"))
        self.key = next(
            line.split(b":", 1)[1].strip().decode()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )

    def send(self, event: Any) -> bytes:
        return self.ws.send(event)

    def read(self, data: bytes) -> list[Any]:
        self.ws.receive_data(data)
        return list(self.ws.events())


def open_session(
    now: float = T0, *, kalive_s: float | None = 10.0, ping_timeout_s: float | None = 5.0, **kw: Any
) -> tuple[WsSession, Peer]:
    session = WsSession(
        max_message_size=kw.pop("max_message_size", 1024),
        kalive_s=kalive_s,
        ping_timeout_s=ping_timeout_s,
        ping_message='["chsk/ws-ping"]',
        **kw,
    )
    peer = Peer()
    response = session.accept(upgrade_environ(HTTP_SEC_WEBSOCKET_KEY=peer.key), now)
    assert response is not None and response.startswith(b"HTTP/1.1 101")
    assert [type(e) for e in peer.read(response)] == [AcceptConnection]
    return session, peer


def texts(events: list[Any]) -> list[str]:
    return [e.data for e in events if isinstance(e, TextMessage)]


# ---------------------------------------------------------------------------- opening


def test_the_session_never_reads_the_clock() -> None:
    assert not hasattr(websocket, "time")
    assert "monotonic" not in vars(websocket)


def test_accept_answers_101_and_opens() -> None:
    session = WsSession(max_message_size=10, kalive_s=None, ping_timeout_s=None, ping_message="p")
    assert session.state is WsState.CONNECTING
    response = session.accept(upgrade_environ(), T0)
    assert response is not None
    assert response.startswith(b"HTTP/1.1 101 ")
    assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in response  # RFC 6455's example key and answer
    assert session.state is WsState.OPEN


@pytest.mark.parametrize(
    "broken",
    [
        {"HTTP_SEC_WEBSOCKET_VERSION": "8"},
        {"HTTP_SEC_WEBSOCKET_KEY": None},
        {"HTTP_UPGRADE": "h2c"},
    ],
)
def test_a_bad_upgrade_is_refused(broken: dict[str, str | None]) -> None:
    session = WsSession(max_message_size=10, kalive_s=None, ping_timeout_s=None, ping_message="p")
    assert session.accept(upgrade_environ(**broken), T0) is None
    assert session.state is WsState.CONNECTING


# ---------------------------------------------------------------------------- messages


def test_messages_in_and_out() -> None:
    session, peer = open_session()
    data = peer.send(TextMessage("hello")) + peer.send(BytesMessage(b"\x00\x01"))
    assert session.receive(data, T0 + 1) == ["hello", b"\x00\x01"]
    assert session.deliver("one") and session.deliver(b"two")
    events = peer.read(session.output(T0 + 1))
    assert [(type(e), e.data) for e in events] == [(TextMessage, "one"), (BytesMessage, b"two")]
    assert session.output(T0 + 1) == b""


def test_a_message_in_fragments_comes_out_whole_once() -> None:
    session, peer = open_session()
    parts = [peer.send(TextMessage(c, message_finished=False)) for c in "abc"]
    parts.append(peer.send(TextMessage("d", message_finished=True)))
    got = [session.receive(part, T0) for part in parts]
    assert got == [[], [], [], ["abcd"]]


def test_a_message_split_across_reads() -> None:
    session, peer = open_session()
    frame = peer.send(TextMessage("x" * 300))
    assert session.receive(frame[:5], T0) == []
    assert session.receive(frame[5:], T0) == ["x" * 300]


def test_a_message_over_the_limit_closes_with_1009() -> None:
    session, peer = open_session(max_message_size=16)
    assert session.receive(peer.send(TextMessage("y" * 17)), T0) == []
    events = peer.read(session.output(T0))
    assert [(e.code, e.reason) for e in events if isinstance(e, CloseConnection)] == [
        (MESSAGE_TOO_BIG, "message too big")
    ]
    assert session.state is WsState.CLOSING
    assert not session.deliver("late")


def test_a_client_ping_is_answered_with_its_payload() -> None:
    session, peer = open_session()
    assert session.receive(peer.send(Ping(b"abc")), T0) == []
    events = peer.read(session.output(T0))
    assert [(type(e), e.payload) for e in events] == [(Pong, b"abc")]


def test_an_unmasked_client_frame_is_a_protocol_error() -> None:
    session, peer = open_session()
    unmasked = bytes([0x81, 0x02]) + b"hi"
    assert session.receive(unmasked, T0) == []
    assert session.state is WsState.CLOSED
    assert session.close_info is not None and session.close_info.code == PROTOCOL_ERROR
    close = peer.read(session.output(T0))
    assert [e.code for e in close if isinstance(e, CloseConnection)] == [PROTOCOL_ERROR]


# ---------------------------------------------------------------------------- closing


def test_the_client_closes_and_gets_its_reply() -> None:
    session, peer = open_session()
    session.receive(peer.send(CloseConnection(NORMAL_CLOSURE, "bye")), T0)
    assert session.state is WsState.CLOSED
    assert session.close_info == CloseInfo(NORMAL_CLOSURE, "bye", False)
    assert not session.deliver("too late")
    reply = peer.read(session.output(T0))
    assert [(type(e), e.code) for e in reply] == [(CloseConnection, NORMAL_CLOSURE)]


def test_the_server_closes_and_waits_for_the_reply() -> None:
    session, peer = open_session()
    session.deliver("last")
    session.close(GOING_AWAY, "going")
    events = peer.read(session.output(T0))
    assert texts(events) == ["last"]
    assert [e.code for e in events if isinstance(e, CloseConnection)] == [GOING_AWAY]
    assert session.state is WsState.CLOSING
    assert session.deadline() == T0 + CLOSE_HANDSHAKE_TIMEOUT_S
    session.receive(peer.send(CloseConnection(GOING_AWAY, "going")), T0 + 0.1)
    assert session.close_info == CloseInfo(GOING_AWAY, "going", True)


def test_a_close_never_answered_ends_at_its_deadline() -> None:
    session, _peer = open_session()
    session.close(NORMAL_CLOSURE, "done")
    session.output(T0)
    session.tick(T0 + CLOSE_HANDSHAKE_TIMEOUT_S - 0.01)
    assert session.state is WsState.CLOSING
    session.tick(T0 + CLOSE_HANDSHAKE_TIMEOUT_S)
    assert session.state is WsState.CLOSED
    assert session.close_info == CloseInfo(NORMAL_CLOSURE, "done", True)


def test_the_peer_going_away_ends_it_and_drops_what_was_queued() -> None:
    session, _peer = open_session()
    session.deliver("never sent")
    session.peer_gone("socket error")
    assert session.state is WsState.CLOSED
    assert session.close_info == CloseInfo(None, "socket error", False)
    assert session.output(T0) == b""


# ---------------------------------------------------------------------------- keepalive


def test_an_idle_connection_is_pinged_after_kalive() -> None:
    session, peer = open_session(kalive_s=10.0, ping_timeout_s=5.0)
    assert session.deadline() == T0 + 10.0
    session.tick(T0 + 9.9)
    assert session.output(T0 + 9.9) == b""
    session.tick(T0 + 10.0)
    assert texts(peer.read(session.output(T0 + 10.0))) == ['["chsk/ws-ping"]']
    assert session.deadline() == T0 + 15.0


def test_a_client_silent_after_a_ping_is_closed() -> None:
    session, peer = open_session(kalive_s=10.0, ping_timeout_s=5.0)
    session.tick(T0 + 10.0)
    session.output(T0 + 10.0)
    session.tick(T0 + 15.0)
    events = peer.read(session.output(T0 + 15.0))
    assert [(e.code, e.reason) for e in events if isinstance(e, CloseConnection)] == [
        (GOING_AWAY, "ping timeout")
    ]


def test_a_client_that_answers_the_ping_stays() -> None:
    session, peer = open_session(kalive_s=10.0, ping_timeout_s=5.0)
    session.tick(T0 + 10.0)
    session.output(T0 + 10.0)
    assert session.receive(peer.send(TextMessage('["chsk/ws-pong"]')), T0 + 11.0)
    session.tick(T0 + 15.0)
    assert session.state is WsState.OPEN
    assert session.deadline() == T0 + 21.0  # a new ping once it is idle for kalive again


def test_what_goes_out_counts_as_activity() -> None:
    session, _peer = open_session(kalive_s=10.0)
    session.deliver("push")
    session.output(T0 + 8.0)
    assert session.deadline() == T0 + 18.0


def test_without_kalive_nothing_is_scheduled() -> None:
    session, _peer = open_session(kalive_s=None)
    assert session.deadline() is None
    session.tick(T0 + 1e6)
    assert session.output(T0 + 1e6) == b""


# ---------------------------------------------------------------------------- slow consumers


def test_a_slow_consumer_is_closed_with_1008() -> None:
    session, peer = open_session(max_queued_messages=3)
    assert all(session.deliver(f"m{i}") for i in range(3))
    assert not session.deliver("m3")
    events = peer.read(session.output(T0))
    assert [(e.code, e.reason) for e in events if isinstance(e, CloseConnection)] == [
        (POLICY_VIOLATION, "slow consumer")
    ]


def test_drop_oldest_keeps_the_newest_and_counts_the_rest() -> None:
    dropped: list[int] = []
    session, peer = open_session(max_queued_messages=2, drop_oldest=True, on_dropped=dropped.append)
    for i in range(5):
        assert session.deliver(f"m{i}")
    assert dropped == [1, 1, 1]
    assert texts(peer.read(session.output(T0))) == ["m3", "m4"]


def test_deliver_wakes_the_driver() -> None:
    session, _peer = open_session()
    woken: list[bool] = []
    session.wake = lambda: woken.append(True)
    session.deliver("x")
    session.close()
    assert woken == [True, True]


def test_frames_the_session_writes_are_unmasked_and_whole() -> None:
    session, peer = open_session()
    session.deliver("z" * 200)
    out = session.output(T0)
    assert out[0] == 0x80 | Opcode.TEXT.value and not out[1] & 0x80
    assert [isinstance(e, Message) for e in peer.read(out)] == [True]


# ---------------------------------------------------------------------------- frames read directly


@settings(max_examples=150, deadline=None)
@given(
    messages=st.lists(
        st.one_of(st.text(max_size=300), st.binary(max_size=3000)), min_size=1, max_size=8
    ),
    fragment=st.lists(st.booleans(), min_size=8, max_size=8),
    pings=st.lists(st.booleans(), min_size=8, max_size=8),
    cuts=st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=30),
)
def test_any_mix_of_frames_in_any_pieces_gives_the_messages_in_order(
    messages: list[str | bytes], fragment: list[bool], pings: list[bool], cuts: list[int]
) -> None:
    """Whole frames are read directly, fragments and pings by wsproto: the same messages,
    in order, however the bytes are cut, and every ping answered."""
    session, peer = open_session(max_message_size=1 << 20)
    wire = b""
    for i, message in enumerate(messages):
        kind = TextMessage if isinstance(message, str) else BytesMessage
        if fragment[i] and len(message) > 1:
            half = len(message) // 2
            wire += peer.send(kind(message[:half], message_finished=False))
            if pings[i]:
                wire += peer.send(Ping(b"in-between"))  # allowed between fragments
            wire += peer.send(kind(message[half:], message_finished=True))
        else:
            wire += peer.send(kind(message))
            if pings[i]:
                wire += peer.send(Ping(b"after"))
    got: list[str | bytes] = []
    pos = 0
    for cut in cuts * (len(wire) // max(1, sum(cuts)) + 1):
        if pos >= len(wire):
            break
        got += session.receive(wire[pos : pos + cut], T0)
        pos += cut
    got += session.receive(wire[pos:], T0) if pos < len(wire) else []
    assert got == messages
    pongs = [e for e in peer.read(session.output(T0)) if isinstance(e, Pong)]
    assert len(pongs) == sum(1 for i in range(len(messages)) if pings[i])


def masked(first: int, payload: bytes, *, length_bytes: bytes | None = None) -> bytes:
    mask = b"\x01\x02\x03\x04"
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    size = length_bytes if length_bytes is not None else bytes((0x80 | len(payload),))
    return bytes((first,)) + size + mask + body


def test_invalid_utf8_in_a_whole_frame_closes_with_1007() -> None:
    session, peer = open_session()
    assert session.receive(masked(0x81, b"ok \xff\xfe"), T0) == []
    assert session.state is WsState.CLOSED
    assert session.close_info is not None and session.close_info.code == 1007
    assert [e.code for e in peer.read(session.output(T0)) if isinstance(e, CloseConnection)] == [
        1007
    ]


def test_a_length_not_minimally_encoded_is_a_protocol_error() -> None:
    session, _ = open_session()
    frame = masked(0x81, b"hi", length_bytes=bytes((0x80 | 126,)) + (2).to_bytes(2, "big"))
    assert session.receive(frame, T0) == []
    assert session.close_info is not None and session.close_info.code == PROTOCOL_ERROR


def test_a_frame_with_rsv_bits_is_a_protocol_error() -> None:
    session, _ = open_session()
    assert session.receive(masked(0x81 | 0x40, b"hi"), T0) == []
    assert session.close_info is not None and session.close_info.code == PROTOCOL_ERROR


def test_a_whole_frame_over_the_limit_goes_the_long_way_and_closes_with_1009() -> None:
    session, peer = open_session(max_message_size=8)
    assert session.receive(peer.send(BytesMessage(b"z" * 9)), T0) == []
    events = peer.read(session.output(T0))
    assert [e.code for e in events if isinstance(e, CloseConnection)] == [MESSAGE_TOO_BIG]


def test_after_our_close_the_clients_messages_are_not_handed_over() -> None:
    session, peer = open_session()
    session.close(GOING_AWAY, "bye")
    session.output(T0)
    assert session.receive(peer.send(TextMessage("late")), T0) == []
    session.receive(peer.send(CloseConnection(GOING_AWAY)), T0)
    assert session.state is WsState.CLOSED


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_frames_written_at_every_length_boundary_read_back(size: int) -> None:
    session, peer = open_session(max_message_size=1 << 20)
    session.deliver("a" * size)
    session.deliver(b"b" * size)
    events = peer.read(session.output(T0))
    assert [(type(e), len(e.data)) for e in events] == [(TextMessage, size), (BytesMessage, size)]
    assert session.receive(peer.send(TextMessage("c" * size)), T0) == ["c" * size]
