"""Handlers run where their event arrived, when they may: ``lanes`` (the books) and
``Router.submit`` (the rules in action, with real threads and bounded waits)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from flask_sente.lanes import FORGIVE_AFTER, MAX_KINDS, TRUST_AFTER, Lanes, Quickness
from flask_sente.router import RecvQueue, Router
from tests.support import wait_until

# ---------------------------------------------------------------------------- Lanes


def test_a_free_client_runs_in_place_and_what_comes_meanwhile_waits() -> None:
    lanes: Lanes[str] = Lanes()
    assert lanes.claim("c1")
    assert not lanes.claim("c1")  # one at a time per client
    assert lanes.claim("c2")  # other clients are free
    assert lanes.enqueue("c1", "second") is False  # waits for the one running in place
    assert lanes.enqueue("c1", "third") is False
    assert lanes.release("c1") == ["second", "third"]  # then to the worker, in order
    assert not lanes.claim("c1")  # still busy until the worker is done with both
    lanes.done("c1")
    lanes.done("c1")
    assert lanes.claim("c1")


def test_a_client_with_events_queued_does_not_run_in_place() -> None:
    lanes: Lanes[str] = Lanes()
    assert lanes.enqueue("c", "a") is True
    assert not lanes.claim("c")
    lanes.done("c")
    assert lanes.claim("c")
    assert lanes.release("c") == []
    assert len(lanes) == 0


# ---------------------------------------------------------------------------- Quickness


def test_a_handler_is_trusted_after_quick_runs_and_not_after_a_slow_one() -> None:
    quick = Quickness(budget_s=0.005)
    for _ in range(TRUST_AFTER):
        assert not quick.allows("t/echo")
        assert quick.ran("t/echo", 0.0001) is False
    assert quick.allows("t/echo")
    assert quick.ran("t/echo", 0.05) is True  # trust ended, and said so once
    assert not quick.allows("t/echo")
    for _ in range(FORGIVE_AFTER - 1):
        quick.ran("t/echo", 0.0001)
    assert not quick.allows("t/echo")
    quick.ran("t/echo", 0.0001)
    assert quick.allows("t/echo")


def test_what_is_learnt_stays_bounded_whatever_ids_clients_send() -> None:
    quick = Quickness()
    for i in range(MAX_KINDS + 10):
        quick.ran(f"junk/{i}", 0.0)
    assert len(quick._streak) <= MAX_KINDS


# ---------------------------------------------------------------------------- Router.submit


@dataclass
class Msg:
    client: str
    kind: str
    n: int


class Recorder:
    """A handler that records where and in which order it ran; ``gate`` holds it."""

    def __init__(self) -> None:
        self.ran: list[tuple[int, str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, msg: Msg) -> None:
        if msg.kind == "slow":
            self.entered.set()
            assert self.gate.wait(5)
        with self.lock:
            self.ran.append((msg.n, threading.current_thread().name))


def router(handler: Recorder, **kw: Any) -> Router[Msg]:
    return Router(
        RecvQueue(100),
        handler,
        workers=2,
        key=lambda m: m.client,
        inline_kind=lambda m: m.kind,
        name="test-router",
        **kw,
    )


def test_a_trusted_handler_runs_on_the_submitting_thread() -> None:
    handler = Recorder()
    r = router(handler)
    try:
        for n in range(TRUST_AFTER):
            r.submit(Msg("c", "quick", n), inline=True)
        wait_until(lambda: r.idle, 5)
        assert len(handler.ran) == TRUST_AFTER
        assert all(name.startswith("test-router") for _, name in handler.ran)
        r.submit(Msg("c", "quick", 99), inline=True)
        assert handler.ran[-1] == (99, threading.current_thread().name)  # done already, here
        r.submit(Msg("c", "quick", 100), inline=False)
        wait_until(lambda: len(handler.ran) == TRUST_AFTER + 2, 5)
        assert handler.ran[-1][1].startswith("test-router")
    finally:
        r.stop()


def test_one_clients_events_keep_their_order_across_threads() -> None:
    handler = Recorder()
    r = router(handler)
    try:
        for n in range(TRUST_AFTER):
            r.submit(Msg("warm", "slow", n), inline=False)  # quick while the gate is open
        wait_until(lambda: r.idle, 5)
        handler.ran.clear()
        handler.gate.clear()
        handler.entered.clear()
        first = threading.Thread(
            target=r.submit, args=(Msg("c", "slow", 1),), kwargs={"inline": True}
        )
        first.start()  # runs in place on its thread, held at the gate
        assert handler.entered.wait(5)
        r.submit(Msg("c", "quick", 2), inline=True)  # must wait behind 1, on a worker
        r.submit(Msg("other", "quick", 3), inline=False)
        wait_until(lambda: any(n == 3 for n, _ in handler.ran), 5)  # others go on meanwhile
        assert not any(n == 2 for n, _ in handler.ran)
        handler.gate.set()
        first.join(5)
        wait_until(lambda: len(handler.ran) == 3, 5)
        order = [n for n, _ in handler.ran if n in (1, 2)]
        assert order == [1, 2]
    finally:
        handler.gate.set()
        r.stop()


def test_a_slow_handler_is_sent_to_the_workers_from_then_on(caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="flask_sente.router")
    handler = Recorder()
    calls: list[int] = []

    def slow_once_trusted(msg: Msg) -> None:
        calls.append(msg.n)
        if len(calls) == TRUST_AFTER + 1:
            threading.Event().wait(0.02)  # over the budget, once it is trusted
        handler(msg)

    r = Router(
        RecvQueue(100),
        slow_once_trusted,
        workers=2,
        key=lambda m: m.client,
        inline_kind=lambda m: m.kind,
        name="test-router",
    )
    try:
        for n in range(TRUST_AFTER):
            r.submit(Msg("c", "k", n), inline=False)
        wait_until(lambda: r.idle, 5)
        r.submit(Msg("c", "k", 10), inline=True)  # trusted: in place, and too slow
        assert handler.ran[-1] == (10, threading.current_thread().name)
        assert "its events go to the worker threads" in caplog.text
        r.submit(Msg("c", "k", 11), inline=True)
        wait_until(lambda: len(handler.ran) == TRUST_AFTER + 2, 5)
        assert handler.ran[-1][0] == 11 and handler.ran[-1][1].startswith("test-router")
    finally:
        r.stop()


def test_without_inline_kind_everything_goes_to_the_workers() -> None:
    handler = Recorder()
    r = Router(RecvQueue(100), handler, workers=1, key=lambda m: m.client, name="test-router")
    try:
        for n in range(TRUST_AFTER + 2):
            r.submit(Msg("c", "quick", n), inline=True)
        wait_until(lambda: len(handler.ran) == TRUST_AFTER + 2, 5)
        assert [n for n, _ in handler.ran] == list(range(TRUST_AFTER + 2))
        assert all(name.startswith("test-router") for _, name in handler.ran)
    finally:
        r.stop()
