"""A held Ajax request as the event loop serves it (``PollEntry`` over ``LongPoll``), driven
with bytes and a fake clock: what it writes, when it gives up, what it reports at the end."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from flask_sente.transports.entries import PollEntry
from flask_sente.transports.http import SERVER_ERROR
from flask_sente.transports.longpoll import CLIENT_GONE, CLOSED_BY_SERVER, LongPoll, OneShot
from flask_sente.transports.websocket import CloseInfo

T0 = 500.0
TIMEOUT = "timeout"


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    yield ours, theirs
    ours.close()
    theirs.close()


class Held:
    """A PollEntry with what it answered and reported kept for the test."""

    def __init__(self, sock: socket.socket, *, answer_after_fin: bool = False) -> None:
        self.poll = LongPoll("the long-poll of uid 'u', client c")
        self.done: list[tuple[Any, bool]] = []
        self.entry = PollEntry(
            sock,
            self.poll,
            deadline=T0 + 10.0,
            timeout_value=TIMEOUT,
            respond=lambda value: f"answer:{value}".encode(),
            on_done=lambda value, written: self.done.append((value, written)),
            answer_after_fin=answer_after_fin,
        )


def test_nothing_is_written_before_its_value_or_deadline(pair: Any) -> None:
    held = Held(pair[0])
    assert held.entry.service(T0 + 9.99) == T0 + 10.0
    assert held.entry.out == b"" and not held.entry.finished


def test_at_the_deadline_it_answers_the_timeout_value(pair: Any) -> None:
    held = Held(pair[0])
    assert held.entry.service(T0 + 10.0) is None
    assert bytes(held.entry.out) == b"answer:timeout"
    assert held.entry.finished and held.poll.value == TIMEOUT


def test_a_value_before_the_deadline_is_the_answer(pair: Any) -> None:
    held = Held(pair[0])
    woken: list[bool] = []
    held.poll.notify = lambda: woken.append(True)
    assert held.poll.offer("batch")
    assert woken == [True]
    assert not held.poll.offer("late push")  # stays queued for the next poll
    held.entry.service(T0 + 1.0)
    assert bytes(held.entry.out) == b"answer:batch"
    held.entry.dropped(held.entry.end_info(), written=True)
    assert held.done == [("batch", True)]


def test_a_client_gone_before_its_answer_is_dropped_unanswered(pair: Any) -> None:
    held = Held(pair[0])
    gone = held.entry.readable(b"", T0 + 1.0)
    assert gone == CloseInfo(None, "client gone", False)
    held.entry.dropped(gone, written=False)
    assert held.done == [(CLIENT_GONE, False)]
    assert not held.poll.offer("push after")  # the mailbox keeps it for the next poll


def test_a_half_closed_client_still_gets_a_reply(pair: Any) -> None:
    held = Held(pair[0], answer_after_fin=True)
    assert held.entry.readable(b"", T0 + 1.0) is None
    assert held.entry.read_closed
    held.poll.offer("reply")
    held.entry.service(T0 + 2.0)
    assert bytes(held.entry.out) == b"answer:reply"


def test_what_the_client_sends_while_it_waits_is_ignored(pair: Any) -> None:
    held = Held(pair[0])
    assert held.entry.readable(b"GET /next HTTP/1.1\r\n", T0) is None
    assert not held.poll.done


def test_shutting_down_answers_closed_by_the_server(pair: Any) -> None:
    held = Held(pair[0])
    held.entry.shutdown()
    held.entry.service(T0)
    assert held.poll.value is CLOSED_BY_SERVER
    assert bytes(held.entry.out) == f"answer:{CLOSED_BY_SERVER}".encode()


def test_a_fault_answers_500_on_the_socket(pair: Any, caplog: pytest.LogCaptureFixture) -> None:
    ours, theirs = pair
    held = Held(ours)
    assert held.entry.fault(RuntimeError("boom")) is False  # the loop drops it now
    assert theirs.recv(4096) == SERVER_ERROR
    assert "serving the long-poll of uid 'u', client c failed" in caplog.text
    held.entry.dropped(CloseInfo(1011, "internal server error", True), written=False)
    assert held.done == [(CLIENT_GONE, False)]


def test_dropping_lets_go_of_the_callbacks(pair: Any) -> None:
    held = Held(pair[0])
    held.entry.dropped(CloseInfo(None, "", True), written=False)
    held.poll.notify()  # no longer the loop's
    assert held.entry.on_done(1, True) is None and held.done == [(CLIENT_GONE, False)]


# ---------------------------------------------------------------------------- OneShot


def test_a_oneshot_is_set_once_and_waits_bounded() -> None:
    shot = OneShot()
    assert not shot.done and shot.value is None
    assert not shot.settled_within(0.0)
    assert shot.wait(0.0, on_timeout="gave up") == "gave up"
    assert not shot.offer("too late")


def test_a_oneshot_set_from_another_thread_ends_the_wait() -> None:
    shot = OneShot()
    thread = threading.Thread(target=shot.offer, args=("value",))
    thread.start()
    assert shot.wait(5.0, on_timeout="timeout") == "value"
    thread.join(5)


def test_an_answer_that_cannot_be_made_is_a_500(pair: Any) -> None:
    ours, theirs = pair
    poll = LongPoll("the long-poll of uid 'u', client c")

    def respond(value: Any) -> bytes:
        raise RuntimeError("cannot answer")

    entry = PollEntry(
        ours,
        poll,
        deadline=T0 + 10,
        timeout_value=TIMEOUT,
        respond=respond,
        on_done=lambda value, written: None,
        answer_after_fin=False,
    )
    poll.offer("batch")
    with pytest.raises(RuntimeError):
        entry.service(T0)
    assert entry.fault(RuntimeError("cannot answer")) is False
    assert theirs.recv(4096) == SERVER_ERROR


# ------------------------------------------------------------------- held batches


def test_a_held_batch_is_not_answered_until_it_is_released(pair: Any) -> None:
    held = Held(pair[0])
    woken: list[bool] = []
    held.poll.notify = lambda: woken.append(True)
    assert held.poll.hold("batch")
    assert held.poll.held and not held.poll.done and woken == []
    assert not held.poll.offer("late push")  # taken: it waits for the next poll
    # past the deadline the timeout cannot replace it, and the entry sleeps until woken
    assert held.entry.service(T0 + 11.0) is None
    assert held.entry.out == b"" and not held.entry.finished
    held.poll.release()
    assert woken == [True] and held.poll.done and not held.poll.held
    held.entry.service(T0 + 11.5)
    assert bytes(held.entry.out) == b"answer:batch"


def test_a_client_gone_while_its_batch_is_held_reports_that_batch(pair: Any) -> None:
    held = Held(pair[0])
    held.poll.hold("batch")
    gone = held.entry.readable(b"", T0 + 1.0)
    assert gone == CloseInfo(None, "client gone", False)
    held.entry.dropped(gone, written=False)
    assert held.done == [("batch", False)]  # not CLIENT_GONE: the batch is reported lost
    held.poll.release()  # the bus's mark comes later and wakes nobody
    assert held.done == [("batch", False)]


def test_release_without_a_held_value_changes_nothing() -> None:
    shot = OneShot()
    shot.release()
    assert not shot.done
    assert shot.offer("value") and shot.value == "value"
    shot.release()
    assert shot.done and shot.value == "value"


def test_a_waiter_past_its_timeout_gets_the_held_value_once_released() -> None:
    shot = OneShot()
    assert shot.hold("batch")
    waiting = threading.Event()
    got: list[Any] = []

    def waiter() -> None:
        waiting.set()
        got.append(shot.wait(0.0, on_timeout="timeout"))

    thread = threading.Thread(target=waiter)
    thread.start()
    assert waiting.wait(5)
    shot.release()
    thread.join(10)
    assert got == ["batch"]


def test_a_held_value_never_released_is_still_answered_after_a_bounded_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("flask_sente.transports.longpoll._RELEASE_WAIT_S", 0.01)
    shot = OneShot()
    shot.hold("batch")
    assert shot.wait(0.0, on_timeout="timeout") == "batch"
