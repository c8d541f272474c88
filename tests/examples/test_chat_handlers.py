"""The chat demo's handlers in-process with ``sente.test_client()``, logged in through the
app's own login route. docs/testing.md shows the last test as its first example."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_sente import Sente
from tests.support import ROOT


def load_chat_demo() -> object:
    """``examples/chat/app.py``, which runs as a script and is no package to import."""
    spec = importlib.util.spec_from_file_location("chat_demo", ROOT / "examples/chat/app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["chat_demo"] = module  # Flask finds the templates through it
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def chat(tmp_path: Path) -> Iterator[Any]:
    chat = load_chat_demo().create_chat(instance=str(tmp_path))
    yield chat
    chat.sente.close(chat.app)


@pytest.fixture
def app(chat: Any) -> Flask:
    return chat.app


@pytest.fixture
def sente(chat: Any) -> Sente:
    return chat.sente


def test_a_visitor_may_not_send(app: Flask, sente: Sente) -> None:
    web = app.test_client()
    web.get("/")
    with web.session_transaction() as session:
        token = session["csrf"]
    with sente.test_client(web, csrf_token=token) as chsk:
        assert chsk.uid == "sente/nil-uid"
        assert chsk.request(["chat/send", {"text": "hi"}]) == {
            "ok": False,
            "error": "log in first",
        }


def test_a_user_logged_in_through_a_route(app: Flask, sente: Sente) -> None:
    web = app.test_client()  # Flask's own test client
    web.get("/")  # the page puts a CSRF token in the session...
    with web.session_transaction() as session:
        token = session["csrf"]
    web.post("/login", data={"user": "alice", "csrf_token": token})  # ...and a route logs in
    with sente.test_client(web, csrf_token=token) as chsk:  # same cookies, same session
        assert chsk.uid == "alice"
        assert chsk.request(["chat/send", {"text": "hi"}], timeout=2) == {"ok": True, "id": 1}
        pushed = chsk.next_event(timeout=2)
        while pushed.id != "chat/msg":  # who is online comes first
            pushed = chsk.next_event(timeout=2)  # raises ReplyTimeout after 2 s
        assert pushed.data["text"] == "hi"
