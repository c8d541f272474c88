"""Rejections: CSRF, origin, authorization and reject_fn, in Sente's order (spec 4.6)."""

from __future__ import annotations

import flask
import pytest
import requests
import websocket

import flask_sente
from flask_sente import RequestSnapshot
from flask_sente.protocol import SKIP_CSRF_CHECK
from tests.server.harness import running

TOKEN = "test-csrf-token"


def ws_status(url: str, origin: str | None = None) -> int:
    try:
        ws = websocket.create_connection(
            url, timeout=5, origin=origin, suppress_origin=origin is None
        )
    except websocket.WebSocketBadStatusException as exc:
        return exc.status_code
    ws.close()
    return 101


@pytest.fixture
def server():
    with running(csrf_token=TOKEN) as s:
        yield s


def test_get_without_client_id_is_a_400_naming_it(server):
    response = requests.get(server.chsk, headers={"X-CSRF-Token": TOKEN})
    assert response.status_code == 400
    assert "client-id" in response.text


@pytest.mark.parametrize("method", ["post", "poll", "ws"])
def test_missing_or_wrong_csrf_token_is_403_everywhere(server, method):
    for token in (None, "wrong"):
        if method == "ws":
            query = f"?client-id=c{'&csrf-token=' + token if token else ''}"
            assert ws_status(server.ws_url + query) == 403
            continue
        headers = {"X-CSRF-Token": token} if token else {}
        if method == "post":
            response = requests.post(
                server.chsk, data={"client-id": "c", "ppstr": '[["a/b"],null]'}, headers=headers
            )
        else:
            response = requests.get(server.chsk, params={"client-id": "c"}, headers=headers)
        assert (response.status_code, response.text) == (403, "Bad CSRF token")


@pytest.mark.parametrize("where", ["param", "x-csrf-token", "x-xsrf-token"])
def test_token_is_accepted_from_param_or_either_header(server, where):
    params = {"client-id": "c", "handshake?": "1"}
    headers = {}
    if where == "param":
        params["csrf-token"] = TOKEN
    else:
        headers[where] = TOKEN
    assert requests.get(server.chsk, params=params, headers=headers).status_code == 200
    assert ws_status(server.ws_url + f"?client-id=c&csrf-token={TOKEN}") == 101


def test_default_csrf_fn_without_a_session_token_rejects_even_a_token():
    with running(csrf_token_fn=__import__("flask_sente.config").config.default_csrf_token_fn) as s:
        response = requests.get(s.chsk, params={"client-id": "c", "csrf-token": "anything"})
        assert response.status_code == 403


def test_csrf_token_fn_none_disables_the_check_with_a_warning(caplog):
    with caplog.at_level("WARNING", logger="flask_sente.config"), running(csrf_token_fn=None) as s:
        assert requests.get(s.chsk, params={"client-id": "c"}).status_code == 200
    assert "CSRF checking is DISABLED" in caplog.text


def test_skip_csrf_check_return_value_skips():
    with running(csrf_token_fn=lambda req: SKIP_CSRF_CHECK) as s:
        assert requests.get(s.chsk, params={"client-id": "c"}).status_code == 200


def test_origin_rules():
    with running(allowed_origins=["http://site.com"]) as s:

        def status(headers: dict[str, str]) -> int:
            return requests.get(s.chsk, params={"client-id": "c"}, headers=headers).status_code

        assert status({"Origin": "http://site.com"}) == 200
        response = requests.get(
            s.chsk, params={"client-id": "c"}, headers={"Origin": "http://evil.com"}
        )
        assert (response.status_code, response.text) == (403, "Unauthorized origin")
        assert status({"Referer": "http://site.com/page"}) == 200
        assert status({"Referer": "http://site.com.evil.com/"}) == 403
        assert status({}) == 403
        assert status({"Origin": "http://evil.com", "Referer": "http://site.com/page"}) == 403
        assert ws_status(s.ws_url + "?client-id=c", origin="http://evil.com") == 403
        assert ws_status(s.ws_url + "?client-id=c", origin="http://site.com") == 101


def test_csrf_is_checked_before_origin():
    with running(csrf_token=TOKEN, allowed_origins=["http://site.com"]) as s:
        response = requests.get(
            s.chsk, params={"client-id": "c"}, headers={"Origin": "http://evil.com"}
        )
        assert response.text == "Bad CSRF token"


def test_unauthorized_is_401():
    with running(authorized_fn=lambda req: req.param("key") == "k") as s:
        response = requests.get(s.chsk, params={"client-id": "c"})
        assert (response.status_code, response.text) == (401, "Unauthorized request")
        assert requests.get(s.chsk, params={"client-id": "c", "key": "k"}).status_code == 200
        assert ws_status(s.ws_url + "?client-id=c") == 401


def test_reject_fn_answer_is_returned_verbatim_before_every_other_check():
    seen = []

    def reject(req):
        seen.append(req.client_id)
        return ("slow down", 429) if req.param("slow") else None

    with running(csrf_token=TOKEN, allowed_origins=["http://site.com"], reject_fn=reject) as s:
        response = requests.get(
            s.chsk, params={"client-id": "c", "slow": "1"}, headers={"Origin": "http://evil.com"}
        )
        assert (response.status_code, response.text) == (429, "slow down")
        response = requests.get(s.chsk, params={"client-id": "d"})
        assert response.text == "Bad CSRF token"
    assert seen == ["c", "d"]


def test_maybe_unauthorized_fn_rejects_with_its_answer_after_every_other_check():
    """Sente's ``:?unauthorized-fn``: nil passes, anything else is the answer."""
    seen = []

    def maybe_unauthorized(req):
        seen.append(req.client_id)
        return ("banned", 401) if req.param("banned") else None

    with running(
        csrf_token=TOKEN,
        authorized_fn=lambda req: req.param("key") == "k",
        maybe_unauthorized_fn=maybe_unauthorized,
    ) as s:
        good = {"client-id": "ok", "csrf-token": TOKEN, "key": "k"}
        assert requests.get(s.chsk, params=good).status_code == 200
        response = requests.get(s.chsk, params={**good, "client-id": "b", "banned": "1"})
        assert (response.status_code, response.text) == (401, "banned")
        assert ws_status(s.ws_url + "?client-id=w&banned=1&key=k&csrf-token=" + TOKEN) == 401
        # a request refused earlier never reaches it
        assert requests.get(s.chsk, params={"client-id": "x", "banned": "1"}).status_code == 403
        response = requests.get(s.chsk, params={"client-id": "y", "csrf-token": TOKEN})
        assert response.text == "Unauthorized request"
    assert seen == ["ok", "b", "w"]


def test_custom_bad_csrf_and_bad_origin_answers_get_the_request():
    got = []

    def bad_csrf(req):
        got.append(("csrf", req.client_id))
        return {"error": "token"}, 419

    def bad_origin(req):
        got.append(("origin", req.header("origin")))
        return "not from here", 451

    with running(
        csrf_token=TOKEN,
        allowed_origins=["http://site.com"],
        bad_csrf_fn=bad_csrf,
        bad_origin_fn=bad_origin,
    ) as s:
        response = requests.get(s.chsk, params={"client-id": "c1"})
        assert (response.status_code, response.json()) == (419, {"error": "token"})
        response = requests.post(
            s.chsk,
            data={"client-id": "c2", "ppstr": '[["test/echo",1],"ajax"]'},
            headers={"X-CSRF-Token": TOKEN, "Origin": "http://evil.com"},
        )
        assert (response.status_code, response.text) == (451, "not from here")
        assert ws_status(s.ws_url + "?client-id=c3") == 419
    assert got == [("csrf", "c1"), ("origin", "http://evil.com"), ("csrf", "c3")]


def test_allow_origin_takes_flask_request_as_well_as_the_snapshot():
    app = flask.Flask(__name__)
    allowed = {"http://site.com"}
    cases = [
        ({"Origin": "http://site.com"}, True),
        ({"Origin": "http://evil.com", "Referer": "http://site.com/page"}, False),
        ({"Referer": "http://site.com/page"}, True),
        ({"Referer": "http://site.com.evil.com/"}, False),
        ({}, False),
    ]
    for headers, expected in cases:
        with app.test_request_context("/chsk", headers=headers):
            assert flask_sente.allow_origin(allowed, flask.request) is expected, headers
            assert flask_sente.allow_origin("all", flask.request) is True
            snapshot = RequestSnapshot(
                method="GET",
                path="/chsk",
                args={},
                headers={k.lower(): v for k, v in flask.request.headers.items()},
                cookies={},
                remote_addr=None,
                session={},
                client_id="c",
            )
            assert flask_sente.allow_origin(allowed, snapshot) is expected, headers
