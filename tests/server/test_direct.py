"""Ajax requests answered without Flask's dispatch (``direct_ajax``): the same answers as the
Flask view, and Flask's dispatch whenever something of the app would see it. Over real
sockets on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from flask import Flask, g, session

from flask_sente import EventMsg, Sente
from flask_sente.protocol import SKIP_CSRF_CHECK
from tests.support import serve_in_thread

TIMEOUT_S = 10


def make_app(**options: Any) -> tuple[Flask, Sente, list[EventMsg]]:
    app = Flask(__name__)
    app.secret_key = "test-direct-not-secret"
    seen: list[EventMsg] = []
    sente = Sente(
        app,
        csrf_token_fn=lambda req: SKIP_CSRF_CHECK,
        user_id_fn=lambda req: req.session.get("uid") or req.param("uid"),
        lp_timeout_ms=500,
        **options,
    )

    @app.get("/login/<name>")
    def login(name: str) -> str:
        session["uid"] = name
        session.permanent = True
        return "ok"

    @sente.on("t/echo")
    def echo(msg: EventMsg) -> None:
        seen.append(msg)
        assert msg.reply is not None
        msg.reply({"echo": msg.data, "uid": msg.uid})

    @sente.on("t/who")
    def who(msg: EventMsg) -> None:
        seen.append(msg)

    return app, sente, seen


@contextmanager
def serving(app: Flask, sente: Sente) -> Iterator[str]:
    with serve_in_thread(app) as url:
        yield url


def answers(url: str, web: requests.Session | None = None) -> list[tuple[int, str, str]]:
    """A handshake, a poll that times out, a send with a reply, one without, and the
    requests refused for what they lack: status, content type, body."""
    web = web or requests.Session()
    chsk = f"{url}/chsk"
    cid = {"client-id": "c1", "uid": "u1"}
    got = [
        web.get(chsk, params={**cid, "handshake?": "1"}, timeout=TIMEOUT_S),
        web.get(chsk, params=cid, timeout=TIMEOUT_S),
        web.post(
            chsk, data={**cid, "ppstr": json.dumps([["t/echo", 1], "ajax"])}, timeout=TIMEOUT_S
        ),
        web.post(chsk, data={**cid, "ppstr": json.dumps([["t/who", 2]])}, timeout=TIMEOUT_S),
        web.post(chsk, data={**cid, "ppstr": "[not json"}, timeout=TIMEOUT_S),
        web.get(chsk, params={"uid": "u1"}, timeout=TIMEOUT_S),
        web.post(chsk, data={**cid, "ppstr": "x" * (2 << 20)}, timeout=TIMEOUT_S),
    ]
    return [(r.status_code, r.headers.get("Content-Type", ""), r.text) for r in got]


def test_the_direct_answers_are_the_flask_views() -> None:
    direct_app, direct_sente, seen = make_app()
    flask_app, flask_sente, _ = make_app(direct_ajax=False)
    with serving(direct_app, direct_sente) as direct, serving(flask_app, flask_sente) as full:
        mine, theirs = answers(direct), answers(full)
    assert mine == theirs
    assert [status for status, _, _ in mine] == [200, 200, 200, 200, 400, 400, 413]
    assert not isinstance(seen[0].request.session, dict)  # read lazily: no Flask dispatch


def test_hooks_of_the_app_make_ajax_take_flasks_dispatch() -> None:
    app, sente, seen = make_app()
    calls: list[str] = []

    @app.before_request
    def before() -> None:
        g.marker = "set by before_request"
        calls.append("before")

    @app.after_request
    def after(response: Any) -> Any:
        response.headers["X-After"] = "yes"
        return response

    with serving(app, sente) as url:
        response = requests.post(
            f"{url}/chsk",
            data={"client-id": "c", "uid": "u", "ppstr": json.dumps([["t/echo", 3], "ajax"])},
            timeout=TIMEOUT_S,
        )
    assert response.status_code == 200 and response.headers["X-After"] == "yes"
    assert calls == ["before"]
    assert isinstance(seen[0].request.session, dict)  # the Flask view's snapshot


def test_the_session_is_read_and_refreshed_as_flask_does() -> None:
    direct_app, direct_sente, _ = make_app()
    flask_app, flask_sente, _ = make_app(direct_ajax=False)
    results = []
    for app, sente in ((direct_app, direct_sente), (flask_app, flask_sente)):
        with serving(app, sente) as url:
            web = requests.Session()
            assert web.get(f"{url}/login/alice", timeout=TIMEOUT_S).text == "ok"
            response = web.post(
                f"{url}/chsk",
                data={"client-id": "s1", "ppstr": json.dumps([["t/echo", 4], "ajax"])},
                timeout=TIMEOUT_S,
            )
            results.append((response.json(), "session=" in response.headers.get("Set-Cookie", "")))
    # the uid comes from the session; a permanent session's cookie is refreshed, both ways
    assert results[0] == results[1] == ([{"echo": 4, "uid": "alice"}, None], True)


def test_an_exception_goes_through_flasks_error_handling(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def failing(req: Any) -> Any:
        raise RuntimeError("no database")

    sente_failing = Sente(csrf_token_fn=lambda req: SKIP_CSRF_CHECK, user_id_fn=failing)
    app = Flask(__name__)
    sente_failing.init_app(app)

    @app.errorhandler(500)
    def oops(error: Any) -> tuple[str, int]:
        return "handled by the app", 500

    with serving(app, sente_failing) as url:
        response = requests.get(
            f"{url}/chsk", params={"client-id": "x", "handshake?": "1"}, timeout=TIMEOUT_S
        )
    assert (response.status_code, response.text) == (500, "handled by the app")
    assert "Exception on /chsk [GET]" in caplog.text


def test_an_app_wrapped_in_a_middleware_first_keeps_flasks_dispatch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="flask_sente.extension")
    app = Flask(__name__)
    inner = app.wsgi_app
    app.wsgi_app = lambda environ, start_response: inner(environ, start_response)  # type: ignore[method-assign]
    Sente(app, csrf_token_fn=lambda req: SKIP_CSRF_CHECK)
    assert "take Flask's dispatch" in caplog.text
