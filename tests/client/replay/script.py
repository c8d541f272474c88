"""What a recorded real-Sente server answered, indexed by what its client sent.

A :class:`Script` reads a transcript (:mod:`tests.transcripts`) into :class:`Exchange` s: each
message a client (or the recording's driver) sent, the server's answer on the same connection,
and its consequences on other connections (a push to the WebSocket, the answer to the pending
long-poll). The server's timer-driven messages, the WebSocket keepalive ping and the long-poll
timeout, are kept apart: a replaying server sends them on its own clock.

Messages are compared after normalising only what the transcripts' README says varies from run
to run or from platform to platform: callback ids, ``udt``, the ``Sec-WebSocket-Key``, the
``Host`` port, header order and case, and the zero padding of msgpack Ajax bodies (F12).
:func:`translate` re-packs a transcript's payloads with another packer (the json that sente.js
speaks: the same structure). Pure: no sockets, no clocks.
"""

from __future__ import annotations

import io
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import msgpack

from flask_sente.packers import Packer
from flask_sente.protocol import TIMEOUT, WS_PING
from tests.transcripts import Record, Transcript

CHSK = "/chsk"
_CB = re.compile(r"^[0-9a-f]{6}$")
_UDT = re.compile(r"(?<![\w-])udt=\d+")
_CONTENT_LENGTH = re.compile(r"(?im)^(content-length): *\d+\r$")


@dataclass
class Exchange:
    """One client (or driver) message and what the server sent because of it."""

    request: Record
    lane: str
    #: The server's answer on the request's own connection (an HTTP response, frames).
    answer: list[Record] = field(default_factory=list)
    #: What it sent elsewhere: frames to the WebSocket, the answer to a pending long-poll.
    consequences: list[Record] = field(default_factory=list)


def query(target: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(target).query, keep_blank_values=True))


def target_of(head: str) -> tuple[str, str]:
    """``(method, target)`` of a request head."""
    method, target, _ = head.split("\r\n", 1)[0].split(" ", 2)
    return method, target


def header(head: str, name: str) -> str | None:
    for line in head.split("\r\n")[1:]:
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == name.lower():
            return value.strip()
    return None


def form(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True))


def is_binary(head: str) -> bool:
    return (header(head, "content-type") or "").startswith("application/octet-stream")


def client_id_of(head: str, body: bytes) -> str | None:
    _, target = target_of(head)
    found = query(target).get("client-id")
    if found is None and not is_binary(head) and body:
        found = form(body).get("client-id")
    return found


def first_msgpack_object(data: bytes) -> bytes:
    """The bytes of the first msgpack object: Sente's Ajax client pads its POSTs (F12)."""
    unpacker = msgpack.Unpacker(io.BytesIO(data), raw=True, strict_map_key=False)
    unpacker.unpack()
    return data[: unpacker.tell()]


def request_key(head: str, body: bytes) -> tuple[str, str, bytes]:
    """An HTTP request as compared: ``udt`` values and msgpack padding left out."""
    method, target = target_of(head)
    if is_binary(head) and body:
        body = first_msgpack_object(body)
    else:
        body = _UDT.sub("udt=*", body.decode("latin-1")).encode("latin-1")
    return method, _UDT.sub("udt=*", target), body


def cb_of(packer: Packer, payload: bytes) -> str | None:
    """The 6-hex callback id of a packed ``[value cb]``, or None."""
    try:
        value = packer.unpack(payload if packer.binary else payload.decode("utf-8"))
    except Exception:
        return None
    is_pair = isinstance(value, list) and len(value) == 2
    return value[1] if is_pair and isinstance(value[1], str) and _CB.match(value[1]) else None


def frame_key(packer: Packer, opcode: str, payload: bytes) -> tuple[str, bytes, str | None]:
    """A WebSocket frame as compared, its callback id replaced by ``{cb}``; and the id."""
    if opcode not in ("text", "binary"):
        return opcode, payload, None
    cb = cb_of(packer, payload)
    if cb is not None and payload.count(cb.encode()) == 1:
        return opcode, payload.replace(cb.encode(), b"{cb}"), cb
    return opcode, payload, None


def _unpacks_to(packer: Packer, payload: bytes, value: Any) -> bool:
    try:
        got = packer.unpack(payload if packer.binary else payload.decode("utf-8"))
    except Exception:
        return False
    return bool(got == value)


class Script:
    """A transcript's exchanges, found by what a client sends; see the module docstring."""

    def __init__(self, transcript: Transcript, packer: Packer) -> None:
        self.transcript = transcript
        self.packer = packer
        first = next(r for r in transcript.records if r.kind == "http" and r.direction == "C")
        found = client_id_of(first.head, first.body)
        assert found, f"{transcript.name}: no client-id in {first.start_line}"
        self.client_id = found
        self.port = (header(first.head, "host") or "").rpartition(":")[2]
        self.exchanges: list[Exchange] = []
        self.ping: Record | None = None
        self.timeout: Record | None = None
        self._index()

    # ------------------------------------------------------------------ reading

    def lane(self, record: Record) -> str:
        """``ws`` (the upgrade and frames), ``poll`` and ``post`` (Ajax), or ``helper``: a
        plain HTTP client of the recording's driver, not Sente."""
        if record.kind == "ws" or header(record.head, "upgrade") == "websocket":
            return "ws"
        method, target = target_of(record.head)
        mine = client_id_of(record.head, record.body) == self.client_id
        if urlsplit(target).path != CHSK or not mine:
            return "helper"
        return "poll" if method == "GET" else "post"

    def is_handshake_poll(self, record: Record) -> bool:
        return "handshake?" in query(target_of(record.head)[1])

    def _index(self) -> None:
        waiting: dict[int, list[Exchange]] = defaultdict(list)
        last: Exchange | None = None
        for record in self.transcript.records:
            if record.direction == "C" and record.kind in ("http", "ws"):
                last = Exchange(record, self.lane(record))
                self.exchanges.append(last)
                if record.kind == "http":
                    waiting[record.conn].append(last)
            elif record.direction == "S" and record.kind in ("http", "raw"):
                asked = waiting[record.conn].pop(0) if waiting[record.conn] else None
                if record.kind == "http" and _unpacks_to(self.packer, record.body, [TIMEOUT, None]):
                    self.timeout = record
                elif asked is not None and asked.lane == "poll" and asked is not last:
                    assert last is not None
                    last.consequences.append(record)
                elif asked is not None:
                    asked.answer.append(record)
            elif record.direction == "S" and record.kind == "ws":
                if _unpacks_to(self.packer, record.body, [WS_PING, None]):
                    self.ping = record
                elif last is not None and last.request.conn == record.conn:
                    last.answer.append(record)
                elif last is not None:
                    last.consequences.append(record)

    # ------------------------------------------------------------------ finding

    def key(self, record: Record) -> tuple[Any, ...]:
        if record.kind == "ws":
            return ("ws", *frame_key(self.packer, record.opcode, record.body)[:2])
        return ("http", *request_key(record.head, record.body))

    def find(self, key: tuple[Any, ...]) -> list[Exchange]:
        """The recorded exchanges whose request compares equal to ``key``, in order."""
        return [e for e in self.exchanges if self.key(e.request) == key]

    def client_records(self, lane: str) -> list[Record]:
        return [e.request for e in self.exchanges if e.lane == lane]

    def scenario_exchanges(self, name: str) -> list[Exchange]:
        records = {id(r) for r in self.transcript.scenario(name).records}
        return [e for e in self.exchanges if id(e.request) in records]

    def payload(self, record: Record) -> bytes | None:
        """The Sente payload a record carries (a frame's, a response body, a POST's packed
        event), or None."""
        if record.kind == "ws":
            return record.body if record.opcode in ("text", "binary") else None
        if record.kind != "http" or not record.body:
            return None
        if record.direction == "S":
            content_type = header(record.head, "content-type") or ""
            return record.body if content_type.startswith("text/html") else None
        if not record.start_line.startswith("POST"):
            return None
        if is_binary(record.head):
            return first_msgpack_object(record.body)
        return form(record.body)["ppstr"].encode("utf-8")

    def value(self, record: Record) -> Any:
        """A record's payload, unpacked."""
        payload = self.payload(record)
        assert payload is not None, f"no Sente payload in {record}"
        return self.packer.unpack(payload if self.packer.binary else payload.decode("utf-8"))

    def sent_events(self, scenario: str) -> list[tuple[Any, Any]]:
        """The events the client sent in ``scenario``, each with its callback marker (a cb
        id, the Ajax marker, or None)."""
        out = []
        for exchange in self.scenario_exchanges(scenario):
            if exchange.lane in ("ws", "post") and self.payload(exchange.request) is not None:
                event, cb = self.value(exchange.request)
                out.append((event, cb))
        return out


# ---------------------------------------------------------------------- translation


def encode_uri_component(text: str) -> str:
    """JavaScript's ``encodeURIComponent`` (not the product's copy: this checks it)."""
    return quote(text, safe="-_.!~*'()")


def with_body(record: Record, body: bytes) -> Record:
    """The record with another body and its content-length (if it has one) made to match."""
    head = _CONTENT_LENGTH.sub(lambda m: f"{m.group(1)}: {len(body)}\r", record.head)
    return replace(record, head=head, body=body)


def translate(transcript: Transcript, source: Packer, target: Packer) -> Transcript:
    """The transcript with every Sente payload unpacked by ``source`` and packed by
    ``target``: frames, response bodies and the ``ppstr`` of form POSTs."""

    def repack(data: bytes) -> bytes:
        value = source.unpack(data if source.binary else data.decode("utf-8"))
        packed = target.pack(value)
        return packed if isinstance(packed, bytes) else packed.encode("utf-8")

    def record(r: Record) -> Record:
        if r.kind == "ws" and r.opcode in ("text", "binary"):
            return replace(r, body=repack(r.body), opcode="binary" if target.binary else "text")
        if r.kind != "http" or not r.body:
            return r
        if r.direction == "S" and (header(r.head, "content-type") or "").startswith("text/html"):
            return with_body(r, repack(r.body))
        if r.direction == "C" and r.start_line.startswith("POST") and not is_binary(r.head):
            pairs = [p.split("=", 1) for p in r.body.decode("latin-1").split("&")]
            out = []
            for name, value in pairs:
                if name == "ppstr":
                    text = repack(unquote(value).encode("utf-8")).decode("utf-8")
                    value = encode_uri_component(text)
                out.append(f"{name}={value}")
            return with_body(r, "&".join(out).encode("latin-1"))
        return r

    scenarios = [replace(s, records=[record(r) for r in s.records]) for s in transcript.scenarios]
    return Transcript(f"{transcript.name}>{getattr(target, 'name', 'packer')}", scenarios)
