"""The client's pure parts: URLs, state events, the receive buffer, handlers, options."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from flask_sente.client import (
    ChRecv,
    Client,
    ClientEventMsg,
    is_client_event_msg,
    make_channel_socket_client,
)
from flask_sente.client.state_map import state_event_maps
from flask_sente.client.wire import encode_component, form_body, http_url, ws_url
from flask_sente.errors import ChannelClosed, ConfigError, InvalidEvent
from flask_sente.protocol import CLOSED

URL = "http://127.0.0.1:9/chsk"


def test_encoding_is_encode_uri_component_with_star() -> None:
    assert encode_component("handshake?") == "handshake%3F"
    assert encode_component("a b*c!~'()") == "a%20b%2Ac!~'()"
    assert encode_component(True) == "true"
    assert form_body([("udt", 1), ("ppstr", "[[:a/b 1] :ajax]"), ("x", None)]) == (
        "udt=1&ppstr=%5B%5B%3Aa%2Fb%201%5D%20%3Aajax%5D"
    )


def test_urls_switch_scheme_and_keep_param_order() -> None:
    params = {"uid": "u", "client-id": "c", "csrf-token": "a+/="}
    assert ws_url("https://h/chsk?x=1", params) == (
        "wss://h/chsk?x=1&uid=u&client-id=c&csrf-token=a%2B%2F%3D"
    )
    assert http_url("ws://h:5/chsk", {"handshake?": 1}) == "http://h:5/chsk?handshake%3F=1"
    with pytest.raises(ConfigError, match="absolute"):
        Client("/chsk")


def test_state_event_maps_add_transient_keys_like_sente() -> None:
    old = {"type": "ws", "open?": False, "ever-opened?": False}
    new = {"type": "ws", "open?": True, "ever-opened?": True, "first-open?": True}
    o, n, changed = state_event_maps(old, new)
    assert changed is True and o == old
    assert n == {**old, "open?": True, "ever-opened?": True, "open-changed?": True,
                 "opened?": True, "first-open?": True}  # fmt: skip
    _, closed, _ = state_event_maps(new, {**new, "open?": False})
    assert closed["closed?"] is True and "first-open?" not in closed
    _, same, changed = state_event_maps(new, {**new, "uid": "x"})
    assert changed is False and "open-changed?" not in same and "first-open?" not in same


def test_ch_recv_slides_and_wakes() -> None:
    ch = ChRecv(2)
    for i in range(3):
        ch.put(["a/b", i])
    assert ch.dropped == 1
    assert [ch.get(0).data, ch.get(0).data] == [1, 2]  # type: ignore[union-attr]
    assert ch.get(0.01) is None
    stop = threading.Event()
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.append(ch.get(cancel=stop)))
    reader.start()
    stop.set()
    ch.wake()
    reader.join(5)
    assert got == [None]
    with pytest.raises(ValueError):
        ChRecv(0)


def test_event_messages() -> None:
    msg = ClientEventMsg(["a/b", 1])
    assert is_client_event_msg(msg) and (msg.id, msg.data) == ("a/b", 1)
    assert not is_client_event_msg(ClientEventMsg(["nonamespace"]))
    assert not is_client_event_msg(["a/b"])
    with pytest.raises(RuntimeError):
        _ = msg.send_fn


def test_send_checks_events_and_callbacks_before_connecting() -> None:
    client = Client(URL)
    with pytest.raises(InvalidEvent):
        client.send(["no-namespace"])
    with pytest.raises(ValueError, match="timeout_ms"):
        client.send(["a/b"], cb=lambda r: None)
    got: list[Any] = []
    assert client.send(["a/b"], 100, got.append) is False
    assert got == [CLOSED]
    with pytest.raises(ChannelClosed):
        client.request(["a/b"], 1)


@pytest.mark.parametrize(
    "kwargs",
    [{"type": "sse"}, {"simulated_bad_conn_rate": 2}, {"packer": "xml"}, {"ws_kalive_ms": -1}],
)
def test_bad_options_say_what_is_wrong(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        Client(URL, **kwargs)


def test_make_channel_socket_client_returns_sentes_handles() -> None:
    attempts: list[str] = []

    def refusing(url: str, **kwargs: Any) -> Any:
        attempts.append(url)
        raise ConnectionRefusedError("nobody home")

    chsk = make_channel_socket_client(
        URL, "tok", type="ws", ws_constructor=refusing, backoff_ms_fn=lambda n: 60_000
    )
    try:
        assert chsk.chsk.connected and chsk.send_fn == chsk.chsk.send
        assert chsk.state is chsk.chsk.state and chsk.ch_recv is chsk.chsk.ch_recv
        assert chsk.state.wait_for(lambda s: "udt-next-reconnect" in s, 5)
        assert attempts[0].startswith("ws://127.0.0.1:9/chsk?client-id=")
        assert attempts[0].endswith("&csrf-token=tok&fs-last-seq=-") and len(attempts) == 2
    finally:
        chsk.chsk.disconnect()


def test_client_modules_import_nothing_from_flask() -> None:
    import ast
    from pathlib import Path

    import flask_sente.client as pkg

    for path in Path(pkg.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            elif isinstance(node, ast.ImportFrom) and node.level == 2:
                names = [f"flask_sente.{node.module}"]
            for name in names:
                assert not name.startswith(("flask.", "werkzeug")) and name != "flask", (path, name)
                assert not name.startswith(("flask_sente.extension", "flask_sente.server")), (
                    path,
                    name,
                )
