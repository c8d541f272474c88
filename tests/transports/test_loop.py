"""The event loop's shutdown: every connection it was given is told the server is closing,
those handed to it while it closes or after it stopped included."""

from __future__ import annotations

import socket
import time
from typing import Any

from flask_sente.transports.entries import PollEntry
from flask_sente.transports.longpoll import CLOSED_BY_SERVER, LongPoll
from flask_sente.transports.loop import EventLoop


def poll_entry(sock: socket.socket, done: list[tuple[Any, bool]]) -> tuple[PollEntry, LongPoll]:
    poll = LongPoll("the long-poll of uid 'u', client c")
    entry = PollEntry(
        sock,
        poll,
        deadline=time.monotonic() + 60,
        timeout_value="timeout",
        respond=lambda value: b"closed" if value is CLOSED_BY_SERVER else b"other",
        on_done=lambda value, written: done.append((value, written)),
        answer_after_fin=False,
    )
    return entry, poll


def read_to_eof(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    got = b""
    while chunk := sock.recv(4096):
        got += chunk
    return got


def test_a_poll_held_when_the_loop_closes_is_answered_as_closed() -> None:
    ours, theirs = socket.socketpair()
    loop = EventLoop(name="test-loop")
    done: list[tuple[Any, bool]] = []
    entry, poll = poll_entry(ours, done)
    poll.notify = lambda: loop.mark(entry)
    loop.add(entry)
    loop.close()
    assert read_to_eof(theirs) == b"closed"
    assert done == [(CLOSED_BY_SERVER, True)]
    theirs.close()


def test_a_poll_handed_over_after_the_loop_stopped_is_answered_not_left_open() -> None:
    # a request whose view ran while the server shut down reaches the loop after its end
    loop = EventLoop(name="test-loop")
    loop.close()
    ours, theirs = socket.socketpair()
    done: list[tuple[Any, bool]] = []
    entry, poll = poll_entry(ours, done)
    loop.add(entry)
    assert read_to_eof(theirs) == b"closed"
    assert poll.value is CLOSED_BY_SERVER and done == [(CLOSED_BY_SERVER, True)]
    assert entry.closed
    theirs.close()
