"""No silent stop on the delivery path: a fault injected at each place is logged with its
connection and handled, and the other connections and later pushes are unaffected.

The places: a timer, a flush (a connection's, and an event that cannot be written), a
handler, a bus callback, a ``connected_uids`` watcher and the event loop serving a socket.
Each over real sockets on 127.0.0.1 and, where it applies, through ``sente.test_client()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import websocket
from flask import Flask

from flask_sente import Emitter, EventMsg, Sente
from flask_sente.batching import Outgoing
from flask_sente.delivery import FAULT_REASON
from flask_sente.protocol import Keyword
from flask_sente.transports.longpoll import LongPoll
from flask_sente.transports.websocket import INTERNAL_ERROR
from tests.server.harness import AjaxPeer, BinaryWsPeer, WsPeer, jsonish, running
from tests.support import wait_until


class Boom(Exception):
    """The injected fault."""


def logged(caplog: pytest.LogCaptureFixture, *parts: str) -> bool:
    return any(all(p in r.getMessage() for p in parts) for r in caplog.records)


def pushes(peer: WsPeer, count: int) -> list[Any]:
    events: list[Any] = []
    while len(events) < count:
        value, cb = peer.recv()
        if cb is None and isinstance(value, list) and value and value[0] != "chsk/handshake":
            events += value
    return jsonish(events)


def close_of(peer: WsPeer, timeout: float = 5.0) -> tuple[int, str]:
    """Read until the server's close frame; its code and reason."""
    peer.ws.settimeout(timeout)
    while True:
        opcode, data = peer.ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(data[:2], "big"), data[2:].decode()


def connected(server: Any, uid: str, **params: str) -> WsPeer:
    peer = WsPeer(server, uid=uid, **params)
    assert peer.recv()[0][0] == "chsk/handshake"
    return peer


@pytest.fixture
def app() -> Iterator[Flask]:
    app = Flask(__name__)
    sente = Sente(app, csrf_token_fn=None, user_id_fn=lambda req: req.param("uid"))

    @sente.on("t/boom")
    def boom(msg: EventMsg) -> None:
        raise Boom("handler fault")

    @sente.on("t/echo")
    def echo(msg: EventMsg) -> None:
        assert msg.reply is not None
        msg.reply(msg.data)

    app.extensions["sente_extension"] = sente
    yield app
    sente.close(app)


# ---------------------------------------------------------------------------- a timer


def test_a_failing_timer_is_logged_and_the_others_run(caplog: pytest.LogCaptureFixture) -> None:
    with running() as server:
        channel = server.app.extensions["sente"]
        a, b = connected(server, "a"), connected(server, "b")
        channel.scheduler.call_later(0, _raise, what="an injected timer", uid="a", client_id="c")
        wait_until(lambda: logged(caplog, "an injected timer failed", "'a'", "client c"), 5)
        server.sente.send("a", ["t/x", 1])  # delivered by the scheduler's flush timers
        server.sente.send("b", ["t/x", 2])
        assert pushes(a, 1) == [["t/x", 1]] and pushes(b, 1) == [["t/x", 2]]


def _raise() -> None:
    raise Boom("timer fault")


# ---------------------------------------------------------------------------- a flush


def broken_reads(channel: Any, client_id: str) -> None:
    """The bus fails reading ``client_id``'s mailbox (once)."""
    real = channel.bus.read
    failed: list[str] = []

    def read(uid: Any, cid: str, after: int) -> Any:
        if cid == client_id and not failed:
            failed.append(cid)
            raise Boom("flush fault")
        return real(uid, cid, after)

    channel.bus.read = read


def test_a_failed_flush_closes_that_connection_and_loses_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with running() as server:
        channel = server.app.extensions["sente"]
        bad = connected(server, "u", client_id="bad", **{"fs-last-seq": "-"})
        good = connected(server, "u", client_id="good")
        broken_reads(channel, "bad")
        server.sente.send("u", ["t/x", 1])
        assert close_of(bad) == (INTERNAL_ERROR, FAULT_REASON)
        assert logged(caplog, "delivery to uid 'u', client bad (ws) failed")
        assert pushes(good, 1) == [["t/x", 1]]
        server.sente.send("u", ["t/x", 2])
        assert pushes(good, 1) == [["t/x", 2]]
        # the client comes back (as a flask_sente client would) and gets both, in order
        back = connected(server, "u", client_id="bad", **{"fs-last-seq": "-"})
        assert pushes(back, 2) == [["t/x", 1], ["t/x", 2]]
        for peer in (back, good):
            peer.close()


def test_a_failed_flush_through_the_test_client(app: Flask) -> None:
    sente = app.extensions["sente_extension"]
    channel = sente.server(app)
    with sente.test_client(uid="u") as bad, sente.test_client(uid="v") as good:
        broken_reads(channel, bad.client_id)
        sente.send("u", ["t/x", 1])
        sente.send("v", ["t/x", 2])
        assert bad.wait_closed() == INTERNAL_ERROR and bad.close_reason == FAULT_REASON
        assert good.next_event(5).event == ["t/x", 2]
        with sente.test_client(uid="u", client_id=bad.client_id) as back:
            assert back.next_event(5).event == ["t/x", 1]  # still in its mailbox
        sente.send("v", ["t/x", 3])
        assert good.next_event(5).event == ["t/x", 3]


def test_an_event_that_cannot_be_written_at_flush_is_dropped_and_reported() -> None:
    # A mailbox filled by another process can hold what this one cannot write; binary
    # packers write batches anew at flush, so the event is only found out there.
    with running(packer="msgpack", send_buf_ms_ws=5) as server:
        reports: list = []
        server.sente.on_undelivered(lambda uid, events, why: reports.append((uid, why)))
        channel = server.app.extensions["sente"]
        peer = BinaryWsPeer(server, uid="p", **{"fs-last-seq": "-"})
        assert peer.recv()[0][0] == "chsk/handshake"
        server.sente.send("p", ["t/x", 1])
        poison = Outgoing(b"\xc1", event=[Keyword("t/x"), object()])
        channel.delivery.push("p", poison)
        server.sente.send("p", ["t/x", 3])
        assert pushes(peer, 2) == [["t/x", 1], ["t/x", 3]]
        wait_until(lambda: reports, 5)
        assert reports[0][0] == "p" and "cannot be written" in reports[0][1]
        server.sente.send("p", ["t/x", 4], flush=True)
        assert pushes(peer, 1) == [["t/x", 4]]
        peer.close()


# ---------------------------------------------------------------------------- a handler


def test_a_failing_handler_is_logged_with_its_connection_and_the_rest_goes_on(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    sente = app.extensions["sente_extension"]
    with sente.test_client(uid="u") as a, sente.test_client(uid="v") as b:
        a.send(["t/boom"])
        wait_until(lambda: logged(caplog, "'t/boom' failed", "uid 'u'", a.client_id), 5)
        assert a.request(["t/echo", 1], timeout=5) == 1
        assert b.request(["t/echo", 2], timeout=5) == 2
        sente.send("u", ["t/x", 3], flush=True)
        assert a.next_event(5).event == ["t/x", 3]


def test_a_failing_handler_over_a_real_websocket(caplog: pytest.LogCaptureFixture) -> None:
    with running() as server:

        @server.sente.on("t/boom")
        def boom(msg: EventMsg) -> None:
            raise Boom("handler fault")

        a, b = connected(server, "a"), connected(server, "b")
        a.send(["t/boom"])
        wait_until(lambda: logged(caplog, "'t/boom' failed", "uid 'a'"), 5)
        a.send(["test/echo", 1], "cb-a")
        assert jsonish(a.recv()) == [{"echo": 1}, "cb-a"]
        server.sente.send("b", ["t/x", 2])
        assert pushes(b, 1) == [["t/x", 2]]


# ---------------------------------------------------------------------------- a bus callback


def test_a_bad_bus_message_and_a_failing_listener_leave_the_subscription_alive(
    redis_url: str, redis_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with running(message_queue=redis_url, send_buf_ms_ws=5) as server, Emitter(redis_url) as em:
        channel = server.app.extensions["sente"]
        peer = connected(server, "r")
        wait_until(lambda: "r" in em.connected_uids["any"], 5)
        redis_server.client().publish("flask_sente:events", "push\n{not json")
        wait_until(lambda: logged(caplog, "cannot handle", "not json"), 5)
        real = channel.delivery.remote_push
        calls: list = []

        def failing_once(uid: Any) -> None:
            calls.append(uid)
            if len(calls) == 1:
                raise Boom("listener fault")
            real(uid)

        channel.delivery.remote_push = failing_once
        em.send("r", ["t/x", 1])  # its notice reaches a failing listener: logged
        wait_until(lambda: len([r for r in caplog.records if "cannot handle" in r.message]) == 2, 5)
        assert calls == ["r"]
        em.send("r", ["t/x", 2])  # the next notice flushes both
        assert pushes(peer, 2) == [["t/x", 1], ["t/x", 2]]
        peer.close()


# ---------------------------------------------------------------------------- a watcher


def test_a_failing_watcher_is_logged_and_the_others_are_told(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    sente = app.extensions["sente_extension"]
    seen: list = []
    with app.app_context():
        sente.watch_connected_uids(lambda old, new: _fail_watcher())
        sente.watch_connected_uids(lambda old, new: seen.append(sorted(new["any"])))
    with sente.test_client(uid="w") as chsk:
        wait_until(lambda: ["w"] in seen, 5)
        assert logged(caplog, "watcher", "failed", "uid 'w'", chsk.client_id)
        sente.send("w", ["t/x", 1], flush=True)
        assert chsk.next_event(5).event == ["t/x", 1]
        with sente.test_client(uid="z") as other:
            wait_until(lambda: ["w", "z"] in seen, 5)
            assert other.request(["t/echo", 2], timeout=5) == 2


def _fail_watcher() -> None:
    raise Boom("watcher fault")


# ---------------------------------------------------------------------------- the event loop


def failing_reads(channel: Any, marker: str) -> None:
    """Reading a package that contains ``marker`` raises: a fault inside the event loop."""
    real = channel.read_package

    def read_package(package: Any, *args: Any) -> Any:
        if marker in str(package):
            raise Boom("loop fault")
        return real(package, *args)

    channel.read_package = read_package


@pytest.mark.parametrize("mode", ["loop", "thread"])
def test_a_fault_serving_one_websocket_closes_it_and_the_others_go_on(
    caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    with running(connection_mode=mode) as server:
        channel = server.app.extensions["sente"]
        failing_reads(channel, "t/loop-fault")
        a, b = connected(server, "a"), connected(server, "b")
        a.send(["t/loop-fault"])
        assert close_of(a) == (INTERNAL_ERROR, "internal server error")
        assert logged(caplog, "serving the WebSocket of uid 'a'", "failed")
        b.send(["test/echo", 1], "cb-b")
        assert jsonish(b.recv()) == [{"echo": 1}, "cb-b"]
        c = connected(server, "c")  # new connections are still served
        server.sente.send("c", ["t/x", 2])
        assert pushes(c, 1) == [["t/x", 2]]


def test_a_fault_in_the_loop_through_the_test_client(app: Flask) -> None:
    sente = app.extensions["sente_extension"]
    failing_reads(sente.server(app), "t/loop-fault")
    with sente.test_client(uid="u") as bad, sente.test_client(uid="v") as good:
        bad.send(["t/loop-fault"])
        assert bad.wait_closed() == INTERNAL_ERROR
        assert good.request(["t/echo", 1], timeout=5) == 1


@pytest.mark.parametrize("held", [False, True], ids=["answered-at-once", "held-by-the-loop"])
def test_a_fault_answering_a_long_poll_answers_500_and_the_rest_goes_on(
    monkeypatch: pytest.MonkeyPatch, held: bool
) -> None:
    import flask_sente.serving as serving

    with running() as server:
        channel = server.app.extensions["sente"]
        real = serving.poll_answer
        faults: list = []

        def poll_answer(value: Any, pack: Any) -> Any:
            if not faults:
                faults.append(value)
                raise Boom("answer fault")
            return real(value, pack)

        monkeypatch.setattr(serving, "poll_answer", poll_answer)
        reports: list = []
        server.sente.on_undelivered(lambda uid, events, why: reports.append((uid, events)))
        peer, other = AjaxPeer(server, uid="l"), AjaxPeer(server, uid="m")
        peer.get(handshake=True)
        other.get(handshake=True)
        if held:
            with ThreadPoolExecutor(1) as pool:
                answer = pool.submit(peer.get)
                wait_until(lambda: isinstance(_conn(channel, "l", peer.client_id), LongPoll), 5)
                server.sente.send("l", ["t/x", 1])
                assert answer.result(10).status_code == 500
        else:
            server.sente.send("l", ["t/x", 1])
            assert peer.get().status_code == 500
        wait_until(lambda: reports, 5)  # what that answer carried is reported, not lost silently
        assert jsonish(reports) == [["l", [["t/x", 1]]]]
        assert jsonish(peer.request(["test/echo", 2])[0]) == {"echo": 2}
        server.sente.send("m", ["t/x", 3])
        assert jsonish(other.poll()[0]) == [["t/x", 3]]
        server.sente.send("l", ["t/x", 4])
        assert jsonish(peer.poll()[0]) == [["t/x", 4]]


def _conn(channel: Any, uid: str, client_id: str) -> Any:
    slot = channel.registry.slot("ajax", uid, client_id)
    return None if slot is None else slot.conn
