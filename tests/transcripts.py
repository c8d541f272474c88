"""Reading the recorded real-Sente transcripts of ``tests/fixtures/protocol/transcripts``.

Each file is what went over TCP between a real Sente 1.22 client and a real Sente server,
line by line (the format is described in that folder's README). This module turns a file
into :class:`Transcript`: scenarios of :class:`Record` s with the exact bytes, so replay
tests can send the ``C>`` side to our server and compare its answers with the ``S>`` side,
or script the ``S>`` side for our clients. Pure: it reads files and nothing else.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from tests.support import PROTOCOL_DIR

TRANSCRIPTS_DIR = PROTOCOL_DIR / "transcripts"

_LINE = re.compile(r"^t=\+(?P<t>[0-9.]+)s conn=(?P<conn>\d+) (?P<rest>.*)$")
_OPEN = re.compile(r"^-- TCP open \(client (?P<peer>[^)]*)\)$")
_FIN = re.compile(r"^(?P<dir>[CS])> -- TCP FIN")
_HTTP = re.compile(r'^(?P<dir>[CS])> HTTP (?P<head>"(?:[^"\\]|\\.)*") body=(?P<body>.*)$')
_RAW = re.compile(r'^(?P<dir>[CS])> RAW \([^)]*\) (?P<bytes>"(?:[^"\\]|\\.)*")$')
_WS = re.compile(
    r"^(?P<dir>[CS])> WS (?P<op>\w+) fin=(?P<fin>[01]) mask=(?P<mask>[01]) len=(?P<len>\d+)"
    r" ?(?P<rest>.*)$"
)
_CLOSE = re.compile(r'^code=(?P<code>\d+) reason=(?P<reason>"(?:[^"\\]|\\.)*")$')
_QUOTED = re.compile(r'^("(?:[^"\\]|\\.)*")')
_HEX = re.compile(r"^hex[:=](?P<hex>[0-9a-f]*)")


@dataclass(frozen=True)
class Record:
    """One line of a transcript: a TCP event, an HTTP message, raw bytes or a WebSocket frame."""

    t: float
    conn: int
    #: ``"C"`` (client to server), ``"S"`` (server to client), or ``""`` for a TCP open.
    direction: str
    #: ``"open"``, ``"fin"``, ``"http"``, ``"raw"`` or ``"ws"``.
    kind: str
    #: HTTP: the request or status line and headers, ending with ``\r\n\r\n``.
    head: str = ""
    #: HTTP body, raw bytes, or a WebSocket payload (a close frame's whole payload).
    body: bytes = b""
    #: WebSocket frames: ``text``, ``binary``, ``close``, ``ping``, ``pong`` or ``cont``.
    opcode: str = ""
    fin: bool = True
    masked: bool = False
    close_code: int | None = None
    close_reason: str = ""
    #: The recording's own note after a binary payload (``msgpack-decoded: ...``), if any.
    note: str = ""

    @property
    def text(self) -> str:
        """The body or payload as UTF-8 text (edn and transit payloads are text)."""
        return self.body.decode("utf-8")

    @property
    def start_line(self) -> str:
        """An HTTP message's request or status line."""
        return self.head.split("\r\n", 1)[0]

    @property
    def headers(self) -> list[tuple[str, str]]:
        """An HTTP message's headers in order, names as sent."""
        lines = self.head.split("\r\n")[1:]
        pairs = (line.split(":", 1) for line in lines if line)
        return [(name, value.strip()) for name, value in pairs]

    def header(self, name: str) -> str | None:
        """The first header of that name (case-insensitive), or None."""
        wanted = name.lower()
        return next((v for n, v in self.headers if n.lower() == wanted), None)


@dataclass
class Scenario:
    """The records after one ``## scenario`` line; ``name`` is its first word (``a``, ``d2``)."""

    name: str
    description: str
    records: list[Record] = field(default_factory=list)


@dataclass
class Transcript:
    name: str
    scenarios: list[Scenario]

    @property
    def records(self) -> list[Record]:
        return [record for scenario in self.scenarios for record in scenario.records]

    def scenario(self, name: str) -> Scenario:
        for scenario in self.scenarios:
            if scenario.name == name:
                return scenario
        raise KeyError(f"{self.name} has no scenario {name!r}")


def _payload(text: str) -> tuple[bytes, str]:
    """A JSON string literal (UTF-8 text) or ``hex:...`` / ``hex=...``, and any note after it."""
    quoted = _QUOTED.match(text)
    if quoted:
        return json.loads(quoted.group(1)).encode("utf-8"), text[quoted.end() :].strip()
    hexed = _HEX.match(text)
    if hexed:
        return bytes.fromhex(hexed.group("hex")), text[hexed.end() :].strip()
    if text == "":
        return b"", ""
    raise ValueError(f"not a payload: {text[:60]!r}")


def _record(t: float, conn: int, rest: str) -> Record:
    if _OPEN.match(rest):
        return Record(t, conn, "", "open")
    if m := _FIN.match(rest):
        return Record(t, conn, m.group("dir"), "fin")
    if m := _HTTP.match(rest):
        body, note = _payload(m.group("body"))
        return Record(
            t, conn, m.group("dir"), "http", head=json.loads(m.group("head")), body=body, note=note
        )
    if m := _RAW.match(rest):
        return Record(
            t, conn, m.group("dir"), "raw", body=json.loads(m.group("bytes")).encode("latin-1")
        )
    if m := _WS.match(rest):
        frame = Record(
            t,
            conn,
            m.group("dir"),
            "ws",
            opcode=m.group("op"),
            fin=m.group("fin") == "1",
            masked=m.group("mask") == "1",
        )
        if frame.opcode == "close":
            close = _CLOSE.match(m.group("rest"))
            if close is None:
                raise ValueError(f"a close frame without code and reason: {rest!r}")
            code, reason = int(close.group("code")), json.loads(close.group("reason"))
            body = code.to_bytes(2, "big") + reason.encode("utf-8")
            return replace(frame, body=body, close_code=code, close_reason=reason)
        body, note = _payload(m.group("rest"))
        if len(body) != int(m.group("len")):
            raise ValueError(f"payload length {len(body)} is not len={m.group('len')}: {rest!r}")
        return replace(frame, body=body, note=note)
    raise ValueError(f"unreadable transcript line: {rest!r}")


def parse(text: str, name: str = "") -> Transcript:
    """A transcript from its text; raises ValueError on a line it cannot read."""
    scenarios: list[Scenario] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("## scenario "):
            title = line[len("## scenario ") :]
            first, _, description = title.partition(" ")
            scenarios.append(Scenario(first, description))
            continue
        m = _LINE.match(line)
        if m is None:
            raise ValueError(f"{name}: unreadable line: {line[:80]!r}")
        if not scenarios:
            raise ValueError(f"{name}: a record before the first scenario")
        scenarios[-1].records.append(
            _record(float(m.group("t")), int(m.group("conn")), m.group("rest"))
        )
    return Transcript(name, scenarios)


def load(name: str) -> Transcript:
    """A transcript of ``tests/fixtures/protocol/transcripts`` by file stem (``"cljs-ws"``)."""
    path: Path = TRANSCRIPTS_DIR / f"{name}.txt"
    return parse(path.read_text(encoding="utf-8"), name)


#: Every transcript file, by stem.
ALL = sorted(p.stem for p in TRANSCRIPTS_DIR.glob("*.txt"))
