"""flask_sente.testing: an app's handlers tested in-process, through the real route."""

from __future__ import annotations

import pytest
from flask import Flask, session

from flask_sente import ChannelClosed, ReplyTimeout, Sente


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
