"""The extension itself: options and SENTE_* keys, several apps, Sente's named handles."""

from __future__ import annotations

import json
import logging
import threading

import pytest
import websocket
from flask import Flask

import flask_sente
from flask_sente import ConfigError, EdnPacker, Sente
from flask_sente.protocol import SKIP_CSRF_CHECK
from tests.server.harness import WsPeer, running
from tests.support import serve_in_thread, wait_until


def test_lp_timeout_must_be_under_60_seconds():
    with pytest.raises(ConfigError, match="lp_timeout_ms"):
        Sente(Flask(__name__), lp_timeout_ms=60000)


def test_unknown_options_and_bad_values_fail_at_start_naming_them():
    with pytest.raises(ConfigError, match="no_such_option"):
        Sente(no_such_option=1)
    with pytest.raises(ConfigError, match="allowed_origins"):
        Sente(allowed_origins="http://one.example")
    with pytest.raises(ConfigError, match="packer"):
        Sente(packer="fressian")


def test_config_keys_are_read_once_and_options_win_over_them():
    app = Flask(__name__)
    app.config.update(SENTE_PATH="/socket", SENTE_PACKER="edn", SENTE_LP_TIMEOUT_MS=1234)
    sente = Sente(app, lp_timeout_ms=999)
    server = sente.server(app)
    assert server.options.path == "/socket"
    assert isinstance(server.packer, EdnPacker)
    assert server.options.lp_timeout_ms == 999
    assert "sente.chsk" in {rule.endpoint for rule in app.url_map.iter_rules()}
    sente.close(app)


def test_one_extension_serves_several_apps_with_shared_handlers():
    sente = Sente(csrf_token_fn=lambda req: SKIP_CSRF_CHECK, user_id_fn=lambda req: req.client_id)
    seen: list[str] = []

    @sente.on("app/hello")
    def hello(msg):
        seen.append(msg.uid)
        msg.reply("hi")

    apps = [Flask("one"), Flask("two")]
    for app in apps:
        sente.init_app(app)
    with pytest.raises(RuntimeError, match="several apps"):
        sente.send("x", ["a/b"])
    for app in apps:
        with serve_in_thread(app) as url:
            ws = websocket.create_connection(url.replace("http", "ws") + "/chsk?client-id=c1")
            ws.recv()
            ws.send(json.dumps([["app/hello"], "abc123"]))
            assert json.loads(ws.recv()) == ["hi", "abc123"]
            ws.close()
    assert seen == ["c1", "c1"]


def test_start_router_replaces_the_decorators_and_stops():
    with running() as server:
        got: list = []
        done = threading.Event()

        def handler(msg):
            got.append(msg.id)
            if msg.id == "test/custom":
                msg.reply("custom")
                done.set()

        stop = server.sente.start_router(handler, simple_auto_threading=True)
        peer = WsPeer(server, uid="r")
        peer.recv()
        peer.send(["test/custom"], "cust01")
        assert peer.recv() == ("custom", "cust01")
        assert done.wait(5)
        stop()
        peer.send(["test/echo", 1], "echo01")  # nobody routes it now
        assert peer.nothing_within(0.3)
        assert "chsk/uidport-open" in got
        peer.close()


def test_sente_named_handles_and_helpers():
    assert flask_sente.sente_version >= (1, 21, 0)
    assert flask_sente.is_event(["a/b", 1]) and not flask_sente.is_event(["ab"])
    with running() as server:
        sente = server.sente
        assert sente.send_fn == sente.send
        assert callable(sente.ajax_post_fn) and callable(sente.ajax_get_or_ws_handshake_fn)
        assert sente.connected_uids == {"ws": frozenset(), "ajax": frozenset(), "any": frozenset()}
        assert sente.health()["bus"] == "local"
        peer = WsPeer(server, uid="h")
        peer.recv()
        msg = server.recorder.wait_for(lambda m: m.id == "chsk/uidport-open")
        assert flask_sente.is_server_event_msg(msg) and flask_sente.is_event_msg(msg)
        peer.close()
    flask_sente.set_min_log_level("DEBUG")
    assert logging.getLogger("flask_sente").level == logging.DEBUG
    flask_sente.set_min_log_level(logging.WARNING)


def test_close_leaves_no_thread_behind(no_thread_leaks):
    with running() as server:
        peer = WsPeer(server, uid="z")
        peer.recv()
        wait_until(lambda: server.app.extensions["sente"].loop.connections == 1)
        peer.close()
