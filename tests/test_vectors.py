"""The golden wire strings of ``tests/fixtures/protocol``, read and written back byte for byte.

``vectors.json`` gives edn wire strings with what each means; ``captured-sente-1.22.txt`` is
real traffic between a Sente 1.22 server and real JVM and ClojureScript clients. Every edn
string in both is decoded with the edn packer, compared with its meaning written out by hand
below, and re-encoded: it must come out byte for byte as the real Sente wrote it.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any, NamedTuple
from urllib.parse import parse_qs

import pytest

from flask_sente import edn, protocol
from flask_sente.errors import UnpackError
from flask_sente.packers import EdnPacker
from flask_sente.protocol import (
    AJAX_CB,
    DUMMY_CB_200,
    HANDSHAKE,
    NIL_UID,
    TIMEOUT,
    WS_PING,
    WS_PONG,
    MessageKind,
)
from flask_sente.values import Char, Keyword, Symbol
from tests.support import PROTOCOL_DIR

EDN = EdnPacker()
K = Keyword


def _read_protocol_file(name: str) -> str:
    path = PROTOCOL_DIR / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the golden vectors live in tests/fixtures/protocol"
        )
    return path.read_text(encoding="utf-8")


class Meaning(NamedTuple):
    """What a wire string means: the unpacked ``(value, cb)`` and, for a message a client
    classifies (WS frames, Ajax GET bodies), its :class:`MessageKind`."""

    value: Any
    cb: Any = None
    kind: MessageKind | None = None


def _handshake(uid: Any, data: Any = None) -> Meaning:
    return Meaning([HANDSHAKE, [uid, None, data]], None, MessageKind.HANDSHAKE)


def _push(*events: list[Any]) -> Meaning:
    return Meaning(list(events), None, MessageKind.PUSH)


def _reply(value: Any, cb: str) -> Meaning:
    return Meaning(value, cb, MessageKind.REPLY)


def _send(event: list[Any], cb: Any = None) -> Meaning:
    return Meaning(event, cb)


# ---------------------------------------------------------------------------- vectors.json

TODO_GET = [K("todo/get"), {K("id"): 42}]
CHAT_SEND_HI = [K("chat/send"), {K("text"): "hi"}]
TYPES = {
    K("inst"): dt.datetime(2024, 1, 2, 3, 4, 5, 6000, tzinfo=dt.UTC),
    K("int"): 1,
    K("float"): 1.5,
    K("kw"): K("k"),
    K("sym"): Symbol("foo"),
    K("str"): "s",
    K("list"): (1, 2),
    K("nil"): None,
    K("bool"): True,
    K("uuid"): uuid.UUID("00000000-0000-0000-0000-000000000001"),
    K("set"): frozenset({1}),
    K("char"): Char("a"),
}

VECTOR_MEANINGS: dict[str, Meaning] = {
    # v1.21+
    '[[:chsk/handshake ["alice" nil nil]] nil]': _handshake("alice"),
    "[[:chsk/handshake [:sente/nil-uid nil nil]] nil]": _handshake(NIL_UID),
    '[[:chsk/handshake ["alice" nil {:server-version "1.2", :roles #{:admin}}]] nil]': _handshake(
        "alice", {K("server-version"): "1.2", K("roles"): frozenset({K("admin")})}
    ),
    '[[[:chat/msg {:text "hi", :from "bob"}]] nil]': _push(
        [K("chat/msg"), {K("text"): "hi", K("from"): "bob"}]
    ),
    "[[[:a/x 1] [:a/y nil] [:a/z {:n 3}]] nil]": _push(
        [K("a/x"), 1], [K("a/y"), None], [K("a/z"), {K("n"): 3}]
    ),
    "[[[:app/refresh]] nil]": _push([K("app/refresh")]),
    "[:chsk/ws-ping nil]": Meaning(WS_PING, None, MessageKind.PING),
    "[[:chsk/ws-pong] nil]": _send([WS_PONG]),
    '[[:chsk/ws-ping] "a1b2c3"]': _send([WS_PING], "a1b2c3"),
    '["pong" "a1b2c3"]': _reply("pong", "a1b2c3"),
    '[[:chat/send {:text "hello \\"world\\"\\n"}] nil]': _send(
        [K("chat/send"), {K("text"): 'hello "world"\n'}]
    ),
    '[[:todo/get {:id 42}] "3f2e1d"]': _send(TODO_GET, "3f2e1d"),
    '[{:id 42, :title "Milk", :done? false} "3f2e1d"]': _reply(
        {K("id"): 42, K("title"): "Milk", K("done?"): False}, "3f2e1d"
    ),
    '[nil "3f2e1d"]': _reply(None, "3f2e1d"),
    '[[:chat/send {:text "hi"}] nil]': _send(CHAT_SEND_HI),
    "[[:todo/get {:id 42}] :ajax]": _send(TODO_GET, AJAX_CB),
    "[:chsk/dummy-cb-200 nil]": Meaning(DUMMY_CB_200, None, MessageKind.DUMMY),
    "[{:ok true} nil]": Meaning({K("ok"): True}),  # an Ajax POST reply: paired by HTTP
    "[:chsk/timeout nil]": Meaning(TIMEOUT, None, MessageKind.TIMEOUT),
    "[[[:a/x 1] [:a/y 2]] nil]": _push([K("a/x"), 1], [K("a/y"), 2]),
    (
        '[[[:t/types {:inst #inst "2024-01-02T03:04:05.006-00:00", :int 1, :float 1.5, :kw :k,'
        ' :sym foo, :str "s", :list (1 2), :nil nil, :bool true,'
        ' :uuid #uuid "00000000-0000-0000-0000-000000000001", :set #{1}, :char \\a}]] nil]'
    ): _push([K("t/types"), TYPES]),
    # v1.18-v1.20
    '[[:chsk/handshake ["alice" nil]]]': Meaning(
        [HANDSHAKE, ["alice", None]], None, MessageKind.HANDSHAKE
    ),
    "[:chsk/ws-ping]": Meaning(WS_PING, None, MessageKind.PING),
    "[[[:a/x 1]]]": _push([K("a/x"), 1]),
    "[[:todo/get {:id 42}] 0]": _send(TODO_GET, 0),
    "[:chsk/dummy-cb-200]": Meaning(DUMMY_CB_200, None, MessageKind.DUMMY),
    # <= v1.17
    '-[:chsk/handshake ["alice" nil]]': Meaning(
        [HANDSHAKE, ["alice", None]], None, MessageKind.HANDSHAKE
    ),
    "-:chsk/ws-ping": Meaning(WS_PING, None, MessageKind.PING),
    "-[[:a/x 1]]": _push([K("a/x"), 1]),
    '+[[:chat/send {:text "hi"}]]': _send(CHAT_SEND_HI),
    '+[[:todo/get {:id 42}] "3f2e1d"]': _send(TODO_GET, "3f2e1d"),
    '+["pong" "a1b2c3"]': _reply("pong", "a1b2c3"),
    "+[[:todo/get {:id 42}] 0]": _send(TODO_GET, 0),
    "-:chsk/dummy-cb-200": Meaning(DUMMY_CB_200, None, MessageKind.DUMMY),
}


def _edn_vectors() -> list[dict[str, Any]]:
    vectors = json.loads(_read_protocol_file("vectors.json"))
    # msgpack (hex) and transit vectors are for later packers; binary/"any" ones are URLs.
    return [v for v in vectors if v["packer"] == "edn"]


def _packed(vector: dict[str, Any]) -> str:
    """The packed string of a vector: the wire itself, or the ``ppstr`` of a POST form body."""
    wire: str = vector["wire"]
    if "ppstr=" in wire:
        return parse_qs(wire, strict_parsing=True)["ppstr"][0]
    return wire


EDN_VECTORS = _edn_vectors()


def _vector_id(vector: dict[str, Any]) -> str:
    return f"{vector['format'].split()[0]}:{vector['direction']}:{vector['wire'][:48]}"


def test_vectors_file_has_the_expected_edn_entries() -> None:
    assert len(EDN_VECTORS) == 37
    assert {_packed(v) for v in EDN_VECTORS} == set(VECTOR_MEANINGS)


@pytest.mark.parametrize("vector", EDN_VECTORS, ids=_vector_id)
def test_vector_decodes_to_its_meaning(vector: dict[str, Any]) -> None:
    packed = _packed(vector)
    meaning = VECTOR_MEANINGS[packed]
    assert protocol.unpack(EDN, packed) == (meaning.value, meaning.cb)


@pytest.mark.parametrize("vector", EDN_VECTORS, ids=_vector_id)
def test_vector_reencodes_byte_for_byte(vector: dict[str, Any]) -> None:
    packed = _packed(vector)
    value, cb = protocol.unpack(EDN, packed)
    fmt = vector["format"]
    if fmt.startswith("legacy-v1"):
        again = protocol.pack(EDN, value, cb, legacy=True, wrap=packed.startswith("+"))
    elif fmt.startswith("legacy-v2"):
        # v2 has no writer (nothing needs it): the packer alone reproduces it, and the
        # current format carries the same meaning.
        again = EDN.pack(EDN.unpack(packed))
        assert protocol.unpack(EDN, protocol.pack(EDN, value, cb)) == (value, cb)
    else:
        assert fmt == "v1.21+"
        again = protocol.pack(EDN, value, cb)
    assert again == packed


@pytest.mark.parametrize(
    "vector", [v for v in EDN_VECTORS if not v["event"].startswith("N/A")], ids=_vector_id
)
def test_vector_event_column_agrees(vector: dict[str, Any]) -> None:
    """The ``event`` column (one event, or several of a batch) is what the wire carries."""
    events = edn.loads("[" + vector["event"] + "]")
    value, _ = protocol.unpack(EDN, _packed(vector))
    kind = VECTOR_MEANINGS[_packed(vector)].kind
    if kind is MessageKind.PUSH:
        assert value == [ev for ev in events if isinstance(ev, list)]
    else:
        assert value == events[0]
        assert protocol.is_event(value)


@pytest.mark.parametrize("vector", EDN_VECTORS, ids=_vector_id)
def test_vector_classifies_as_a_client_would(vector: dict[str, Any]) -> None:
    meaning = VECTOR_MEANINGS[_packed(vector)]
    value, cb = protocol.unpack(EDN, _packed(vector))
    if vector["direction"] == "c2s":
        assert meaning.kind is None
        assert protocol.is_event(value)
        return
    if meaning.kind is None:  # an Ajax POST reply
        assert vector["transport"] == "ajax-post"
        assert cb is None
        return
    message = protocol.classify_server_message(value, cb)
    assert message.kind is meaning.kind
    if message.kind is MessageKind.PUSH:
        assert message.events == value
    if message.kind is MessageKind.HANDSHAKE:
        assert message.handshake == (value[1][0], value[1][2] if len(value[1]) > 2 else None)


def test_vector_legacy_v1_prefixes_follow_the_wrapping() -> None:
    for vector in EDN_VECTORS:
        if vector["format"].startswith("legacy-v1"):
            assert protocol.detect_format(vector["wire"]) is protocol.Format.V1
        else:
            assert protocol.detect_format(_packed(vector)) is protocol.Format.CURRENT


# ---------------------------------------------------------------------------- captured traffic

HELLO = {K("hello"): "world", K("n"): 1}
PUSHED_012 = _push([K("test/pushed"), 0], [K("test/pushed"), 1], [K("test/pushed"), 2])
ECHO_JVM = {K("from"): "jvm", K("v"): [1, 2.5, "s", K("kw"), frozenset({1})]}
ECHO_CLJS = {K("v"): [1, 2.5, "s", K("kw"), frozenset({1})], K("from"): "cljs"}

CAPTURED_MEANINGS: dict[str, Meaning] = {
    # server to client
    '[[:chsk/handshake ["cid-ws-1" nil {:hello "world", :n 1}]] nil]': _handshake(
        "cid-ws-1", HELLO
    ),
    '[[:chsk/handshake ["alice" nil {:hello "world", :n 1}]] nil]': _handshake("alice", HELLO),
    '[[:chsk/handshake ["cid-ajax-1" nil {:hello "world", :n 1}]] nil]': _handshake(
        "cid-ajax-1", HELLO
    ),
    '[[:chsk/handshake ["cid-ajax-2" nil {:hello "world", :n 1}]] nil]': _handshake(
        "cid-ajax-2", HELLO
    ),
    '[[:chsk/handshake ["cid-ws-ka" nil {:hello "world", :n 1}]] nil]': _handshake(
        "cid-ws-ka", HELLO
    ),
    '[[:chsk/handshake ["jvm-user" nil {:hello "world", :n 1}]] nil]': _handshake(
        "jvm-user", HELLO
    ),
    '[[:chsk/handshake ["cljs-ws-client" nil {:hello "world", :n 1}]] nil]': _handshake(
        "cljs-ws-client", HELLO
    ),
    '[[:chsk/handshake ["cljs-ajax-client" nil {:hello "world", :n 1}]] nil]': _handshake(
        "cljs-ajax-client", HELLO
    ),
    '[{:echo {:a 1, :b "two"}} "abc123"]': _reply(
        {K("echo"): {K("a"): 1, K("b"): "two"}}, "abc123"
    ),
    '["a-string-reply" "cb0002"]': _reply("a-string-reply", "cb0002"),
    '[[[:test/pushed {:got "x"}]] nil]': _push([K("test/pushed"), {K("got"): "x"}]),
    "[[[:test/pushed 0] [:test/pushed 1] [:test/pushed 2]] nil]": PUSHED_012,
    '["pong" "png001"]': _reply("pong", "png001"),
    "[[[:test/pushed-flushed 42]] nil]": _push([K("test/pushed-flushed"), 42]),
    '[[[:test/oob-push "hello"]] nil]': _push([K("test/oob-push"), "hello"]),
    '[{:echo [1 2 3]} "u1"]': _reply({K("echo"): [1, 2, 3]}, "u1"),
    "[:chsk/timeout nil]": Meaning(TIMEOUT, None, MessageKind.TIMEOUT),
    "[{:echo {:a 1}} nil]": Meaning({K("echo"): {K("a"): 1}}),
    "[:chsk/dummy-cb-200 nil]": Meaning(DUMMY_CB_200, None, MessageKind.DUMMY),
    '["a-string-reply" nil]': Meaning("a-string-reply"),
    '[[[:test/pushed {:got "late"}]] nil]': _push([K("test/pushed"), {K("got"): "late"}]),
    "[:chsk/ws-ping nil]": Meaning(WS_PING, None, MessageKind.PING),
    '[{:echo {:from "jvm", :v [1 2.5 "s" :kw #{1}]}} "4b8d78"]': _reply(
        {K("echo"): ECHO_JVM}, "4b8d78"
    ),
    '["pong" "0926bf"]': _reply("pong", "0926bf"),
    '[{:echo "after-reconnect"} "58d7d2"]': _reply({K("echo"): "after-reconnect"}, "58d7d2"),
    '[{:echo {:v [1 2.5 "s" :kw #{1}], :from "cljs"}} "a5bbd4"]': _reply(
        {K("echo"): ECHO_CLJS}, "a5bbd4"
    ),
    '["pong" "99b0f0"]': _reply("pong", "99b0f0"),
    '[{:echo {:v [1 2.5 "s" :kw #{1}], :from "cljs"}} nil]': Meaning({K("echo"): ECHO_CLJS}),
    # client to server
    '[[:test/echo {:a 1, :b "two"}] "abc123"]': _send(
        [K("test/echo"), {K("a"): 1, K("b"): "two"}], "abc123"
    ),
    '[[:test/reply-str] "cb0002"]': _send([K("test/reply-str")], "cb0002"),
    '[[:test/push-me "x"] nil]': _send([K("test/push-me"), "x"]),
    "[[:test/push-3] nil]": _send([K("test/push-3")]),
    '[[:chsk/ws-ping] "png001"]': _send([WS_PING], "png001"),
    "[[:chsk/ws-ping] nil]": _send([WS_PING]),
    "[[:chsk/ws-pong] nil]": _send([WS_PONG]),
    "[[:test/push-flush 42] nil]": _send([K("test/push-flush"), 42]),
    # A bare event: destructured as [value cb], so the id is the value and 1 the callback;
    # the real server handled it as [:chsk/bad-event :test/echo] with a reply-fn.
    "[:test/echo 1]": Meaning(K("test/echo"), 1),
    "[[:test/close-me] nil]": _send([K("test/close-me")]),
    '[[:test/echo [1 2 3]] "u1"]': _send([K("test/echo"), [1, 2, 3]], "u1"),
    "[[:test/echo {:a 1}] :ajax]": _send([K("test/echo"), {K("a"): 1}], AJAX_CB),
    "[[:test/noop 1] nil]": _send([K("test/noop"), 1]),
    "[[:test/reply-str] :ajax]": _send([K("test/reply-str")], AJAX_CB),
    "[[:test/no-reply 1] :ajax]": _send([K("test/no-reply"), 1], AJAX_CB),
    '[[:test/push-me "late"] nil]': _send([K("test/push-me"), "late"]),
    '[[:test/echo {:from "jvm", :v [1 2.5 "s" :kw #{1}]}] "4b8d78"]': _send(
        [K("test/echo"), ECHO_JVM], "4b8d78"
    ),
    '[[:test/no-reply 1] "fa5a9a"]': _send([K("test/no-reply"), 1], "fa5a9a"),
    '[[:chsk/ws-ping] "0926bf"]': _send([WS_PING], "0926bf"),
    '[[:test/echo "after-reconnect"] "58d7d2"]': _send(
        [K("test/echo"), "after-reconnect"], "58d7d2"
    ),
    '[[:test/echo {:v [1 2.5 "s" :kw #{1}], :from "cljs"}] "a5bbd4"]': _send(
        [K("test/echo"), ECHO_CLJS], "a5bbd4"
    ),
    '[[:test/no-reply 1] "505db4"]': _send([K("test/no-reply"), 1], "505db4"),
    '[[:chsk/ws-ping] "99b0f0"]': _send([WS_PING], "99b0f0"),
    '[[:test/echo {:v [1 2.5 "s" :kw #{1}], :from "cljs"}] :ajax]': _send(
        [K("test/echo"), ECHO_CLJS], AJAX_CB
    ),
}

#: The one captured frame that is not edn at all (the raw client sent it on purpose).
CAPTURED_INVALID = "[[:test/echo"


class Captured(NamedTuple):
    line: int
    direction: str  # "C" or "S"
    transport: str  # "ws", "http" (a response body) or "form" (a POST's ppstr)
    wire: str


_FRAME = re.compile(
    r"^(?:\[\s*[\d.]+\] conn\d+ )?(?P<dir>[CS])> (?P<what>WS op=1|HTTP-BODY|HTTP(?= \(| b))"
    r".*? (?P<literal>b['\"].*)$"
)


def _captured_frames(text: str) -> Iterator[Captured]:
    """Every edn payload of the capture: WS text frames, Sente's HTTP response bodies
    (``text/html``, unlike the plain-text rejections), and the ``ppstr`` of POST forms."""
    for number, line in enumerate(text.splitlines(), 1):
        match = _FRAME.match(line)
        if match is None:
            continue
        raw: bytes = ast.literal_eval(match["literal"])
        direction, what = match["dir"], match["what"]
        if what == "WS op=1":
            yield Captured(number, direction, "ws", raw.decode("utf-8"))
            continue
        if what == "HTTP":
            head, _, body = raw.partition(b"\r\n\r\n")
            if direction == "S" and b"Content-Type: text/html" not in head:
                continue
        else:
            body = raw
        if direction == "C":
            if body:
                form = parse_qs(body.decode("ascii"), strict_parsing=True)
                yield Captured(number, direction, "form", form["ppstr"][0])
        else:
            yield Captured(number, direction, "http", body.decode("utf-8"))


CAPTURE_TEXT = _read_protocol_file("captured-sente-1.22.txt")
CAPTURED = list(_captured_frames(CAPTURE_TEXT))
CAPTURED_EDN = [c for c in CAPTURED if c.wire != CAPTURED_INVALID]


def _captured_id(c: Captured) -> str:
    return f"L{c.line}:{c.direction}:{c.transport}"


def test_capture_parsing_finds_every_payload() -> None:
    counts = {t: sum(c.transport == t for c in CAPTURED) for t in ("ws", "http", "form")}
    assert counts == {"ws": 46, "http": 15, "form": 10}
    assert len(CAPTURED) == 71
    assert {c.wire for c in CAPTURED_EDN} == set(CAPTURED_MEANINGS)
    assert sum(c.wire == CAPTURED_INVALID for c in CAPTURED) == 1


@pytest.mark.parametrize("frame", CAPTURED_EDN, ids=_captured_id)
def test_captured_payload_decodes_to_its_meaning(frame: Captured) -> None:
    meaning = CAPTURED_MEANINGS[frame.wire]
    assert protocol.unpack(EDN, frame.wire) == (meaning.value, meaning.cb)
    if frame.direction == "C":
        assert meaning.kind is None
    elif meaning.kind is None:
        assert frame.transport == "http"  # an Ajax POST reply
    else:
        assert protocol.classify_server_message(meaning.value, meaning.cb).kind is meaning.kind


@pytest.mark.parametrize("frame", CAPTURED_EDN, ids=_captured_id)
def test_captured_payload_reencodes_byte_for_byte(frame: Captured) -> None:
    value, cb = protocol.unpack(EDN, frame.wire)
    assert protocol.pack(EDN, value, cb) == frame.wire


def test_captured_client_events_are_events_except_the_bare_one() -> None:
    for frame in CAPTURED_EDN:
        if frame.direction != "C":
            continue
        value, cb = protocol.unpack(EDN, frame.wire)
        if frame.wire == "[:test/echo 1]":
            assert protocol.as_event(value) == [protocol.BAD_EVENT, K("test/echo")]
            assert protocol.has_ajax_cb(cb)  # the server gave it a reply-fn
        else:
            assert protocol.is_event(value), frame


def test_captured_invalid_edn_raises_unpack_error_with_the_package() -> None:
    with pytest.raises(UnpackError) as caught:
        protocol.unpack(EDN, CAPTURED_INVALID)
    assert caught.value.package == CAPTURED_INVALID


def test_captured_ajax_forms_use_both_space_encodings() -> None:
    """The raw client wrote ``+`` for spaces and the ClojureScript client ``%20``."""
    assert "ppstr=%5B%5B%3Atest%2Fecho+%7B%3Aa+1%7D%5D+%3Aajax%5D" in CAPTURE_TEXT
    assert "ppstr=%5B%5B%3Atest%2Fno-reply%201%5D%20%3Aajax%5D" in CAPTURE_TEXT
    forms = {c.wire for c in CAPTURED if c.transport == "form"}
    assert {"[[:test/echo {:a 1}] :ajax]", "[[:test/no-reply 1] :ajax]"} <= forms


# What the real server handler and JVM/CLJS clients printed (Clojure pr-str): read and re-printed.
_PRINTED = re.compile(r"^(SERVER-RECV|CLIENT-RECV|STATE) (?P<edn>.*)$", re.MULTILINE)
PRINTED = [m["edn"] for m in _PRINTED.finditer(CAPTURE_TEXT)]


def test_printed_lines_are_found() -> None:
    assert len(PRINTED) == 85


@pytest.mark.parametrize("text", PRINTED, ids=range(len(PRINTED)))
def test_printed_clojure_values_reencode_byte_for_byte(text: str) -> None:
    value = EDN.unpack(text)
    assert EDN.pack(value) == text
    if text.startswith("{:event"):
        assert protocol.is_event(value[K("event")])
