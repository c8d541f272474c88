"""``Client(cookies=...)`` and ``csrf_from_page``: scripts reaching apps whose CSRF token
belongs to the session, over both transports, against a real Flask server on 127.0.0.1."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from http.cookiejar import CookieJar
from typing import Any

import pytest
import requests
from flask import Flask, Response, request, session

from flask_sente import Sente
from flask_sente.client import Client, csrf_from_page
from flask_sente.errors import ConfigError
from tests.support import serve_in_thread

PAGE = '<html><head><meta name="csrf-token" content="{token}"></head><body>hi</body></html>'


def session_app() -> Flask:
    """Flask's usual set-up: the CSRF token lives in the signed session cookie."""
    app = Flask(__name__)
    app.secret_key = secrets.token_hex(16)
    sente = Sente(
        app,
        user_id_fn=lambda req: req.session.get("uid"),
        csrf_token_fn=lambda req: req.session.get("csrf"),
        handshake_data_fn=lambda req: {"cookies": dict(req.cookies)},
    )

    @app.get("/")
    def page() -> str:
        session.setdefault("csrf", secrets.token_urlsafe(16))
        session["uid"] = request.args.get("as", "visitor")
        return PAGE.format(token=session["csrf"])

    @app.get("/bare")
    def bare() -> str:
        return "<html><head><title>no token here</title></head></html>"

    @app.after_request
    def mark_polls(response: Response) -> Response:
        if request.path == "/chsk" and request.method == "GET" and request.args.get("udt"):
            response.set_cookie("polled", "yes")  # a cookie set by an Ajax answer
        return response

    @sente.on("test/echo")
    def echo(msg: Any) -> None:
        msg.reply({"echo": msg.data, "uid": msg.uid})

    return app


@pytest.fixture
def base() -> Iterator[str]:
    with serve_in_thread(session_app()) as url:  # closes the extension after
        yield url


@pytest.mark.parametrize("kind", ["ws", "ajax"])
def test_a_session_from_the_page_opens_the_channel(
    no_thread_leaks: None, base: str, kind: str
) -> None:
    token, web = csrf_from_page(base + "/?as=alice")
    with Client(base + "/chsk", type=kind, csrf_token=token, cookies=web) as chsk:
        assert chsk.state["uid"] == "alice"
        assert chsk.state["type"] == kind
        sent = chsk.state["handshake-data"]["cookies"]
        assert sent["session"] == web.cookies["session"]
        assert chsk.request(["test/echo", 1], timeout=5) == {"echo": 1, "uid": "alice"}


@pytest.mark.parametrize("kind", ["ws", "ajax"])
def test_without_the_cookie_the_token_is_refused(base: str, kind: str) -> None:
    token, _ = csrf_from_page(base + "/")
    chsk = Client(base + "/chsk", type=kind, csrf_token=token).connect()
    try:
        # retried at once, then again after a backoff: twice refused, never open
        assert chsk.state.wait_for(lambda s: "udt-next-reconnect" in s, timeout=10)
        assert not chsk.state["open?"]
        if kind == "ws":
            assert chsk.state["last-ws-error"]["ex"].status_code == 403
    finally:
        chsk.disconnect()


def test_cookies_as_a_mapping_or_a_jar(base: str) -> None:
    token, web = csrf_from_page(base + "/?as=bob")
    as_dict = {"session": web.cookies["session"]}
    with Client(base + "/chsk", type="ws", csrf_token=token, cookies=as_dict) as chsk:
        assert chsk.state["uid"] == "bob"
    jar: CookieJar = web.cookies
    with Client(base + "/chsk", type="ajax", csrf_token=token, cookies=jar) as chsk:
        assert chsk.request(["test/echo", "x"], timeout=5) == {"echo": "x", "uid": "bob"}


def test_cookies_the_server_sets_over_ajax_land_in_the_session(base: str) -> None:
    token, web = csrf_from_page(base + "/?as=carol")
    assert "polled" not in web.cookies
    with Client(base + "/chsk", type="ajax", csrf_token=token, cookies=web) as chsk:
        assert chsk.state["open?"]
    assert web.cookies["polled"] == "yes"
    # ...and go out with the next WebSocket handshake, read from the jar at each connect
    with Client(base + "/chsk", type="ws", csrf_token=token, cookies=web) as chsk:
        assert chsk.state["handshake-data"]["cookies"]["polled"] == "yes"


def test_an_existing_session_is_used_and_returned(base: str) -> None:
    web = requests.Session()
    credentials = csrf_from_page(base + "/", session=web)
    assert credentials.session is web
    assert credentials.csrf_token == web.get(base + "/").text.split('content="')[1].split('"')[0]


def test_a_page_without_a_token_or_that_fails(base: str) -> None:
    with pytest.raises(ConfigError, match='has no <meta name="csrf-token"'):
        csrf_from_page(base + "/bare")
    with pytest.raises(requests.HTTPError, match="404"):
        csrf_from_page(base + "/no-such-page")


def test_cookies_of_another_kind_are_refused() -> None:
    with pytest.raises(ConfigError, match="cookies must be"):
        Client("http://127.0.0.1:1/chsk", cookies=["session=1"])  # type: ignore[arg-type]
