"""A push that cannot be packed is refused at the call; nothing already queued is affected.

Over real sockets (WebSocket and Ajax on 127.0.0.1) and through ``sente.test_client()``,
with a text and a binary packer: ``send``, ``broadcast``, ``msg.reply`` and the Emitter
raise ``PackError`` / ``InvalidEvent`` to their caller, and every other push still arrives.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from flask_sente import Emitter, EventMsg, InvalidEvent, InvalidUid, PackError, Sente, SenteError
from tests.server.harness import AjaxPeer, BinaryAjaxPeer, BinaryWsPeer, WsPeer, jsonish, running
from tests.support import wait_until

UNPACKABLE = object()


def add_bad_reply_handler(sente: Sente) -> None:
    @sente.on("t/bad-reply")
    def bad_reply(msg: EventMsg) -> None:
        assert msg.reply is not None
        try:
            msg.reply(["cannot", UNPACKABLE])
        except PackError as exc:
            msg.reply({"refused": type(exc).__name__})


@pytest.fixture(params=["json", "edn", "msgpack"])
def app(request: pytest.FixtureRequest) -> Iterator[Flask]:
    app = Flask(__name__)
    sente = Sente(
        app,
        packer=request.param,
        csrf_token_fn=None,
        user_id_fn=lambda req: req.param("uid"),
        send_buf_ms_ws=5,
    )
    add_bad_reply_handler(sente)
    app.extensions["sente_extension"] = sente
    yield app
    sente.close(app)


def test_the_issues_example_in_process(app: Flask) -> None:
    sente = app.extensions["sente_extension"]
    with sente.test_client(uid="u1") as chsk:
        sente.send("u1", ["t/a", 1])
        with pytest.raises(PackError):
            sente.send("u1", ["t/b", UNPACKABLE])
        sente.send("u1", ["t/c", 3])
        assert [chsk.next_event(5).event for _ in range(2)] == [["t/a", 1], ["t/c", 3]]
        sente.send("u1", ["t/d", 4], flush=True)  # and the pushes after it too
        assert chsk.next_event(5).event == ["t/d", 4]
        assert [e.id for e in chsk.received()] == ["t/a", "t/c", "t/d"]


def test_broadcast_refuses_before_any_uid_whoever_is_connected(app: Flask) -> None:
    sente = app.extensions["sente_extension"]
    assert sente.connected_uids["any"] == frozenset()
    with pytest.raises(InvalidEvent):
        sente.broadcast("chat/x")  # not an event vector: refused with nobody connected too
    with pytest.raises(PackError):
        sente.broadcast(["chat/x", UNPACKABLE])
    with sente.test_client(uid="a") as a, sente.test_client(uid="b") as b:
        with pytest.raises(InvalidEvent):
            sente.broadcast("chat/x")
        with pytest.raises(PackError):
            sente.broadcast(["chat/x", {"n": UNPACKABLE}])
        sente.broadcast(["chat/y", 1], flush=True)
        assert a.next_event(5).event == ["chat/y", 1]
        assert b.next_event(5).event == ["chat/y", 1]


def test_send_checks_its_arguments(app: Flask) -> None:
    sente = app.extensions["sente_extension"]
    with pytest.raises(InvalidUid):
        sente.send(None, ["t/a", 1])
    with pytest.raises(InvalidEvent):
        sente.send("u1", ["no-namespace", 1])
    assert issubclass(InvalidUid, SenteError) and issubclass(InvalidUid, ValueError)


def test_a_handlers_unpackable_reply_raises_in_the_handler(app: Flask) -> None:
    sente = app.extensions["sente_extension"]
    with sente.test_client(uid="u1") as chsk:
        assert chsk.request(["t/bad-reply"], timeout=5) == {"refused": "PackError"}


# ---------------------------------------------------------------------------- real sockets


@pytest.fixture(params=["json", "msgpack"])
def packer_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def peers(packer_name: str) -> tuple[type[WsPeer], type[AjaxPeer]]:
    if packer_name == "msgpack":
        return BinaryWsPeer, BinaryAjaxPeer
    return WsPeer, AjaxPeer


def pushed_events(peer: WsPeer, count: int) -> list[Any]:
    events: list[Any] = []
    while len(events) < count:
        value, _ = peer.recv()
        if isinstance(value, list) and value and value[0] != "chsk/handshake":
            events += value
    return jsonish(events)


def test_over_a_websocket(packer_name: str) -> None:
    ws_peer, _ = peers(packer_name)
    with running(packer=packer_name, send_buf_ms_ws=5) as server:
        add_bad_reply_handler(server.sente)
        peer = ws_peer(server, uid="w")
        assert peer.recv()[0][0] == "chsk/handshake"
        server.sente.send("w", ["t/a", 1])
        with pytest.raises(PackError):
            server.sente.send("w", ["t/b", UNPACKABLE])
        server.sente.send("w", ["t/c", 3])
        assert pushed_events(peer, 2) == [["t/a", 1], ["t/c", 3]]
        peer.send(["t/bad-reply"], "cb-1")
        assert jsonish(peer.recv()) == [{"refused": "PackError"}, "cb-1"]
        peer.close()


def test_over_ajax(packer_name: str) -> None:
    _, ajax_peer = peers(packer_name)
    with running(packer=packer_name) as server:
        add_bad_reply_handler(server.sente)
        peer = ajax_peer(server, uid="x")
        assert peer.get(handshake=True).status_code == 200
        server.sente.send("x", ["t/a", 1])
        with pytest.raises(PackError):
            server.sente.send("x", ["t/b", UNPACKABLE])
        server.sente.send("x", ["t/c", 3])
        got: list[Any] = []
        while len(got) < 2:
            value, _ = peer.poll()
            if isinstance(value, list):
                got += jsonish(value)
        assert got == [["t/a", 1], ["t/c", 3]]
        assert jsonish(peer.request(["t/bad-reply"])[0]) == {"refused": "PackError"}


def test_the_emitter_refuses_before_writing_to_redis(redis_url: str) -> None:
    with running(message_queue=redis_url, send_buf_ms_ws=5) as server, Emitter(redis_url) as em:
        peer = WsPeer(server, uid="e")
        assert peer.recv()[0][0] == "chsk/handshake"
        wait_until(lambda: "e" in em.connected_uids["any"], 5)
        assert em.send("e", ["t/a", 1]) is True
        with pytest.raises(PackError):
            em.send("e", ["t/b", UNPACKABLE])
        with pytest.raises(InvalidEvent):
            em.broadcast("t/not-a-vector")
        with pytest.raises(InvalidUid):
            em.send(None, ["t/a", 1])
        assert em.send("e", ["t/c", 3]) is True
        assert pushed_events(peer, 2) == [["t/a", 1], ["t/c", 3]]
        peer.close()
