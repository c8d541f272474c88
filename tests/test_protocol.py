"""flask_sente.protocol: events, callbacks, builders, the three pack formats, classification."""

from __future__ import annotations

import re
from typing import Any

import pytest

from flask_sente import protocol
from flask_sente.errors import InvalidEvent, PackError, SenteError, UnpackError
from flask_sente.packers import EdnPacker, JsonPacker
from flask_sente.protocol import (
    AJAX_CB,
    BAD_EVENT,
    CLOSED,
    DUMMY_CB_200,
    ERROR,
    HANDSHAKE,
    NIL_UID,
    TIMEOUT,
    WS_PING,
    Format,
    MessageKind,
)
from flask_sente.values import Char, Keyword, Symbol

K = Keyword
EDN = EdnPacker()
JSON = JsonPacker()
PACKERS = [pytest.param(JSON, id="json"), pytest.param(EDN, id="edn")]


# ---------------------------------------------------------------------------- special ids


def test_special_ids_are_the_api_texts_keywords() -> None:
    expected = {
        "HANDSHAKE": "chsk/handshake",
        "WS_PING": "chsk/ws-ping",
        "WS_PONG": "chsk/ws-pong",
        "STATE": "chsk/state",
        "RECV": "chsk/recv",
        "UIDPORT_OPEN": "chsk/uidport-open",
        "UIDPORT_CLOSE": "chsk/uidport-close",
        "BAD_PACKAGE": "chsk/bad-package",
        "BAD_EVENT": "chsk/bad-event",
        "TIMEOUT": "chsk/timeout",
        "CLOSED": "chsk/closed",
        "ERROR": "chsk/error",
        "DUMMY_CB_200": "chsk/dummy-cb-200",
        "CLOSE": "chsk/close",
        "NIL_UID": "sente/nil-uid",
        "ALL_USERS_WITHOUT_UID": "sente/all-users-without-uid",
        "SKIP_CSRF_CHECK": "sente/skip-CSRF-check",
        "AJAX_CB": "ajax",
    }
    for name, text in expected.items():
        value = getattr(protocol, name)
        assert type(value) is Keyword, name
        assert value == text
        assert EDN.pack(value) == ":" + text
        assert JSON.pack(value) == f'"{text}"'
    assert (0, K("ajax-cb")) == protocol.LEGACY_AJAX_CBS
    assert protocol.PONG == "pong"
    assert protocol.WRITE_LEGACY_PACK_FORMAT is False


def test_keyword_parts() -> None:
    assert (K("chsk/ws-ping").namespace, K("chsk/ws-ping").name) == ("chsk", "ws-ping")
    assert (K("ajax").namespace, K("ajax").name) == (None, "ajax")
    assert K("a/b") == "a/b" and hash(K("a/b")) == hash("a/b")


# ---------------------------------------------------------------------------- events

NSK = "namespaced keyword"
VALID_EVENTS = [
    ["chat/msg"],
    ["chat/msg", {"text": "hi"}],
    ["chat/msg", None],
    ("chat/msg", 1),
    (K("chat/msg"),),
    [K("a.b.c/d-e?"), [1, 2]],
    [K("chsk/handshake"), ["alice", None, None]],
]


@pytest.mark.parametrize("event", VALID_EVENTS, ids=repr)
def test_valid_events(event: Any) -> None:
    assert protocol.validate_event(event) is None
    assert protocol.is_event(event)
    assert protocol.assert_event(event) is event
    normal = protocol.as_event(event)
    assert type(normal) is list
    assert type(normal[0]) is Keyword
    assert normal == list(event)


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ("chat/msg", {"wrong-type": {"expected": "vector", "actual": "str"}}),
        (K("chat/msg"), {"wrong-type": {"expected": "vector", "actual": "Keyword"}}),
        (None, {"wrong-type": {"expected": "vector", "actual": "NoneType"}}),
        ({"chat/msg": 1}, {"wrong-type": {"expected": "vector", "actual": "dict"}}),
        (frozenset({"a/b"}), {"wrong-type": {"expected": "vector", "actual": "frozenset"}}),
        (42, {"wrong-type": {"expected": "vector", "actual": "int"}}),
        ([], {"wrong-length": {"expected": [1, 2], "actual": 0}}),
        (["a/b", 1, 2], {"wrong-length": {"expected": [1, 2], "actual": 3}}),
        ((), {"wrong-length": {"expected": [1, 2], "actual": 0}}),
        ([1], {"wrong-id-type": {"expected": NSK, "actual": "int"}}),
        ([None, 1], {"wrong-id-type": {"expected": NSK, "actual": "NoneType"}}),
        (
            [Symbol("a/b")],
            {"wrong-id-type": {"expected": NSK, "actual": "Symbol"}},
        ),
        ([["a/b"]], {"wrong-id-type": {"expected": NSK, "actual": "list"}}),
        (["msg"], {"unnamespaced-id": {"expected": NSK, "actual": "msg"}}),
        ([K("msg"), 1], {"unnamespaced-id": {"expected": NSK, "actual": "msg"}}),
        (["/msg"], {"unnamespaced-id": {"expected": NSK, "actual": "/msg"}}),
        (["ns/"], {"unnamespaced-id": {"expected": NSK, "actual": "ns/"}}),
        ([""], {"unnamespaced-id": {"expected": NSK, "actual": ""}}),
        ([Char("a")], {"unnamespaced-id": {"expected": NSK, "actual": "a"}}),
    ],
    ids=repr,
)
def test_invalid_events(event: Any, problem: dict[str, Any]) -> None:
    assert protocol.validate_event(event) == problem
    assert not protocol.is_event(event)
    with pytest.raises(InvalidEvent) as caught:
        protocol.assert_event(event)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, SenteError)
    assert caught.value.event is event
    assert caught.value.problem == problem
    bad = protocol.as_event(event)
    assert bad == [BAD_EVENT, event]
    assert bad[1] is event
    assert protocol.is_event(bad)


def test_as_event_keywordizes_the_id_for_edn() -> None:
    assert EDN.pack(protocol.as_event(("chat/msg", {"a": 1}))) == "[:chat/msg {:a 1}]"
    assert EDN.pack(protocol.as_event(["x"])) == '[:chsk/bad-event ["x"]]'
    assert JSON.pack(protocol.as_event(["x"])) == '["chsk/bad-event",["x"]]'


def test_event_parts() -> None:
    assert protocol.event_id([K("a/b"), 1]) == "a/b"
    assert type(protocol.event_id([K("a/b"), 1])) is str
    assert protocol.event_data([K("a/b"), 1]) == 1
    assert protocol.event_data(["a/b"]) is None


# ---------------------------------------------------------------------------- callbacks


@pytest.mark.parametrize("reply", [TIMEOUT, CLOSED, ERROR, "chsk/timeout", "chsk/closed"])
def test_cb_error_replies(reply: Any) -> None:
    assert protocol.cb_error(reply)
    assert not protocol.cb_success(reply)


@pytest.mark.parametrize(
    "reply",
    [None, False, 0, "", "pong", "chsk/other", K("chsk/ws-ping"), [TIMEOUT], {TIMEOUT: 1}, {}],
    ids=repr,
)
def test_cb_success_replies(reply: Any) -> None:
    """Replies need not be events: any value, nil included, is a success."""
    assert protocol.cb_success(reply)
    assert not protocol.cb_error(reply)


def test_new_cb_uuid_is_six_lowercase_hex_characters() -> None:
    ids = {protocol.new_cb_uuid() for _ in range(200)}
    assert all(re.fullmatch(r"[0-9a-f]{6}", cb) for cb in ids)
    assert len(ids) > 190


@pytest.mark.parametrize("cb", [AJAX_CB, 0, K("ajax-cb"), "3f2e1d", True, 1])
def test_ajax_cb_markers_ask_for_a_reply(cb: Any) -> None:
    assert protocol.has_ajax_cb(cb)


@pytest.mark.parametrize("cb", [None, False])
def test_no_ajax_cb(cb: Any) -> None:
    assert not protocol.has_ajax_cb(cb)


# ---------------------------------------------------------------------------- builders


def test_handshake_event() -> None:
    assert protocol.handshake_event("alice") == [HANDSHAKE, ["alice", None, None]]
    assert protocol.handshake_event(None) == [HANDSHAKE, [NIL_UID, None, None]]
    assert protocol.handshake_event(7, {"a": 1}) == [HANDSHAKE, [7, None, {"a": 1}]]
    wire = protocol.pack(EDN, protocol.handshake_event("alice", {"hello": "world", "n": 1}))
    assert wire == '[[:chsk/handshake ["alice" nil {:hello "world", :n 1}]] nil]'
    wire = protocol.pack(JSON, protocol.handshake_event(None))
    assert wire == '[["chsk/handshake",["sente/nil-uid",null,null]],null]'


def test_push_batch_is_always_a_vector_of_events() -> None:
    batch = protocol.push_batch([("a/x", 1), ["a/y", None], [K("a/z"), {"n": 3}]])
    assert protocol.pack(EDN, batch) == "[[[:a/x 1] [:a/y nil] [:a/z {:n 3}]] nil]"
    assert protocol.pack(JSON, batch) == '[[["a/x",1],["a/y",null],["a/z",{"n":3}]],null]'
    assert protocol.pack(EDN, protocol.push_batch([["app/refresh"]])) == "[[[:app/refresh]] nil]"
    assert protocol.push_batch([]) == []


@pytest.mark.parametrize("events", [["a/b", 1], [["a/b"], ["nope"]], [[]]], ids=repr)
def test_push_batch_refuses_what_is_not_an_event(events: Any) -> None:
    with pytest.raises(InvalidEvent):
        protocol.push_batch(events)


def test_ajax_post_value() -> None:
    assert protocol.ajax_post_value(("todo/get", {"id": 42}), True) == (
        [K("todo/get"), {"id": 42}],
        AJAX_CB,
    )
    value, cb = protocol.ajax_post_value(["todo/get", {"id": 42}], True)
    assert protocol.pack(EDN, value, cb) == "[[:todo/get {:id 42}] :ajax]"
    value, cb = protocol.ajax_post_value(["chat/send", {"text": "hi"}], False)
    assert protocol.pack(EDN, value, cb) == '[[:chat/send {:text "hi"}] nil]'


def test_server_ping_and_replies_as_sente_writes_them() -> None:
    assert protocol.pack(EDN, WS_PING) == "[:chsk/ws-ping nil]"
    assert protocol.pack(EDN, protocol.PONG, "a1b2c3") == '["pong" "a1b2c3"]'
    assert protocol.pack(EDN, DUMMY_CB_200) == "[:chsk/dummy-cb-200 nil]"
    assert protocol.pack(EDN, TIMEOUT) == "[:chsk/timeout nil]"
    assert protocol.pack(JSON, WS_PING) == '["chsk/ws-ping",null]'


# ---------------------------------------------------------------------------- pack formats


@pytest.mark.parametrize(
    ("value", "cb", "wrap", "wire"),
    [
        ([K("a/b"), 1], None, None, "-[:a/b 1]"),
        ([K("a/b"), 1], "3f2e1d", None, '+[[:a/b 1] "3f2e1d"]'),
        ([K("a/b"), 1], None, True, "+[[:a/b 1]]"),
        ([K("a/b"), 1], 0, None, "+[[:a/b 1] 0]"),
        (WS_PING, None, False, "-:chsk/ws-ping"),
    ],
)
def test_pack_legacy_v1(value: Any, cb: Any, wrap: bool | None, wire: str) -> None:
    assert protocol.pack(EDN, value, cb, wrap=wrap, legacy=True) == wire
    expected_cb = cb if wire.startswith("+") else None
    assert protocol.unpack(EDN, wire) == (value, expected_cb)
    assert protocol.detect_format(wire) is Format.V1


def test_pack_current_ignores_wrap() -> None:
    assert protocol.pack(EDN, [K("a/b")], wrap=False) == "[[:a/b] nil]"
    assert protocol.pack(EDN, [K("a/b")], wrap=True, legacy=False) == "[[:a/b] nil]"


def test_the_module_default_chooses_the_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "WRITE_LEGACY_PACK_FORMAT", True)
    assert protocol.pack(EDN, [K("a/b")]) == "-[:a/b]"
    assert protocol.pack(JSON, [K("a/b")], "cb0001") == '+[["a/b"],"cb0001"]'
    assert protocol.pack(EDN, [K("a/b")], legacy=False) == "[[:a/b] nil]"
    monkeypatch.setattr(protocol, "WRITE_LEGACY_PACK_FORMAT", False)
    assert protocol.pack(EDN, [K("a/b")]) == "[[:a/b] nil]"
    assert protocol.pack(EDN, [K("a/b")], legacy=True) == "-[:a/b]"


class _BinaryPacker:
    binary = True

    def pack(self, value: Any) -> bytes:
        return JSON.pack(value).encode()

    def unpack(self, data: str | bytes) -> Any:
        return JSON.unpack(data)


def test_legacy_v1_is_text_only() -> None:
    with pytest.raises(PackError):
        protocol.pack(_BinaryPacker(), [K("a/b")], legacy=True)
    wire = protocol.pack(_BinaryPacker(), ["a/b"], "cb0001")
    assert wire == b'[["a/b"],"cb0001"]'
    assert protocol.unpack(_BinaryPacker(), wire) == (["a/b"], "cb0001")
    with pytest.raises(UnpackError):  # no v1 prefix on bytes
        protocol.unpack(_BinaryPacker(), b'+["x"]')


def test_detect_format() -> None:
    assert protocol.detect_format('+["pong" "a1b2c3"]') is Format.V1
    assert protocol.detect_format("-:chsk/ws-ping") is Format.V1
    assert protocol.detect_format("[:chsk/ws-ping nil]") is Format.CURRENT
    assert protocol.detect_format("[:chsk/ws-ping]") is Format.CURRENT  # v2 reads the same
    assert protocol.detect_format(b"+[1]") is Format.CURRENT  # v1 was text only
    assert protocol.detect_format("") is Format.CURRENT


@pytest.mark.parametrize("packer", PACKERS)
def test_unpack_reads_every_wrapper_shape(packer: Any) -> None:
    def wire(value: Any) -> str:
        return str(packer.pack(value))

    assert protocol.unpack(packer, wire([[K("a/b"), 1], None])) == ([K("a/b"), 1], None)
    assert protocol.unpack(packer, wire([[K("a/b"), 1], "cb0001"])) == ([K("a/b"), 1], "cb0001")
    assert protocol.unpack(packer, wire([[K("a/b")]])) == ([K("a/b")], None)  # v2, no cb
    assert protocol.unpack(packer, wire([])) == (None, None)
    assert protocol.unpack(packer, wire([1, 2, 3])) == (1, 2)  # destructuring ignores the rest
    assert protocol.unpack(packer, wire(None)) == (None, None)  # nil reads as [nil nil]
    assert protocol.unpack(packer, "-" + wire(K("a/b"))) == (K("a/b"), None)
    assert protocol.unpack(packer, "+" + wire([1])) == (1, None)
    assert protocol.unpack(packer, wire([1, 2]).encode()) == (1, 2)


EMPTY_EDN = ("", "+", "-")
MALFORMED = [
    # well-formed, but not a [value cb] wrapper
    ":test/echo",
    '"test/echo"',
    "42",
    "{:a 1}",
    '{"a":1}',
    "true",
    "+42",
    '+"x"',
    # garbage
    "[[:test/echo",
    '[["test/echo"',
    "",
    "+",
    "-",
    "]",
    "#foo 1",
    "\x00",
    "[1 2",
    b"\xff\xfe",
    b"[1",
    "[" * 3000,
]


@pytest.mark.parametrize(
    ("packer", "package"),
    [
        pytest.param(packer, package, id=f"{packer.name}-{package!r:.40}")
        for packer in (JSON, EDN)
        for package in MALFORMED
        if not (packer is EDN and package in EMPTY_EDN)
    ],
)
def test_unpack_malformed_raises_unpack_error_carrying_the_package(
    packer: Any, package: str | bytes
) -> None:
    with pytest.raises(UnpackError) as caught:
        protocol.unpack(packer, package)
    assert caught.value.package is package
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("package", EMPTY_EDN)
def test_empty_edn_is_nil(package: str) -> None:
    assert protocol.unpack(EDN, package) == (None, None)


def test_unpack_wraps_any_packer_failure() -> None:
    class Broken:
        binary = False

        def pack(self, value: Any) -> str:
            return "x"

        def unpack(self, data: str | bytes) -> Any:
            raise KeyError(data)

    with pytest.raises(UnpackError) as caught:
        protocol.unpack(Broken(), "[1 2]")
    assert caught.value.package == "[1 2]"
    assert isinstance(caught.value.__cause__, KeyError)


# ---------------------------------------------------------------------------- classification


@pytest.mark.parametrize("packer", PACKERS)
@pytest.mark.parametrize(
    ("value", "cb", "kind"),
    [
        (protocol.handshake_event("alice", {"a": 1}), None, MessageKind.HANDSHAKE),
        ([HANDSHAKE, ["alice", None]], None, MessageKind.HANDSHAKE),
        (WS_PING, None, MessageKind.PING),
        ("pong", "a1b2c3", MessageKind.REPLY),
        (None, "a1b2c3", MessageKind.REPLY),
        ({"id": 42}, "3f2e1d", MessageKind.REPLY),
        ([[K("a/x"), 1], [K("a/y")]], None, MessageKind.PUSH),
        ([], None, MessageKind.PUSH),
        (TIMEOUT, None, MessageKind.TIMEOUT),
        (DUMMY_CB_200, None, MessageKind.DUMMY),
        ("hello", None, MessageKind.INVALID),
        (42, None, MessageKind.INVALID),
        (None, None, MessageKind.INVALID),
    ],
    ids=repr,
)
def test_classify_server_message(packer: Any, value: Any, cb: Any, kind: MessageKind) -> None:
    """The same kind straight from Python and after a trip through either packer."""
    assert protocol.classify_server_message(value, cb).kind is kind
    read_value, read_cb = protocol.unpack(packer, protocol.pack(packer, value, cb))
    message = protocol.classify_server_message(read_value, read_cb)
    assert message.kind is kind
    assert message.cb == (cb if kind is MessageKind.REPLY else None)


def test_classified_handshake_and_push() -> None:
    message = protocol.classify_server_message(protocol.handshake_event("alice", {"a": 1}), None)
    assert message.handshake == ("alice", {"a": 1})
    legacy = protocol.classify_server_message([HANDSHAKE, ["alice", None]], None)
    assert legacy.handshake == ("alice", None)
    assert protocol.classify_server_message([HANDSHAKE], None).handshake == (None, None)
    assert message.events == []
    push = protocol.classify_server_message([("a/x", 1), ["nope"], "x"], None)
    assert push.events == [[K("a/x"), 1], [BAD_EVENT, ["nope"]], [BAD_EVENT, "x"]]
    assert type(push.events[0][0]) is Keyword


def test_only_the_bare_id_is_the_server_ping() -> None:
    """The server pings with the bare id; ``[:chsk/ws-ping]`` as a value is an event."""
    value, cb = protocol.unpack(EDN, "[:chsk/ws-ping]")  # a v1.18-1.20 server ping
    assert protocol.classify_server_message(value, cb).kind is MessageKind.PING
    value, cb = protocol.unpack(EDN, "[[:chsk/ws-ping] nil]")  # a client's event
    assert protocol.classify_server_message(value, cb).kind is not MessageKind.PING
