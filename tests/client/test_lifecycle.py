"""Connection lifecycle: reconnect and backoff, keepalive, breaks, threads, many clients."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest

from flask_sente.client import Client, ClientEventMsg
from flask_sente.errors import ChannelClosed
from flask_sente.protocol import CLOSED
from flask_sente.values import Keyword
from tests.client.helpers import (
    assert_no_client_threads,
    client_threads,
    next_id,
    next_matching,
    wait_until,
)
from tests.client.sente_server import CSRF, ScriptedSente

TRANSPORTS = ["ws", "ajax"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reconnects_after_server_restart_with_backoff_in_state(
    scripted: Callable[..., ScriptedSente], make_client: Callable[..., Client], transport: str
) -> None:
    sente = scripted(lp_timeout_ms=500)
    attempts: list[int] = []

    def backoff(n: int) -> int:
        attempts.append(n)
        return 300

    client = make_client(sente.url, type=transport, backoff_ms_fn=backoff).connect()
    assert client.wait_open(5)
    sente.stop()
    closed = next_matching(client, lambda m: m.id == "chsk/state" and m.data[1].get("closed?"))
    assert closed.data[1]["last-close"]["reason"] == "unexpected"
    # Attempt 1 is immediate and refused; attempt 2 waits backoff_ms_fn(2), shown in the state.
    assert client.state.wait_for(lambda s: "udt-next-reconnect" in s, 5)
    assert attempts and attempts[0] == 2
    restarted = scripted(port=sente.port, lp_timeout_ms=500)
    assert client.wait_open(10)
    assert "udt-next-reconnect" not in client.state
    assert next_id(client, "chsk/handshake").data[3] is False
    assert client.request(["test/echo", "back"], 5) == {Keyword("echo"): "back"}
    assert restarted.received


def test_default_backoff_is_sentes_with_a_ceiling() -> None:
    from flask_sente.client import exp_backoff, sente_exp_backoff

    for _ in range(50):
        assert 2000 <= exp_backoff(2) < 4000
        assert 4000 <= exp_backoff(3) < 8000
        assert exp_backoff(10) == 30_000
        assert 512_000 <= sente_exp_backoff(10) < 1_024_000
    assert exp_backoff(100, max_ms=5000) == 5000
    assert exp_backoff(0, min_ms=1500) == 1500  # n=0 gives [500, 1000)


def test_auto_keeps_trying_ws_while_the_server_is_down(
    scripted: Callable[..., ScriptedSente], make_client: Callable[..., Client]
) -> None:
    port = _free_port()
    client = make_client(
        f"http://127.0.0.1:{port}/chsk", type="auto", backoff_ms_fn=lambda n: 100
    ).connect()
    wait_until(lambda: client.state.get("last-ws-error"))
    scripted(port=port)
    assert client.wait_open(10)
    assert client.state["type"] == "ws"
    assert "last-close" not in client.state  # never downgraded


def test_client_keepalive_pings_and_gets_pong(
    sente: ScriptedSente, make_client: Callable[..., Client]
) -> None:
    client = make_client(sente.url, type="ws", ws_kalive_ms=400, ws_ping_timeout_ms=1000)
    client.connect()
    assert client.wait_open(5)
    assert sente.wait_for(lambda: len(sente.events("chsk/ws-ping")) >= 2)
    ping = sente.events("chsk/ws-ping")[0]
    assert ping.wire == f'[[:chsk/ws-ping] "{ping.cb}"]' and len(ping.cb) == 6
    assert f'["pong" "{ping.cb}"]' in sente.sent
    assert client.state["open?"] and sente.ws_upgrades == 1


def test_silent_break_is_found_by_the_keepalive(
    sente: ScriptedSente, make_client: Callable[..., Client]
) -> None:
    client = make_client(sente.url, type="ws", ws_kalive_ms=300, ws_ping_timeout_ms=300)
    client.connect()
    assert client.wait_open(5)
    next_id(client, "chsk/handshake")
    client.break_connection(close_ws=False)
    assert client.state["open?"], "a silent break goes unnoticed at first"
    closed = next_matching(
        client, lambda m: m.id == "chsk/state" and m.data[1].get("closed?"), timeout=10
    )
    assert closed.data[1]["last-close"]["reason"] == "ws-ping-timeout"
    assert next_id(client, "chsk/handshake").data[3] is False
    assert sente.ws_upgrades == 2


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_break_connection_reconnects(
    scripted: Callable[..., ScriptedSente], make_client: Callable[..., Client], transport: str
) -> None:
    sente = scripted(lp_timeout_ms=5000)
    client = make_client(sente.url, type=transport).connect()
    assert client.wait_open(5)
    next_id(client, "chsk/handshake")
    client.break_connection()
    closed = next_matching(client, lambda m: m.id == "chsk/state" and m.data[1].get("closed?"))
    # WebSocket: a 3000 CLOSE_ABNORMAL frame, then the socket is cut; the server's answer
    # may or may not get in first, so the close reads clean or not, as in a browser.
    assert closed.data[1]["last-close"]["reason"] in ("unexpected", "clean")
    assert client.wait_open(5)
    assert client.request(["test/echo", 2], 5) == {Keyword("echo"): 2}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reconnect_cycles_the_connection(
    sente: ScriptedSente, make_client: Callable[..., Client], transport: str
) -> None:
    client = make_client(sente.url, type=transport).connect()
    assert client.wait_open(5)
    next_id(client, "chsk/handshake")
    client.reconnect()
    closed = next_matching(client, lambda m: m.id == "chsk/state" and m.data[1].get("closed?"))
    assert closed.data[1]["last-close"]["reason"] == "requested-reconnect"
    assert next_id(client, "chsk/handshake").data[3] is False


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_after_disconnect_sends_are_closed_and_no_thread_is_left(
    sente: ScriptedSente, transport: str
) -> None:
    before = set(threading.enumerate())
    client = Client(sente.url, type=transport, packer="edn", csrf_token=CSRF).connect()
    assert client.wait_open(5)
    assert client_threads()
    client.send(["test/no-reply", 1], 60_000, lambda r: None)  # a callback left pending
    client.disconnect()
    wait_until(lambda: not [t for t in set(threading.enumerate()) - before if _ours(t)], 10)
    got: list[Any] = []
    assert client.send(["test/echo", 1], 1000, got.append) is False
    assert got == [CLOSED]
    with pytest.raises(ChannelClosed):
        client.request(["test/echo", 1], 1)
    assert not client.state["open?"]
    assert client.state["last-close"]["reason"] == "requested-disconnect"


def _ours(t: threading.Thread) -> bool:
    return not t.name.startswith(("scripted-sente", "conformance-output"))


def test_disconnect_answers_pending_callbacks_at_once(
    sente: ScriptedSente, make_client: Callable[..., Client]
) -> None:
    client = make_client(sente.url, type="ws").connect()
    assert client.wait_open(5)
    got: list[Any] = []
    done = threading.Event()
    client.send(["test/no-reply", 1], 60_000, lambda r: (got.append(r), done.set()))
    client.disconnect()
    assert done.wait(5) and got == [CLOSED]


def test_router_calls_handlers_and_stops(
    sente: ScriptedSente, make_client: Callable[..., Client]
) -> None:
    client = make_client(sente.url, type="ws")
    seen: dict[str, list[Any]] = {"pushed": [], "other": [], "errors": []}
    pushed = threading.Event()

    @client.on("test/pushed")
    def on_pushed(msg: ClientEventMsg) -> None:
        seen["pushed"].append((msg.data, threading.current_thread().name))
        if msg.data == 2:
            raise RuntimeError("boom")

    @client.on_default
    def other(msg: ClientEventMsg) -> None:
        seen["other"].append(msg.id)

    @client.on_error
    def error(msg: ClientEventMsg, exc: BaseException) -> None:
        seen["errors"].append((msg.data, str(exc)))
        pushed.set()

    stop = client.start_router()
    client.connect()
    assert client.wait_open(5)
    client.send(["test/push-3"])
    assert pushed.wait(5)
    assert [d for d, _ in seen["pushed"]] == [0, 1, 2]
    assert seen["pushed"][0][1].endswith("-router")
    assert "chsk/handshake" in seen["other"] and "chsk/state" in seen["other"]
    assert seen["errors"] == [(2, "boom")]
    stop()
    wait_until(lambda: not [t for t in client_threads() if t.name.endswith("-router")])


def test_state_watch_sees_every_change(
    sente: ScriptedSente, make_client: Callable[..., Client]
) -> None:
    client = make_client(sente.url, type="ws")
    changes: list[tuple[Any, bool, bool]] = []
    client.state.add_watch(
        "w", lambda k, ref, old, new: changes.append((k, old["open?"], new["open?"]))
    )
    client.connect()
    assert client.wait_open(5)
    wait_until(lambda: ("w", False, True) in changes)
    client.state.remove_watch("w")
    with pytest.raises(TypeError):
        client.state["open?"] = False  # type: ignore[index]


def test_context_manager_opens_and_disconnects(sente: ScriptedSente) -> None:
    with Client(sente.url, packer="edn", csrf_token=CSRF) as client:
        assert client.state["open?"]
        assert client.request(["test/reply-str"], 5) == "a-string-reply"
    assert not client.connected
    assert_no_client_threads()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_simulated_bad_connection_sabotages_every_activity(
    sente: ScriptedSente, make_client: Callable[..., Client], transport: str
) -> None:
    client = make_client(
        sente.url, type=transport, simulated_bad_conn_rate=1.0, backoff_ms_fn=lambda n: 20
    ).connect()
    if transport == "ws":  # each handshake is dropped as it arrives; the client retries
        wait_until(lambda: sente.ws_upgrades >= 3)
    else:  # each poll fails before it is sent
        assert client.state.wait_for(lambda s: "udt-next-reconnect" in s, 5)
        assert not [e for e in sente.http_log if e[0] == "GET"]
    assert not client.state["open?"]
    assert client.send(["test/echo", 1]) is False


def test_simulated_bad_connection_drops_the_websocket_on_a_send(
    sente: ScriptedSente, make_client: Callable[..., Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(sente.url, type="ws").connect()
    assert client.wait_open(5)
    monkeypatch.setattr(client._protocol._ctx, "bad_conn", lambda: True)  # from now on, always
    assert client.send(["test/echo", 1]) is False
    assert sente.wait_for(lambda: [r for r in sente.received if r.transport == "ws-close"])
    close = next(r for r in sente.received if r.transport == "ws-close")
    assert (close.event, close.cb) == (3000, "SIMULATED_BAD_CONN")
    assert not [r for r in sente.received if "test/echo" in r.wire]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_fifty_clients_in_threads(sente: ScriptedSente, transport: str) -> None:
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            with Client(sente.url, type=transport, packer="edn", csrf_token=CSRF) as client:
                assert client.request(["test/echo", i], 10) == {Keyword("echo"): i}
                client.send(["test/push-me", i])
                assert next_id(client, "test/pushed", 10).data == {Keyword("got"): i}
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), name=f"t{i}") for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert_no_client_threads()


def test_connect_again_after_disconnect(
    sente: ScriptedSente, make_client: Callable[..., Client]
) -> None:
    client = make_client(sente.url, type="ws").connect()
    assert client.wait_open(5)
    client.disconnect()
    assert not client.connected
    client.connect()
    assert client.wait_open(5)
    assert client.request(["test/echo", "again"], 5) == {Keyword("echo"): "again"}


def test_legacy_pack_format_for_old_servers(
    sente: ScriptedSente, make_client: Callable[..., Client]
) -> None:
    client = make_client(sente.url, type="ws", write_legacy_pack_format=True).connect()
    assert client.wait_open(5)
    assert client.request(["test/echo", 1], 5) == {Keyword("echo"): 1}
    sent = sente.events("test/echo")[0]
    assert sent.wire == f'+[[:test/echo 1] "{sent.cb}"]'


def test_interpreter_exit_closes_a_forgotten_client(sente: ScriptedSente) -> None:
    import subprocess
    import sys

    from tests.client.helpers import ROOT

    script = (
        "from flask_sente.client import Client\n"
        f"c = Client({sente.url!r}, type='ws', packer='edn', csrf_token={CSRF!r}).connect()\n"
        "assert c.wait_open(5)\n"
        "print('open', flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=30
    )
    assert done.returncode == 0 and done.stdout.strip() == "open", done.stderr
    assert sente.wait_for(lambda: [r for r in sente.received if r.transport == "ws-close"], 5)
    close = next(r for r in sente.received if r.transport == "ws-close")
    assert (close.event, close.cb) == (1000, "CLOSE_NORMAL")


def test_disconnect_from_a_handler_and_from_a_callback(
    sente: ScriptedSente, make_client: Callable[..., Client]
) -> None:
    first = make_client(sente.url, type="ws")
    first.on("chsk/handshake")(lambda msg: first.disconnect())
    first.start_router()
    first.connect()
    assert first.state.wait_for(
        lambda s: s.get("last-close", {}).get("reason") == "requested-disconnect", 5
    )

    second = make_client(sente.url, type="ajax").connect()
    assert second.wait_open(5)
    done = threading.Event()
    second.send(["test/echo", 1], 5000, lambda reply: (second.disconnect(), done.set()))
    assert done.wait(10)
    assert not second.connected
    assert_no_client_threads()
