"""The quickstart's handlers tested in-process with ``sente.test_client()``: no server, no network.

docs/testing.md shows this file as the example of testing an application.
"""

from __future__ import annotations

import pytest

from examples.quickstart import app, sente
from flask_sente import ChannelClosed


@pytest.fixture(scope="module", autouse=True)
def close_sente_after_the_tests():
    yield
    sente.close(app)


def test_hello_replies_then_pushes_three_ticks():
    web = app.test_client()
    web.get("/")  # the page route puts a uid and a CSRF token in the session
    with web.session_transaction() as session:
        uid, token = session["uid"], session["csrf"]

    with sente.test_client(web, csrf_token=token) as chsk:
        assert chsk.uid == uid
        reply = chsk.request(["demo/hello", {"name": "test"}], timeout=5)
        assert reply == {"greeting": f"hello test, you are {uid}"}
        ticks = [chsk.next_event(timeout=5) for _ in range(3)]
        assert [(e.id, e.data) for e in ticks] == [("demo/tick", n) for n in (1, 2, 3)]
        assert uid in sente.connected_uids["any"]


def test_without_the_session_token_the_channel_socket_is_refused():
    web = app.test_client()
    web.get("/")
    with pytest.raises(ChannelClosed, match="403"):
        sente.test_client(web, csrf_token="not-the-token").connect()
