"""flask_sente.testing: an app's handlers tested in-process, through the real route."""

from __future__ import annotations

import pytest
from flask import Flask, session

from flask_sente import ChannelClosed, ReplyTimeout, Sente
from flask_sente.client import Client
from tests.support import wait_until


@pytest.fixture
def app():
    app = Flask(__name__)
    app.secret_key = "test"
    sente = Sente(app, csrf_token_fn=lambda req: req.session.get("csrf"), send_buf_ms_ws=5)

    @app.post("/login")
    def login():
        session["uid"] = "alice"
        session["csrf"] = "tok"
        return "ok"

    @sente.on("chat/send")
    def chat_send(msg):
        sente.send(msg.uid, ["chat/msg", {"from": msg.uid, "text": msg.data["text"]}])
        if msg.reply:
            msg.reply({"ok": True, "uid": msg.uid})

    @sente.on("chat/slow")
    def slow(msg):
        pass

    app.extensions["sente_extension"] = sente
    yield app
    sente.close(app)


def test_a_login_through_a_normal_route_carries_over(no_thread_leaks, app):
    sente = app.extensions["sente_extension"]
    web = app.test_client()
    web.post("/login")
    with sente.test_client(web, csrf_token="tok") as chsk:
        assert chsk.uid == "alice"
        assert chsk.request(["chat/send", {"text": "hi"}], timeout=5) == {
            "ok": True,
            "uid": "alice",
        }
        pushed = chsk.next_event(timeout=5)
        assert (pushed.id, pushed.data) == ("chat/msg", {"from": "alice", "text": "hi"})
        assert [e.id for e in chsk.received()] == ["chat/msg"]
        assert "alice" in sente.connected_uids["ws"]


def test_the_security_checks_run_as_for_any_request(app):
    sente = app.extensions["sente_extension"]
    web = app.test_client()
    web.post("/login")
    with pytest.raises(ChannelClosed, match="403"):
        sente.test_client(web, csrf_token="wrong").connect()


def test_no_reply_times_out_with_a_typed_error(app):
    sente = app.extensions["sente_extension"]
    web = app.test_client()
    web.post("/login")
    with sente.test_client(web, csrf_token="tok") as chsk:
        with pytest.raises(ReplyTimeout):
            chsk.request(["chat/slow"], timeout=0.3)
        with pytest.raises(TimeoutError):
            chsk.next_event(timeout=0.1)


def test_the_test_client_runs_the_production_client(no_thread_leaks, app):
    sente = app.extensions["sente_extension"]
    web = app.test_client()
    web.post("/login")
    with sente.test_client(web, csrf_token="tok") as chsk:
        client = chsk.client
        assert isinstance(client, Client) and chsk.status_code == 101
        assert (client.state["open?"], client.state["type"], client.state["uid"]) == (
            True,
            "ws",
            "alice",
        )
        replies: list = []
        assert client.send(["chat/send", {"text": "cb"}], 5000, replies.append)
        wait_until(lambda: replies, 5)
        assert replies == [{"ok": True, "uid": "alice"}]
        sente.send("alice", ["chsk/close"])  # the server closes: it stays closed
        assert client.state.wait_for(lambda s: not s["open?"], 5)
        assert client.state["last-close"]["reason"] == "clean"
        with pytest.raises(ChannelClosed):
            chsk.send(["chat/send", {"text": "after"}])
        assert not client.state["open?"]
