"""Replaying a recorded real-Sente transcript against a flask_sente server.

:func:`replay` plays the client's side of a transcript (``tests/fixtures/protocol/
transcripts``): every ``C>`` record is sent to our server with its recorded bytes, on one raw
TCP connection per recorded connection (so WebSocket frames go in order on one connection,
and Ajax requests reuse kept-alive connections as recorded), and every ``S>`` record is
answered by reading what our server sent on that connection. Since the replay sends the
recorded bytes, callback ids, client-ids and map key orders are the recorded ones, so bodies
and frames compare byte for byte; only HTTP heads need the rules of :func:`head_differences`.

Pacing: each client record goes out as long after the record before it (ours: when we sent
it or when its answer arrived) as it did in the recording. That keeps the idle periods that
timers act on (keepalive, long-poll timeouts) and lets the replay follow our server where it
is faster or slower than http-kit. Answers are read with a generous deadline, never slept for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask_sente.errors import UnpackError
from flask_sente.packers import Packer
from flask_sente.protocol import TIMEOUT, MessageKind, classify_server_message, unpack
from tests.server.wire import Frame, HttpAnswer, Wire, WireTimeout, encode_frame
from tests.transcripts import Record, Transcript

#: How long past its recorded time an answer may come before the replay gives up on it.
READ_SLACK_S = 5.0


@dataclass
class Seen:
    """What our server sent where the recording has one ``S>`` record."""

    record: Record
    http: HttpAnswer | None = None
    frame: Frame | None = None
    #: Raw bytes (F11), or for a FIN whatever came before it.
    raw: bytes = b""
    at: float = 0.0
    #: Seconds from the reference moments (see :class:`Moments`) to the answer: ours, and
    #: the recording's.
    delay: dict[str, float] = field(default_factory=dict)
    recorded_delay: dict[str, float] = field(default_factory=dict)

    @property
    def payload(self) -> bytes:
        if self.frame is not None:
            return self.frame.payload
        if self.http is not None:
            return self.http.body
        return self.raw


@dataclass
class Reopened:
    """A connection our server closed where the recording kept it open."""

    record: Record
    #: What ended it: ``"Connection: close"``, ``"F11"`` (the bare terminator), or
    #: ``"unannounced"`` when the server closed it without saying so.
    because: str


@dataclass
class Replay:
    transcript: Transcript
    seen: list[Seen] = field(default_factory=list)
    reopened: list[Reopened] = field(default_factory=list)
    #: Bytes our server sent that no record asked for, by recorded connection.
    unrecorded: dict[int, bytes] = field(default_factory=dict)


@dataclass
class Moments:
    """The reference moments an answer's delay is measured from, on one clock.

    ``trigger``: the latest client record (any connection); ``request``: the HTTP request an
    answer answers (same connection); ``idle``: the previous frame either way on the same
    WebSocket.
    """

    trigger: float | None = None
    request: dict[int, float] = field(default_factory=dict)
    idle: dict[int, float] = field(default_factory=dict)

    def client(self, record: Record, at: float) -> None:
        if record.kind in ("http", "ws", "fin"):
            self.trigger = at
        if record.kind == "http":
            self.request[record.conn] = at
        if record.kind == "ws":
            self.idle[record.conn] = at

    def delays(self, record: Record, at: float) -> dict[str, float]:
        refs = {
            "trigger": self.trigger,
            "request": self.request.get(record.conn) if record.kind == "http" else None,
            "idle": self.idle.get(record.conn) if record.kind == "ws" else None,
        }
        if record.kind == "ws":
            self.idle[record.conn] = at
        return {name: at - ref for name, ref in refs.items() if ref is not None}


def replay(transcript: Transcript, port: int) -> Replay:
    """Play ``transcript``'s client side against the server on ``port``."""
    result = Replay(transcript)
    wires: dict[int, Wire] = {}
    last_answer: dict[int, str] = {}
    ours, theirs = Moments(), Moments()
    previous: tuple[float, float] | None = None  # (recorded t, our time) of the last record
    try:
        for record in transcript.records:
            due = time.monotonic() if previous is None else previous[1] + record.t - previous[0]
            if record.direction == "S":
                seen = _read(record, wires, deadline=max(due, time.monotonic()) + READ_SLACK_S)
                seen.delay = ours.delays(record, seen.at)
                seen.recorded_delay = theirs.delays(record, record.t)
                last_answer[record.conn] = _how_it_ends(seen)
                result.seen.append(seen)
                previous = (record.t, seen.at)
                continue
            # pacing the client as recorded (not a synchronisation: answers are read above)
            time.sleep(max(0.0, due - time.monotonic()))
            if record.kind == "open":
                wires[record.conn] = Wire(port)
                at = time.monotonic()
            else:
                wire = _usable(record, wires, last_answer, port, result)
                at = _send(record, wire)
            ours.client(record, at)
            theirs.client(record, record.t)
            previous = (record.t, at)
        for conn, wire in wires.items():
            if wire.unread():
                result.unrecorded[conn] = wire.unread()
    finally:
        for wire in wires.values():
            wire.close()
    return result


def _send(record: Record, wire: Wire) -> float:
    if record.kind == "http":
        return wire.send(record.head.encode("latin-1") + record.body)
    if record.kind == "ws":
        return wire.send(encode_frame(record.opcode, record.body, fin=record.fin))
    if record.kind == "fin":
        return wire.finish()
    raise ValueError(f"a client record the replay cannot send: {record}")


def _read(record: Record, wires: dict[int, Wire], *, deadline: float) -> Seen:
    wire = wires[record.conn]
    try:
        if record.kind == "http":
            http = wire.read_http(deadline)
            return Seen(record, http=http, at=http.at)
        if record.kind == "ws":
            frame = wire.read_frame(deadline)
            return Seen(record, frame=frame, at=frame.at)
        if record.kind == "raw":
            raw, at = wire.read_bytes(len(record.body), deadline)
            return Seen(record, raw=raw, at=at)
        if record.kind == "fin":
            before, at = wire.read_eof(deadline)
            return Seen(record, raw=before, at=at)
    except WireTimeout as exc:
        raise AssertionError(f"no answer like {_describe(record)}: {exc}") from None
    raise ValueError(f"a server record the replay cannot read: {record}")


def _how_it_ends(seen: Seen) -> str:
    """How our answer told the client the connection ends, if it did."""
    if seen.http is not None and (seen.http.header("connection") or "").lower() == "close":
        return "Connection: close"
    if seen.record.kind == "raw":
        return "F11"
    return ""


def _usable(
    record: Record, wires: dict[int, Wire], last_answer: dict[int, str], port: int, result: Replay
) -> Wire:
    """The connection to send ``record`` on: the recorded one, or a new one where our server
    closed it (noted in ``result.reopened``)."""
    wire = wires[record.conn]
    if record.kind == "fin":
        return wire
    announced = last_answer.get(record.conn, "")
    if announced:  # the server said it would close: give it the time to
        wire.wait_closed(time.monotonic() + READ_SLACK_S)
    if wire.eof_at is None:
        return wire
    leftover = wire.unread()
    if leftover:
        result.unrecorded[record.conn] = result.unrecorded.get(record.conn, b"") + leftover
    result.reopened.append(Reopened(record, announced or "unannounced"))
    wire.close()
    wires[record.conn] = Wire(port)
    last_answer[record.conn] = ""
    return wires[record.conn]


def _describe(record: Record) -> str:
    if record.kind == "http":
        return f"{record.start_line!r} on conn {record.conn} (t={record.t})"
    return (
        f"{record.kind} {record.opcode} {record.body[:60]!r} on conn {record.conn} (t={record.t})"
    )


# ---------------------------------------------------------------------------- comparing

#: HTTP heads differ from http-kit's only in these ways, each listed with its reason in
#: docs/protocol.md ("Deliberate differences"). Header names compare case-insensitively and
#: their order is not compared (HTTP gives neither a meaning).
NOT_COMPARED = {
    "date": "the time of the answer (and the 101 answer carries none)",
    "server": "the WSGI server's name where http-kit writes `http-kit`",
}
ADDED = {
    "connection": "the WSGI server says `keep-alive` or `close`; http-kit says nothing",
    "vary": "`Vary: Cookie`, from Flask's session machinery",
}
#: http-kit labels binary bodies as text; flask_sente says what they are.
BINARY_CONTENT_TYPE = ("text/html; charset=utf-8", "application/octet-stream")


def head_differences(recorded: HttpAnswer | Record, ours: HttpAnswer, *, binary: bool) -> list[str]:
    """How our HTTP head differs from the recorded one, beyond the deliberate differences."""
    problems = []
    if ours.start_line != recorded.start_line:
        problems.append(f"status {ours.start_line!r}, recorded {recorded.start_line!r}")
    theirs = {name.lower(): value for name, value in recorded.headers}
    mine = {name.lower(): value for name, value in ours.headers}
    if binary and theirs.get("content-type") == BINARY_CONTENT_TYPE[0]:
        theirs["content-type"] = BINARY_CONTENT_TYPE[1]
    for name in sorted(theirs.keys() | mine.keys()):
        if name in NOT_COMPARED:
            continue
        if name not in theirs:
            if name not in ADDED:
                problems.append(f"header {name}: {mine[name]!r} that http-kit does not send")
        elif name not in mine:
            problems.append(f"no header {name} (http-kit: {theirs[name]!r})")
        elif mine[name] != theirs[name]:
            problems.append(f"header {name}: {mine[name]!r}, http-kit {theirs[name]!r}")
    return problems


def differences(seen: Seen, *, binary: bool) -> list[str]:
    """How our answer differs from the recorded one (beyond the deliberate differences)."""
    record = seen.record
    where = f"{record.kind} on conn {record.conn} at t={record.t}"
    problems: list[str] = []
    if record.kind == "http":
        assert seen.http is not None
        problems += head_differences(record, seen.http, binary=binary)
    if record.kind == "ws":
        assert seen.frame is not None
        got = (seen.frame.opcode, seen.frame.fin, seen.frame.masked)
        wanted = (record.opcode, record.fin, record.masked)
        if got != wanted:
            problems.append(f"frame (opcode, fin, masked) {got}, recorded {wanted}")
    if record.kind != "fin" and seen.payload != record.body:
        problems.append(f"bytes {seen.payload[:120]!r}, recorded {record.body[:120]!r}")
    return [f"{where}: {p}" for p in problems]


def answers_to_abandoned_requests(seen: Seen) -> bool:
    """Bytes before our FIN where http-kit closed at once: the answer to a request whose
    client stopped writing (F7's aborted POST) comes when it is ready, then the close."""
    return seen.record.kind == "fin" and bool(seen.raw)


# ---------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class TimingRule:
    """Where timing is behaviour: answers that ``matches`` must come ``low``..``high`` s
    after their ``since`` moment (``trigger``, ``request`` or ``idle``, see :class:`Moments`)."""

    name: str
    matches: Callable[[Seen, Packer], bool]
    since: str
    low: float
    high: float


def unpacked(seen: Seen, packer: Packer) -> tuple[Any, Any] | None:
    """The ``(value, cb)`` of a server message (an HTTP body or a data frame), else None."""
    if seen.record.kind not in ("http", "ws") or not seen.payload:
        return None
    if seen.frame is not None and seen.frame.opcode not in ("text", "binary"):
        return None
    try:
        return unpack(packer, seen.payload if packer.binary else seen.payload.decode("utf-8"))
    except (UnpackError, UnicodeDecodeError):
        return None


def message_kind(seen: Seen, packer: Packer) -> MessageKind | None:
    """What a server message is (push, ping, reply...), or None for non-messages."""
    message = unpacked(seen, packer)
    return None if message is None else classify_server_message(*message).kind


def is_timeout(seen: Seen, packer: Packer) -> bool:
    """An HTTP answer ``[:chsk/timeout nil]``."""
    message = unpacked(seen, packer)
    return seen.http is not None and message is not None and message[0] == TIMEOUT


def timing_violations(result: Replay, rules: list[TimingRule], packer: Packer) -> list[str]:
    problems = []
    for seen in result.seen:
        for rule in rules:
            if not rule.matches(seen, packer):
                continue
            delay = seen.delay.get(rule.since)
            if delay is None or not rule.low <= delay <= rule.high:
                recorded = seen.recorded_delay.get(rule.since)
                problems.append(
                    f"{rule.name}: {delay} s after its {rule.since} (allowed {rule.low}.."
                    f"{rule.high}; recorded {recorded}) at t={seen.record.t}"
                )
    return problems


def kind_is(kind: MessageKind) -> Callable[[Seen, Packer], bool]:
    return lambda seen, packer: message_kind(seen, packer) is kind
