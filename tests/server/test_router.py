"""Routing on the server: ``ch_recv`` read by the app, the decorators, ``start_router`` and
its options, and what an event message offers a handler (``send``, ``connected_uids``)."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from flask_sente import EventMsg, Sente
from flask_sente.packers import get_packer
from flask_sente.protocol import SKIP_CSRF_CHECK
from tests.server.harness import Recorder, Server, WsPeer
from tests.support import serve_in_thread, wait_until

TIMEOUT_S = 5.0


@contextlib.contextmanager
def bare_app(**options: Any) -> Iterator[tuple[Server, Sente]]:
    """A Flask app with Sente and no handlers yet; the uid is the ``uid`` parameter."""
    app = Flask(__name__)
    sente = Sente(
        app,
        user_id_fn=lambda req: req.param("uid"),
        csrf_token_fn=lambda req: SKIP_CSRF_CHECK,
        **options,
    )
    with serve_in_thread(app) as url:
        yield Server(url, app, Recorder(), get_packer("json")), sente


def read(sente: Sente, n: int) -> list[EventMsg]:
    """``n`` messages off ``sente.ch_recv``, as an app routing them itself reads them."""
    got = []
    for _ in range(n):
        msg = sente.ch_recv.get(timeout=TIMEOUT_S)
        assert msg is not None, f"only {len(got)} of {n} messages: {[m.id for m in got]}"
        got.append(msg)
    return got


def test_an_app_reading_ch_recv_itself_misses_nothing_however_early_events_come() -> None:
    with bare_app() as (server, sente):
        peer = WsPeer(server, uid="me")
        peer.recv()
        for i in range(20):
            peer.send(["app/n", i])
        # the first events came before anyone read: no router took them meanwhile
        messages = read(sente, 21)
        assert messages[0].id == "chsk/uidport-open"
        assert [m.data for m in messages[1:]] == list(range(20))
        peer.close()


def test_the_first_get_stops_the_decorator_router() -> None:
    with bare_app() as (server, sente):
        handled: queue.Queue[Any] = queue.Queue()

        @sente.on("app/n")
        def on_n(msg: EventMsg) -> None:
            handled.put(msg.data)

        peer = WsPeer(server, uid="me")
        peer.recv()
        peer.send(["app/n", "to the decorator"])
        assert handled.get(timeout=TIMEOUT_S) == "to the decorator"
        mine: queue.Queue[EventMsg | None] = queue.Queue()
        reader = threading.Thread(
            target=lambda: [mine.put(sente.ch_recv.get(timeout=TIMEOUT_S)) for _ in range(2)]
        )
        reader.start()
        wait_until(lambda: sente.server().receiving.router is None, TIMEOUT_S)
        peer.send(["app/n", "to the app 1"])
        peer.send(["app/n", "to the app 2"])
        reader.join(TIMEOUT_S)
        got = [mine.get_nowait(), mine.get_nowait()]
        assert [m.data for m in got if m is not None] == ["to the app 1", "to the app 2"]
        assert handled.empty()
        peer.close()


def test_recv_buf_or_n_keeps_the_newest_messages_and_counts_the_dropped(caplog) -> None:
    with bare_app(recv_buf_or_n=5) as (server, sente):
        peer = WsPeer(server, uid="me")
        peer.recv()
        for i in range(10):
            peer.send(["app/n", i])
        wait_until(lambda: sente.ch_recv.dropped == 6, TIMEOUT_S)  # uidport-open and 0..4
        assert [m.data for m in read(sente, 5)] == [5, 6, 7, 8, 9]
        assert "ch_recv is full" in caplog.text
        peer.close()


def test_start_router_traces_events_and_gives_errors_to_its_error_handler(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="flask_sente.router")  # Sente traces below INFO
    with bare_app() as (server, sente):
        failures: queue.Queue[tuple[EventMsg, BaseException]] = queue.Queue()

        def handler(msg: EventMsg) -> None:
            if msg.id == "app/fail":
                raise ValueError("boom")

        stop = sente.start_router(
            handler, error_handler=lambda msg, exc: failures.put((msg, exc)), trace_evs=True
        )
        peer = WsPeer(server, uid="me")
        peer.recv()
        peer.send(["app/fail", 42])
        msg, exc = failures.get(timeout=TIMEOUT_S)
        assert (msg.id, msg.data, str(exc)) == ("app/fail", 42, "boom")
        traced = [r.getMessage() for r in caplog.records if r.name == "flask_sente.router"]
        assert any("app/fail" in line and "42" in line for line in traced), traced
        assert any("chsk/uidport-open" in line for line in traced), traced
        stop()
        peer.close()


def test_on_error_gets_the_message_and_the_exception_of_a_decorator_handler() -> None:
    with bare_app() as (server, sente):
        failures: queue.Queue[tuple[EventMsg, BaseException]] = queue.Queue()

        @sente.on("app/fail")
        def fail(msg: EventMsg) -> None:
            raise KeyError(msg.data)

        @sente.on_error
        def on_error(msg: EventMsg, exc: BaseException) -> None:
            failures.put((msg, exc))

        peer = WsPeer(server, uid="me")
        peer.recv()
        peer.send(["app/fail", "k"])
        msg, exc = failures.get(timeout=TIMEOUT_S)
        assert msg.id == "app/fail" and isinstance(exc, KeyError)
        peer.close()


def test_msg_send_pushes_and_msg_connected_uids_is_read_when_asked() -> None:
    with bare_app() as (server, sente):
        seen: queue.Queue[Any] = queue.Queue()

        @sente.on("app/tell")
        def tell(msg: EventMsg) -> None:
            seen.put(msg.connected_uids)
            msg.send(msg.data["to"], ["app/told", msg.data["text"]])

        alice, bob = WsPeer(server, uid="alice"), WsPeer(server, uid="bob")
        alice.recv()
        bob.recv()
        wait_until(lambda: sente.connected_uids["any"] == {"alice", "bob"}, TIMEOUT_S)
        alice.send(["app/tell", {"to": "bob", "text": "hi"}])
        assert bob.recv() == ([["app/told", "hi"]], None)
        assert seen.get(timeout=TIMEOUT_S)["ws"] == frozenset({"alice", "bob"})
        bob.close()
        wait_until(lambda: sente.connected_uids["any"] == {"alice"}, TIMEOUT_S)
        alice.send(["app/tell", {"to": "alice", "text": "alone"}])
        assert alice.recv() == ([["app/told", "alone"]], None)
        assert seen.get(timeout=TIMEOUT_S)["any"] == frozenset({"alice"})
        alice.close()


@pytest.fixture(autouse=True)
def _quiet_werkzeug(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="werkzeug")
