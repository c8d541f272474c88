"""Binary packers end to end: msgpack and gzip+json/edn/msgpack over both transports.

WebSocket messages travel as binary frames; Ajax POSTs carry the packed bytes as the body
with ``binary?=true`` in the query, and every answer is application/octet-stream (spec 1.3).
"""

from __future__ import annotations

import array
import datetime as dt
import hashlib
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from msgpack import ExtType

from flask_sente.client import Client
from flask_sente.packers import GzipPacker
from flask_sente.values import Char, Keyword, Symbol
from tests.server.harness import (
    BinaryAjaxPeer,
    BinaryWsPeer,
    Server,
    WsPeer,
    binary_body,
    running,
)
from tests.test_msgpack import values as msgpack_values

K = Keyword
PACKERS = ["msgpack", "gzip+msgpack", "gzip+json", "gzip+edn"]
HANDSHAKE_DATA = {"hello": "world", "n": 1}
#: 64 KiB that gzip cannot shrink, and 100 KB that it can.
NOISE = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(2048))
TEXT = "All work and no play makes Jack a dull boy. " * 2300


def nested(depth: int = 3) -> Any:
    rows = [{"id": i, "name": f"user-{i}", "score": i / 4, "on": i % 2 == 0} for i in range(20)]
    return {"rows": rows, "deeper": nested(depth - 1) if depth else None, "empty": [{}, []]}


def payload(packer: str) -> dict[str, Any]:
    """Nested data and every type the packer carries."""
    data: dict[str, Any] = {
        "nested": nested(),
        "text": TEXT,
        "unicode": "é€😀\u0000",
        "big": 2**40,
        "negative": -(2**63),
        "float": -1.5e300,
        "flags": [True, False, None],
    }
    if packer.endswith("msgpack"):
        data.update(
            {
                "bytes": bytes(range(256)),
                "noise": NOISE,
                "keyword": K("a/b"),
                "symbol": Symbol("ns/sym"),
                "char": Char("€"),
                "ratio": Fraction(-2, 3),
                "set": frozenset({1, "x", K("k"), (1, 2)}),
                "uuid": uuid.UUID("0f8e4c2a-7d1b-4c3e-9a5f-1b2c3d4e5f60"),
                "when": dt.datetime(2024, 1, 2, 3, 4, 5, 6007, tzinfo=dt.UTC),
                "ints": array.array("i", [1, -2, 2**31 - 1]),
                "floats": array.array("f", [0.5, -2.0]),
                "doubles": array.array("d", [0.1, 1e300]),
                "ext": ExtType(42, b"\x01\x02"),
                "unsigned": 2**64 - 1,
                (1, frozenset({K("x")})): "a collection key",
                "ids": [{"id": i} for i in range(300)],  # more keys than the key cache holds
            }
        )
    elif packer.endswith("edn"):
        data.update(
            {
                "keyword": K("a/b"),
                "symbol": Symbol("ns/sym"),
                "char": Char("€"),
                "ratio": Fraction(-2, 3),
                "decimal": Decimal("1.25"),
                "set": frozenset({1, "x", K("k")}),
                "uuid": uuid.UUID("0f8e4c2a-7d1b-4c3e-9a5f-1b2c3d4e5f60"),
                "when": dt.datetime(2024, 1, 2, 3, 4, 5, 6000, tzinfo=dt.UTC),
            }
        )
    return data


@pytest.fixture(scope="module", params=PACKERS)
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    with running(packer=request.param) as s:
        yield s


def name(server: Server) -> str:
    return str(server.packer.name)


# ---------------------------------------------------------------------------- WebSocket


def test_ws_handshake_is_a_binary_frame(server: Server) -> None:
    peer = BinaryWsPeer(server, uid="ws-hs")
    try:
        assert peer.recv() == ([K("chsk/handshake"), ["ws-hs", None, HANDSHAKE_DATA]], None)
    finally:
        peer.close()


def test_msgpack_ws_handshake_bytes() -> None:
    with running(packer="msgpack") as s:
        peer = BinaryWsPeer(s, uid="u1")
        try:
            assert (
                peer.recv_binary().hex()
                == (
                    "9292c70e006368736b2f68616e647368616b65"  # [[:chsk/handshake
                    "93a27531c0"  # ["u1" nil
                    "82c70500" + b"hello".hex() + "a5" + b"world".hex() + "d4006e01"  # {:hello...
                    "c0"  # ] nil]
                )
            )
        finally:
            peer.close()


def test_ws_callback_round_trip_of_everything(server: Server) -> None:
    data = payload(name(server))
    peer = BinaryWsPeer(server, uid="ws-echo")
    try:
        peer.recv()
        peer.send(["test/echo", data], "3f2e1d")
        assert peer.recv() == ({"echo": data}, "3f2e1d")
    finally:
        peer.close()


def test_ws_push_arrives_as_a_binary_frame(server: Server) -> None:
    data = payload(name(server))
    peer = BinaryWsPeer(server, uid="ws-push")
    try:
        peer.recv()
        peer.send(["test/push-me", data])
        assert peer.recv() == ([[K("test/pushed"), {"got": data}]], None)
    finally:
        peer.close()


def test_gzip_shrinks_ws_frames() -> None:
    with running(packer="gzip+msgpack") as s:
        peer = BinaryWsPeer(s, uid="ws-gz")
        try:
            assert peer.recv_binary()[:1] == b"\x00"  # the handshake is under the threshold
            peer.send(["test/echo", TEXT], "abcdef")
            frame = peer.recv_binary()
            assert frame[:1] == b"\x01" and len(frame) < len(TEXT) // 50
            assert GzipPacker("msgpack").unpack(frame) == [{"echo": TEXT}, "abcdef"]
        finally:
            peer.close()


def test_server_ping_is_a_binary_frame() -> None:
    with running(packer="msgpack", ws_kalive_ms=300) as s:
        peer = BinaryWsPeer(s)
        try:
            peer.recv()
            assert peer.recv_binary().hex() == "92c70c006368736b2f77732d70696e67c0"
        finally:
            peer.close()


def test_a_text_frame_to_a_binary_server_is_a_bad_package(server: Server) -> None:
    peer = WsPeer(server, uid="ws-text")
    try:
        peer.ws.recv()
        peer.send_raw('[["test/echo",1],"3f2e1d"]')
        msg = server.recorder.wait_for(lambda m: m.id == "chsk/bad-package" and m.uid == "ws-text")
        assert msg.data == '[["test/echo",1],"3f2e1d"]'
    finally:
        peer.close()


# ---------------------------------------------------------------------------- Ajax


def test_ajax_handshake_is_octet_stream(server: Server) -> None:
    peer = BinaryAjaxPeer(server, uid="ajax-hs")
    body = binary_body(peer.get(handshake=True))
    assert server.packer.unpack(body) == [
        [K("chsk/handshake"), ["ajax-hs", None, HANDSHAKE_DATA]],
        None,
    ]


def test_ajax_post_round_trip_of_everything(server: Server) -> None:
    data = payload(name(server))
    peer = BinaryAjaxPeer(server, uid="ajax-echo")
    assert peer.request(["test/echo", data]) == ({"echo": data}, None)


def test_ajax_post_without_callback_is_answered_dummy_cb(server: Server) -> None:
    peer = BinaryAjaxPeer(server, uid="ajax-noop")
    assert server.packer.unpack(binary_body(peer.post(["test/noop", 1]))) == [
        K("chsk/dummy-cb-200"),
        None,
    ]
    msg = server.recorder.wait_for(lambda m: m.id == "test/noop" and m.uid == "ajax-noop")
    assert msg.data == 1 and msg.reply is None


def test_ajax_long_poll_returns_the_push_and_times_out_in_binary(server: Server) -> None:
    data = payload(name(server))
    peer = BinaryAjaxPeer(server, uid="ajax-push")
    binary_body(peer.get(handshake=True))
    assert peer.poll() == (K("chsk/timeout"), None)  # lp_timeout_ms is 1000 here
    polled: list[Any] = []
    poller = threading.Thread(target=lambda: polled.append(peer.poll()))
    poller.start()
    server.recorder.wait_for(lambda m: m.id == "chsk/uidport-open" and m.data == "ajax-push")
    server.sente.send("ajax-push", ["test/pushed", data], flush=True)
    poller.join(10)
    assert polled == [([[K("test/pushed"), data]], None)]


def test_a_form_post_to_a_binary_server_is_refused(server: Server) -> None:
    response = requests.post(
        server.chsk,
        data={"udt": "1", "client-id": "form", "ppstr": '[["test/echo",1],"ajax"]'},
        timeout=10,
    )
    assert response.status_code == 400
    assert "could not be unpacked" in response.text


# ---------------------------------------------------------------------------- properties


@pytest.fixture(scope="module")
def msgpack_peer() -> Iterator[BinaryWsPeer]:
    with running(packer="msgpack") as s:
        peer = BinaryWsPeer(s, uid="prop")
        peer.recv()
        yield peer
        peer.close()


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(msgpack_values)
def test_any_msgpack_value_comes_back_from_the_server(
    msgpack_peer: BinaryWsPeer, value: Any
) -> None:
    msgpack_peer.send(["test/echo", value], "a1b2c3")
    assert msgpack_peer.recv() == ({"echo": value}, "a1b2c3")


# ---------------------------------------------------------------------------- Python client


@pytest.mark.parametrize("transport", ["ws", "ajax"])
def test_the_python_client_carries_bytes(server: Server, transport: str) -> None:
    data = payload(name(server))
    with Client(server.chsk, packer=name(server), type=transport) as client:
        assert client.request(["test/echo", data], timeout=10) == {"echo": data}
        client.send(["test/push-me", data])
        while (msg := client.next_event(timeout=10)) is not None:
            if msg.id == "test/pushed":
                assert msg.data == {"got": data}
                return
    raise AssertionError("the push never arrived")
