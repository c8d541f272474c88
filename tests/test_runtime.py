"""``runtime.Pacer``: a thread that pushes for long lets the others run, with a fake clock."""

from __future__ import annotations

from typing import Any

import pytest

import flask_sente.runtime as runtime


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def test_a_pusher_yields_once_per_pace(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeTime()
    monkeypatch.setattr(runtime, "time", clock)
    pacer = runtime.Pacer()
    for _ in range(10):  # many quick pushes within one pace: no yield
        pacer.step()
        clock.now += runtime.PACE_S / 20
    assert clock.sleeps == []
    clock.now += runtime.PACE_S
    pacer.step()
    assert clock.sleeps == [0]
    pacer.step()  # the pace starts again from the yield
    assert clock.sleeps == [0]


def test_each_thread_keeps_its_own_pace(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    clock = FakeTime()
    monkeypatch.setattr(runtime, "time", clock)
    pacer = runtime.Pacer()
    pacer.step()
    clock.now += 2 * runtime.PACE_S
    other: list[Any] = []
    thread = threading.Thread(target=lambda: other.append(pacer.step()))
    thread.start()
    thread.join(5)
    assert clock.sleeps == []  # the other thread's first push starts its own pace
    pacer.step()
    assert clock.sleeps == [0]


def test_threads_yield_only_when_someone_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeTime()
    monkeypatch.setattr(runtime, "time", clock)
    waiting = [False]
    pacer = runtime.Pacer(lambda now: waiting[0])
    pacer.step()
    clock.now += 2 * runtime.PACE_S
    pacer.step()
    assert clock.sleeps == []  # nobody waits for the GIL: no switch for nothing
    waiting[0] = True
    pacer.step()
    assert clock.sleeps == [0]
