"""Quick handlers run on the thread that received their event; slow ones never hold the
event loop (the watchdog moves the loop to a new thread), and one client's events keep their
order whichever thread runs them. Over real sockets on 127.0.0.1."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from flask_sente import EventMsg
from flask_sente.lanes import TRUST_AFTER
from tests.server.harness import AjaxPeer, WsPeer, jsonish, running
from tests.support import wait_until


class Blocker:
    """``t/maybe-block``: quick, until ``armed``; then its next run waits for ``release``."""

    def __init__(self) -> None:
        self.armed = threading.Event()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.threads: list[str] = []
        self.order: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, msg: EventMsg) -> None:
        with self.lock:
            self.threads.append(threading.current_thread().name)
            self.order.append((msg.uid, msg.data))
        if self.armed.is_set() and msg.data == "block":
            self.entered.set()
            assert self.release.wait(10)
        if msg.reply is not None:
            msg.reply({"got": msg.data})


def test_a_quick_handler_runs_on_the_event_loop_once_trusted() -> None:
    with running() as server:
        blocker = Blocker()
        server.sente.on("t/maybe-block")(blocker)
        peer = WsPeer(server, uid="a")
        peer.recv()
        for i in range(TRUST_AFTER + 2):
            peer.send(["t/maybe-block", i], f"cb{i}")
            assert jsonish(peer.recv()) == [{"got": i}, f"cb{i}"]
        assert blocker.threads[-1] == "flask_sente-loop"  # no hand-off to a worker
        assert blocker.threads[0].startswith("flask_sente-router")  # not trusted at first
        peer.close()


def test_a_handler_that_blocks_the_loop_loses_it_and_the_others_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with running() as server:
        blocker = Blocker()
        server.sente.on("t/maybe-block")(blocker)
        a, b = WsPeer(server, uid="a"), WsPeer(server, uid="b")
        a.recv()
        b.recv()
        for i in range(TRUST_AFTER + 1):
            a.send(["t/maybe-block", i], f"a{i}")
            a.recv()
        blocker.armed.set()
        try:
            a.send(["t/maybe-block", "block"], "a-block")
            assert blocker.entered.wait(5)
            a.send(["t/maybe-block", "after"], "a-after")  # a's next event waits behind it
            b.send(["t/maybe-block", "b1"], "b1")
            assert jsonish(b.recv()) == [{"got": "b1"}, "b1"]  # the loop goes on meanwhile
            assert "held the event loop" in caplog.text
            assert ("a", "after") not in blocker.order
        finally:
            blocker.release.set()
        replies = [jsonish(a.recv()), jsonish(a.recv())]
        assert replies == [[{"got": "block"}, "a-block"], [{"got": "after"}, "a-after"]]
        a_order = [data for uid, data in blocker.order if uid == "a"]
        assert a_order[-2:] == ["block", "after"]
        b.send(["t/maybe-block", "b2"], "b2")  # the new loop thread serves on
        assert jsonish(b.recv()) == [{"got": "b2"}, "b2"]
        for peer in (a, b):
            peer.close()


def test_a_handler_found_slow_goes_back_to_the_workers() -> None:
    with running() as server:
        slow_from = TRUST_AFTER + 1
        never = threading.Event()

        @server.sente.on("t/turns-slow")
        def turns_slow(msg: EventMsg) -> None:
            if msg.data >= slow_from:
                never.wait(0.05)  # over the 5 ms budget
            assert msg.reply is not None
            msg.reply(threading.current_thread().name)

        peer = WsPeer(server, uid="a")
        peer.recv()
        names = []
        for i in range(slow_from + 2):
            peer.send(["t/turns-slow", i], f"s{i}")
            names.append(jsonish(peer.recv())[0])
        assert all(name.startswith("flask_sente-router") for name in names[:TRUST_AFTER])
        assert names[TRUST_AFTER] == names[slow_from] == "flask_sente-loop"  # trusted ...
        assert names[slow_from + 1].startswith("flask_sente-router")  # ... until found slow
        peer.close()


def test_an_ajax_post_is_answered_by_a_handler_run_on_its_request_thread() -> None:
    with running() as server:
        blocker = Blocker()
        server.sente.on("t/maybe-block")(blocker)
        peer = AjaxPeer(server, uid="p")
        peer.get(handshake=True)
        for i in range(TRUST_AFTER + 2):
            assert jsonish(peer.request(["t/maybe-block", i])[0]) == {"got": i}
        assert not blocker.threads[-1].startswith(("flask_sente-router", "flask_sente-loop"))
        wait_until(lambda: server.app.extensions["sente"].receiving.router.idle, 5)
