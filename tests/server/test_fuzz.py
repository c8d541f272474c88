"""Hostile input over real sockets: whatever arrives, the server answers as documented.

One server for the module, configured as a careful deployment would be (a CSRF token, an
allowed origin, ``authorized_fn``, ``reject_fn``, a small ``max_message_size``), with a
well-behaved sentinel client on each transport connected alongside the fuzzing. For every
input the server must answer with one of the documented outcomes, never a 500 and never
silence; after each batch the sentinels must still be served, and the server must be back
to the threads it had before the batch.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import struct
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
import requests
import websocket
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from flask_sente.protocol import unpack
from tests.server.harness import Server, running
from tests.support import wait_until

TOKEN = "fuzz-csrf-token"
ORIGIN = "http://site.test"
MAX_MESSAGE = 64 * 1024
OPTIONS: dict[str, Any] = {
    "csrf_token": TOKEN,
    "allowed_origins": [ORIGIN],
    "authorized_fn": lambda req: req.header("x-deny") is None,
    "reject_fn": lambda req: ("go away", 429) if req.param("reject") is not None else None,
    "max_message_size": MAX_MESSAGE,
    "lp_timeout_ms": 300,
    "ws_kalive_ms": 3_600_000,  # the sentinels stay idle between batches
}
#: Every HTTP status the channel-socket route may answer with this configuration
#: (429 is this module's reject_fn).
HTTP_ANSWERS = {101, 200, 400, 401, 403, 413, 429, 501, 503}
#: Close codes the server may send: normal, going away, protocol error, invalid UTF-8 text
#: (wsproto's own answer), policy, too big.
CLOSE_CODES = {1000, 1001, 1002, 1007, 1008, 1009}
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
IO_TIMEOUT = 5.0
NO_CLOSE_FRAME = 1006


# ---------------------------------------------------------------------------- fixtures


class Sentinels:
    """A WebSocket and an Ajax client of a uid no fuzzed input names."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.uid = f"sentinel-{uuid.uuid4()}"
        query = urlencode({"client-id": str(uuid.uuid4()), "uid": self.uid, "csrf-token": TOKEN})
        self.ws = websocket.create_connection(
            f"{server.ws_url}?{query}", timeout=IO_TIMEOUT, origin=ORIGIN
        )
        self.http = requests.Session()
        self.http.headers.update({"X-CSRF-Token": TOKEN, "Origin": ORIGIN})
        self.ajax_client_id = str(uuid.uuid4())

    def warm_up(self) -> None:
        """Start the server's lazily started threads, so that batches compare like with like."""
        self.still_served()
        self.ws.send(json.dumps([["test/push-me", "warm"], None]))
        while True:
            value, _ = unpack(self.server.packer, self.ws.recv())
            if value == [["test/pushed", {"got": "warm"}]]:
                return

    def still_served(self) -> None:
        token = uuid.uuid4().hex
        cb = f"sentinel-{token}"
        self.ws.send(json.dumps([["test/echo", token], cb]))
        self.ws.settimeout(IO_TIMEOUT)
        while True:
            value, got_cb = unpack(self.server.packer, self.ws.recv())
            if got_cb == cb:
                assert value == {"echo": token}
                break
        response = self.http.post(
            self.server.chsk,
            data={
                "client-id": self.ajax_client_id,
                "uid": self.uid,
                "ppstr": json.dumps([["test/echo", token], "ajax-cb"]),
            },
            timeout=IO_TIMEOUT,
        )
        assert response.status_code == 200, response.text
        assert unpack(self.server.packer, response.text)[0] == {"echo": token}

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()
        self.http.close()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    before = set(threading.enumerate())
    with running(**OPTIONS) as s:
        yield s
    wait_until(
        lambda: not [t for t in threading.enumerate() if t not in before and t.is_alive()],
        timeout=10,
    )


@pytest.fixture(scope="module")
def sentinels(server: Server) -> Iterator[Sentinels]:
    s = Sentinels(server)
    s.warm_up()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def batch(server: Server, sentinels: Sentinels) -> Iterator[None]:
    """After each batch of fuzz: the sentinels are served, and no thread was left behind."""
    before = set(threading.enumerate())
    yield
    sentinels.still_served()

    loop = server.app.extensions["sente"].loop

    def new_threads() -> list[str]:
        # the loop's thread may be a new one: a handler that stalled handed the loop over
        return [
            t.name
            for t in threading.enumerate()
            if t not in before and t.is_alive() and t is not loop.thread
        ]

    try:
        wait_until(lambda: not new_threads(), timeout=10)
    except AssertionError:
        raise AssertionError(f"threads left behind: {new_threads()}") from None


# ---------------------------------------------------------------------------- strategies

EVENT_IDS = [
    "test/echo",
    "test/reply-str",
    "test/push-me",
    "test/push-3",
    "test/push-flush",
    "test/no-reply",
    "test/close-me",
    "chsk/ws-ping",
    "chsk/ws-pong",
    "chsk/handshake",
    "chsk/close",
    "chsk/bad-event",
    "chsk/uidport-open",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from([":kw", ":ns/kw", "", "\x00", "\u2028", "🙂"])
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=16,
)
event_ids = (
    st.sampled_from(EVENT_IDS)
    | st.text(max_size=12)
    | st.from_regex(r"[a-z]{1,4}/[a-z-]{1,6}", fullmatch=True)
)
events = st.one_of(
    st.tuples(event_ids).map(list),
    st.tuples(event_ids, values).map(list),
    st.lists(values, max_size=4),
    values,
)
callbacks = st.none() | st.just("ajax-cb") | st.text(max_size=8) | st.integers() | values


@st.composite
def packages(draw: st.DrawFn) -> str:
    """Text that is, or is nearly, or is nothing like, a packed channel-socket message."""
    kind = draw(st.sampled_from(["valid", "mutated", "legacy", "garbage", "nested", "shape"]))
    if kind == "garbage":
        return draw(st.text(max_size=300))
    if kind == "nested":
        depth = draw(st.integers(min_value=1, max_value=30_000))
        return '[["test/echo", ' + "[" * depth + "]" * depth + "], null]"
    if kind == "shape":
        return draw(
            st.sampled_from(
                [
                    "null",
                    "1",
                    '"x"',
                    "{}",
                    "[]",
                    "[[]]",
                    "[1,2,3]",
                    '[["a/b"]]',
                    "[[null]]",
                    '[["no-namespace", 1], "cb"]',
                    '[{"a": 1}, null]',
                    '[[":chsk/ws-ping"], "cb"]',
                    "[" * 5,
                    "]" * 5,
                    '[["test/echo", 1], null, "extra"]',
                    "+",
                    "-",
                    "+[",
                    "-null",
                ]
            )
        )
    package = json.dumps([draw(events), draw(callbacks)])
    if kind == "legacy":
        return draw(st.sampled_from(["+", "-"])) + package
    if kind == "mutated":
        at = draw(st.integers(min_value=0, max_value=len(package)))
        how = draw(st.sampled_from(["cut", "insert", "delete"]))
        if how == "cut":
            return package[:at]
        if how == "insert":
            return package[:at] + draw(st.text(min_size=1, max_size=3)) + package[at:]
        return package[:at] + package[at + 1 :]
    return package


def binary_packages() -> st.SearchStrategy[bytes]:
    return st.binary(max_size=300) | packages().map(lambda s: s.encode("utf-8", "surrogatepass"))


# ---------------------------------------------------------------------------- raw clients


def port_of(server: Server) -> int:
    port = urlsplit(server.url).port
    assert port is not None
    return port


def http_exchange(
    server: Server, raw: bytes, *, half_close: bool = True
) -> tuple[int, dict[str, str], bytes]:
    """Send one raw HTTP request; the status, headers and body of the answer.

    With ``half_close`` the client stops writing after the request, as a client that sent
    all it meant to would, so a lying Content-Length cannot keep the server waiting."""
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=IO_TIMEOUT) as sock:
        sock.sendall(raw)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock)
        response.begin()
        headers = {k.lower(): v for k, v in response.getheaders()}
        body = b"" if response.status == 101 else response.read()
        return response.status, headers, body


def request_bytes(
    method: str, target: str, headers: list[tuple[str, str]], body: bytes = b""
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers)]
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode("utf-8", "surrogateescape") + body


def assert_documented(status: int, body: bytes, server: Server) -> None:
    event(f"HTTP {status}")
    assert status in HTTP_ANSWERS, (status, body[:200])
    if status == 200 and body:
        unpack(server.packer, body.decode("utf-8"))
    if status == 400:
        assert body.strip(), "a 400 must say what was wrong"


class RawWs:
    """A WebSocket client over a plain socket, able to send frames no library would."""

    def __init__(self, server: Server, *, query: dict[str, str] | None = None) -> None:
        self.server = server
        self.uid = f"fuzz-{uuid.uuid4()}"
        params = {"client-id": str(uuid.uuid4()), "uid": self.uid, "csrf-token": TOKEN}
        self.sock = socket.create_connection(("127.0.0.1", port_of(server)), timeout=IO_TIMEOUT)
        self.conn = WSConnection(ConnectionType.CLIENT)
        target = "/chsk?" + urlencode(query or params)
        self.sock.sendall(
            self.conn.send(
                Request(
                    host="127.0.0.1", target=target, extra_headers=[(b"origin", ORIGIN.encode())]
                )
            )
        )
        self.closed: int | None = None
        self.eof = False
        self.parts: list[Any] = []
        accepted = self.until(lambda e: isinstance(e, (AcceptConnection, RejectConnection)))
        assert isinstance(accepted, AcceptConnection), accepted

    def until(self, predicate: Any) -> Any:
        """Read until an event matches (returned) or the server ends the connection (None).

        A close frame from the server is answered, and its code kept in ``closed``; a read
        that times out fails the test, as a server that neither answers nor closes."""
        while not self.eof:
            for raw_event in self.conn.events():
                ev = self._assembled(raw_event)
                if ev is not None and predicate(ev):
                    return ev
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            self.eof = not data
            with contextlib.suppress(RemoteProtocolError):
                self.conn.receive_data(data or None)
        return None

    def _assembled(self, event: Any) -> Any:
        if isinstance(event, TextMessage | BytesMessage):
            self.parts.append(event.data)
            if not event.message_finished:
                return None
            text = isinstance(event, TextMessage)
            joined = "".join(self.parts) if text else b"".join(self.parts)
            self.parts = []
            return TextMessage(joined) if text else BytesMessage(joined)
        # wsproto reports a connection that ended without a close frame as 1006
        if isinstance(event, CloseConnection) and event.code != NO_CLOSE_FRAME:
            self.closed = event.code
            with contextlib.suppress(OSError, LocalProtocolError):
                self.sock.sendall(self.conn.send(event.response()))
        return event

    def send(self, message: str | bytes, *, finished: bool = True) -> None:
        event = (
            TextMessage(message, message_finished=finished)
            if isinstance(message, str)
            else BytesMessage(message, message_finished=finished)
        )
        self.sock.sendall(self.conn.send(event))

    def echo_or_close(self) -> Any:
        """Ask for an echo; the reply, or None when the server closed the connection instead."""
        token = uuid.uuid4().hex
        cb = f"probe-{token}"
        with contextlib.suppress(OSError):
            self.send(json.dumps([["test/echo", token], cb]))

        def is_reply(event: Any) -> bool:
            return (
                isinstance(event, TextMessage) and unpack(self.server.packer, event.data)[1] == cb
            )

        event = self.until(is_reply)
        if event is None:
            return None
        assert unpack(self.server.packer, event.data)[0] == {"echo": token}
        return event

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
    length: int | None = None,
) -> bytes:
    """One WebSocket frame, built by hand: it may lie about its length or break any rule."""
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv & 0x7) << 4 | (opcode & 0xF)])
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 2**16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    key = b"\x37\xfa\x21\x3d"
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


# ---------------------------------------------------------------------------- WebSocket


@FUZZ
@given(messages=st.lists(packages() | binary_packages(), min_size=1, max_size=3))
def test_ws_messages_of_any_content_leave_the_connection_serving(server, messages):
    ws = RawWs(server)
    try:
        for message in messages:
            ws.send(message)
        served = ws.echo_or_close() is not None
        event("still serving" if served else f"closed {ws.closed}")
        if not served:
            assert ws.closed in CLOSE_CODES, (ws.closed, messages)
            closes_it = any("test/close-me" in str(m) for m in messages)
            too_big = any(len(m) > MAX_MESSAGE for m in messages)
            assert closes_it or too_big, f"closed with {ws.closed} after {messages!r}"
    finally:
        ws.close()


@settings(max_examples=20, deadline=None)
@given(
    size=st.integers(min_value=MAX_MESSAGE - 100, max_value=MAX_MESSAGE * 3),
    parts=st.integers(min_value=1, max_value=8),
    binary=st.booleans(),
)
def test_ws_messages_over_the_limit_close_with_1009(server, size, parts, binary):
    ws = RawWs(server)
    try:
        payload = json.dumps([["test/echo", "x" * size], "cb"])
        chunk = -(-len(payload) // parts)
        pieces = [payload[i : i + chunk] for i in range(0, len(payload), chunk)]
        for i, piece in enumerate(pieces):
            ws.send(piece.encode() if binary else piece, finished=i == len(pieces) - 1)
        reply = ws.echo_or_close()
        if len(payload.encode()) > MAX_MESSAGE:
            assert reply is None and ws.closed == 1009
        else:
            assert reply is not None
    finally:
        ws.close()


OPCODES = st.sampled_from([0x0, 0x1, 0x2, 0x3, 0x7, 0x8, 0x9, 0xA, 0xB, 0xF])


@st.composite
def bad_frames(draw: st.DrawFn) -> bytes:
    """A sequence of hand-built frames, many of them against the rules."""
    out = b""
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        payload = draw(st.binary(max_size=200))
        opcode = draw(OPCODES)
        length = draw(
            st.none()
            | st.integers(min_value=0, max_value=300)
            | st.sampled_from([2**16, 2**31, 2**63 - 1, 2**64 - 1])
        )
        out += frame(
            opcode,
            payload,
            fin=draw(st.booleans()),
            rsv=draw(st.sampled_from([0, 0, 1, 2, 4, 7])),
            masked=draw(st.booleans()),
            length=length,
        )
    if draw(st.booleans()):
        out = out[: draw(st.integers(min_value=0, max_value=len(out)))]
    return out


@FUZZ
@given(data=bad_frames() | st.binary(min_size=1, max_size=400))
def test_ws_malformed_frames_close_the_connection_with_a_documented_code(server, data):
    ws = RawWs(server)
    try:
        ws.sock.sendall(data)
        # the client has said all it will: the server must answer or close, not wait forever
        ws.sock.shutdown(socket.SHUT_WR)
        ws.until(lambda e: False)
        assert ws.eof, "the server kept the connection open after the client stopped writing"
        event(f"closed {ws.closed}")
        assert ws.closed is None or ws.closed in CLOSE_CODES, ws.closed
    finally:
        ws.close()


@pytest.mark.parametrize(
    "data, code",
    [
        (frame(0x1, b'[["test/echo",1],"c"]', masked=False), 1002),
        (frame(0x3, b"x"), 1002),
        (frame(0x1, b"x", rsv=4), 1002),
        (frame(0x9, b"x" * 126), 1002),
        (frame(0x9, b"x", fin=False), 1002),
        (frame(0x0, b"x"), 1002),
        (frame(0x1, b"\xff\xfe"), 1007),
        (frame(0x8, struct.pack("!H", 999)), 1002),
    ],
    ids=[
        "unmasked",
        "opcode-3",
        "rsv",
        "long-ping",
        "fragmented-ping",
        "orphan-continuation",
        "bad-utf8",
        "close-999",
    ],
)
def test_ws_protocol_errors_are_answered_with_a_close_frame(server, data, code):
    ws = RawWs(server)
    try:
        ws.sock.sendall(data)
        ws.until(lambda e: False)
        assert ws.eof
        assert ws.closed == code
    finally:
        ws.close()


# ---------------------------------------------------------------------------- Ajax

GOOD_HEADERS = [("X-CSRF-Token", TOKEN), ("Origin", ORIGIN)]


@FUZZ
@given(
    ppstr=packages(),
    form_extra=st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=3),
)
def test_ajax_post_of_any_package_is_answered_as_documented(server, ppstr, form_extra):
    form = {
        **form_extra,
        "client-id": str(uuid.uuid4()),
        "uid": f"fuzz-{uuid.uuid4()}",
        "ppstr": ppstr,
    }
    body = urlencode(form).encode()
    status, _, answer = http_exchange(
        server,
        request_bytes(
            "POST",
            "/chsk",
            [
                *GOOD_HEADERS,
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Content-Length", str(len(body))),
            ],
            body,
        ),
    )
    assert_documented(status, answer, server)
    assert status in (200, 400, 413), (status, answer)
    if answer.startswith(b"bad package"):
        server.recorder.wait_for(
            lambda m: m.id == "chsk/bad-package" and m.client_id == form["client-id"]
        )


@FUZZ
@given(body=binary_packages() | st.binary(min_size=MAX_MESSAGE - 10, max_size=MAX_MESSAGE + 10))
def test_ajax_binary_post_of_any_body_is_answered_as_documented(server, body):
    query = urlencode(
        {"client-id": str(uuid.uuid4()), "binary?": "true", "uid": f"fuzz-{uuid.uuid4()}"}
    )
    status, _, answer = http_exchange(
        server,
        request_bytes(
            "POST",
            f"/chsk?{query}",
            [
                *GOOD_HEADERS,
                ("Content-Type", "application/octet-stream"),
                ("Content-Length", str(len(body))),
            ],
            body,
        ),
    )
    assert_documented(status, answer, server)
    expected = {413} if len(body) > MAX_MESSAGE else {200, 400}
    assert status in expected, (status, answer[:200])


def chunked(body: bytes, size: int = 4096) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


@pytest.mark.parametrize("binary", [False, True], ids=["form", "binary"])
def test_chunked_post_over_the_limit_gets_413(server, binary):
    package = json.dumps([["test/echo", "x" * (MAX_MESSAGE * 2)], "ajax-cb"]).encode()
    query = urlencode({"client-id": str(uuid.uuid4()), "binary?": "true"} if binary else {})
    body = package if binary else urlencode({"client-id": "c", "ppstr": package}).encode()
    ctype = "application/octet-stream" if binary else "application/x-www-form-urlencoded"
    headers = [*GOOD_HEADERS, ("Content-Type", ctype), ("Transfer-Encoding", "chunked")]
    status, _, _ = http_exchange(
        server, request_bytes("POST", f"/chsk?{query}", headers, chunked(body))
    )
    assert status == 413


# ---------------------------------------------------------------------------- HTTP surface

PARAM_KEYS = ["client-id", "handshake?", "csrf-token", "udt", "uid", "binary?", "ppstr"]
param_values = st.text(max_size=30) | st.sampled_from(
    ["", "1", "true", "false", TOKEN, "%", "%zz", "\x00"]
)


@st.composite
def query_strings(draw: st.DrawFn) -> str:
    """A query string: mostly well-formed pairs, sometimes raw bytes and broken escapes."""
    keys = st.sampled_from(PARAM_KEYS) | st.text(max_size=10)
    pairs = draw(st.lists(st.tuples(keys, param_values), max_size=6))
    if draw(st.booleans()):
        # a fresh client-id, so that GETs are answered at once instead of held as long-polls
        pairs.append(("client-id", str(uuid.uuid4())))
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        pairs.append(("reject", "1"))
    encoded = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
    raw = draw(st.sampled_from(["", "&%zz", "&a=%ff%fe", "&=&&=", "&%c3%28=1", "&\u00e9=\u00e9"]))
    return encoded + raw


HEADER_NAMES = [
    "Origin",
    "Referer",
    "X-CSRF-Token",
    "X-XSRF-Token",
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Content-Type",
    "Cookie",
    "X-Deny",
    "X-Junk",
]
header_values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40
) | st.sampled_from(
    [
        ORIGIN,
        ORIGIN + "/",
        ORIGIN + ".evil.test",
        "null",
        "http://evil.test",
        ORIGIN + "/page",
        TOKEN,
        "websocket",
        "Upgrade",
        "h2c",
        "dGhlIHNhbXBsZSBub25jZQ==",
        "13",
        "application/x-www-form-urlencoded",
        "application/octet-stream",
        "multipart/form-data; boundary=x",
        "session=garbage",
    ]
)


UPGRADE = [
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Version", "13"),
]


@st.composite
def header_lists(draw: st.DrawFn) -> list[tuple[str, str]]:
    """Headers that pass the checks, or not; a WebSocket upgrade, or a broken one; and junk."""
    headers = list(draw(st.sampled_from([[], GOOD_HEADERS, GOOD_HEADERS, GOOD_HEADERS[1:]])))
    if draw(st.booleans()):
        headers += draw(st.sampled_from([UPGRADE, UPGRADE[:2], UPGRADE[1:], UPGRADE[:3]]))
    extra = st.tuples(st.sampled_from(HEADER_NAMES), header_values)
    headers += draw(st.lists(extra, max_size=4))
    return draw(st.permutations(headers))


@settings(FUZZ, max_examples=200)
@given(
    method=st.sampled_from(["GET", "POST"]),
    query=query_strings(),
    headers=header_lists(),
    body=st.binary(max_size=200) | st.text(max_size=200).map(str.encode),
    content_length=st.none()
    | st.sampled_from(["-1", "abc", "0", "99999999999999999999", str(MAX_MESSAGE + 1), "1e3", ""])
    | st.integers(min_value=0, max_value=400).map(str),
)
def test_any_query_headers_and_body_get_a_documented_answer(
    server, method, query, headers, body, content_length
):
    all_headers = list(headers)
    if content_length is not None:
        all_headers.append(("Content-Length", content_length))
    elif method == "POST":
        all_headers.append(("Content-Length", str(len(body))))
    raw = request_bytes(method, f"/chsk?{query}", all_headers, body if method == "POST" else b"")
    # a GET may be held as a long-poll, which a client that stops writing gives up
    status, _, answer = http_exchange(server, raw, half_close=method == "POST")
    if status == 405:
        # Werkzeug routes a request with Upgrade: websocket to the GET-only WebSocket rule,
        # so a POST that claims to upgrade gets its 405 page (not a flask_sente answer)
        assert method == "POST" and any(name == "Upgrade" for name, _ in headers)
        return
    assert_documented(status, answer, server)
