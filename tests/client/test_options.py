"""Client options that reach the wire or the state: ``headers``, ``ws_opts``, ``ajax_opts``,
Sente's older option names, ``csrf-token`` in the state and ``last-ws-close``'s ``ev``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from flask_sente.client import Client
from flask_sente.client.transport import WsClose
from flask_sente.errors import ConfigError
from flask_sente.protocol import Keyword
from tests.client.helpers import next_matching
from tests.client.sente_server import CSRF, ScriptedSente

URL = "http://127.0.0.1:9/chsk"


def channel_requests(sente: ScriptedSente) -> list[tuple[str, dict[str, str]]]:
    """``(method, headers)`` of every channel socket request, header names in lower case."""
    with sente.cond:
        log = list(sente.http_log)
    return [
        (method, {k.lower(): v for k, v in headers.items()})
        for method, path, headers, _ in log
        if urlsplit(path).path == "/chsk"
    ]


@pytest.mark.parametrize("transport", ["ws", "ajax"])
def test_headers_go_on_every_request(
    sente: ScriptedSente, make_client: Callable[..., Client], transport: str
) -> None:
    client = make_client(sente.url, type=transport, headers={"X-App": "v1"}).connect()
    assert client.wait_open(5)
    assert client.request(["test/echo", 1], 5) == {Keyword("echo"): 1}
    requests = channel_requests(sente)
    assert {method for method, _ in requests} == ({"GET"} if transport == "ws" else {"GET", "POST"})
    assert all(headers.get("x-app") == "v1" for _, headers in requests), requests


def test_the_websocket_sends_no_origin_unless_asked(
    sente: ScriptedSente, make_client: Callable[..., Client]
) -> None:
    """Like Sente's JVM and Node clients (transcripts, F2); a browser's Origin is its own."""
    plain = make_client(sente.url, type="ws").connect()
    assert plain.wait_open(5)
    asked = make_client(sente.url, type="ws", headers={"Origin": "http://site.test"}).connect()
    assert asked.wait_open(5)
    first, second = channel_requests(sente)
    assert "origin" not in first[1]
    assert second[1]["origin"] == "http://site.test"


def test_ws_opts_reach_websocket_client(
    sente: ScriptedSente, make_client: Callable[..., Client]
) -> None:
    ws_opts = {
        "cookie": "session=abc",
        "origin": "http://site.test",
        "header": ["X-Extra: 1"],
        "timeout": 3,
    }
    client = make_client(sente.url, type="ws", ws_opts=ws_opts).connect()
    assert client.wait_open(5)
    [(_, upgrade)] = channel_requests(sente)
    assert (upgrade["cookie"], upgrade["origin"], upgrade["x-extra"]) == (
        "session=abc",
        "http://site.test",
        "1",
    )


def test_ajax_opts_reach_requests(
    scripted: Callable[..., ScriptedSente], make_client: Callable[..., Client]
) -> None:
    sente = scripted(lp_timeout_ms=60_000)  # holds every poll for a minute
    ajax_opts = {
        "cookies": {"session": "abc"},
        "auth": ("user", "pw"),
        "headers": {"X-From-Opts": "1"},
        "timeout_ms": 300,
    }
    client = make_client(sente.url, type="ajax", ajax_opts=ajax_opts).connect()
    assert client.wait_open(5)
    assert client.request(["test/echo", 2], 5) == {Keyword("echo"): 2}
    # timeout_ms: the client ends each poll itself after 0.3 s and polls again
    assert sente.wait_for(lambda: len([m for m, _ in channel_requests(sente) if m == "GET"]) >= 4)
    for _, headers in channel_requests(sente):
        assert headers["cookie"] == "session=abc"
        assert headers["authorization"] == "Basic dXNlcjpwdw=="
        assert headers["x-from-opts"] == "1"


def test_sentes_older_option_names() -> None:
    assert Client(URL, client_uuid="cid-1").client_id == "cid-1"
    assert Client(URL, client_id="cid-1", client_uuid="cid-1").client_id == "cid-1"
    with pytest.raises(ConfigError, match="client_uuid is Sente's older name for client_id"):
        Client(URL, client_id="cid-1", client_uuid="cid-2")
    assert Client(URL, ws_kalive_ping_timeout_ms=1234)._protocol._ws.ping_timeout_ms == 1234
    assert Client(URL)._protocol._ws.ping_timeout_ms == 5000
    with pytest.raises(ConfigError, match="ws_kalive_ping_timeout_ms"):
        Client(URL, ws_ping_timeout_ms=1000, ws_kalive_ping_timeout_ms=2000)


def test_the_state_holds_the_csrf_token_as_given() -> None:
    assert Client(URL, csrf_token=CSRF).state["csrf-token"] == CSRF
    assert Client(URL).state["csrf-token"] is None

    def token() -> str:
        return CSRF

    assert Client(URL, csrf_token=token).state["csrf-token"] is token


def test_last_ws_close_has_the_close_event(
    sente: ScriptedSente, make_client: Callable[..., Client]
) -> None:
    client = make_client(sente.url, type="ws").connect()
    assert client.wait_open(5)
    client.send(["test/close-me"])

    def closed(msg: Any) -> bool:
        return msg.id == "chsk/state" and bool(msg.data[1].get("closed?"))

    ws_close = next_matching(client, closed).data[1]["last-ws-close"]
    assert ws_close["ev"] == WsClose(1000, "", True)
    assert (ws_close["code"], ws_close["reason"], ws_close["clean?"]) == (1000, "", True)
