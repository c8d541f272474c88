"""flask_sente.transit: Sente's transit packer, against the real-Sente transcripts and the spec.

Every transit payload recorded between a real Sente ClojureScript client (transit-js) and a
real Sente server (transit-java) is read and written back byte for byte: the tags, the map
forms, the escapes and the per-message cache all come out as those libraries wrote them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import uuid
from decimal import Decimal
from fractions import Fraction
from typing import Any
from urllib.parse import parse_qs

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_sente import protocol, transit
from flask_sente.errors import PackError, UnpackError
from flask_sente.packers import GzipPacker, TransitPacker, get_packer
from flask_sente.transit_reader import MAX_DEPTH
from flask_sente.values import (
    Char,
    ImmutableDict,
    ImmutableVector,
    Keyword,
    StringKey,
    Symbol,
    TaggedValue,
)
from tests import transcripts
from tests.test_edn import edn_values
from tests.test_edn_reader import same

K = Keyword
UTC = dt.UTC


def payloads() -> list[tuple[str, str]]:
    """Every transit payload of both transcripts: WS frames, Ajax bodies and ppstr fields."""
    found = []
    for name in ("cljs-ws-transit", "cljs-ajax-transit"):
        for record in transcripts.load(name).records:
            if record.kind not in ("ws", "http") or record.opcode == "close" or not record.body:
                continue
            text = record.text
            if text.startswith("udt="):
                text = parse_qs(text)["ppstr"][0]
            if text.startswith("["):
                found.append((f"{name} {record.direction} {record.t}", text))
    return found


PAYLOADS = payloads()


def test_the_transcripts_hold_the_payloads() -> None:
    assert len(PAYLOADS) == 42
    assert len({text for _, text in PAYLOADS}) >= 15


@pytest.mark.parametrize(("where", "text"), PAYLOADS, ids=[w for w, _ in PAYLOADS])
def test_every_recorded_payload_is_written_back_byte_for_byte(where: str, text: str) -> None:
    assert transit.dumps(transit.loads(text)) == text
    assert TransitPacker().pack(TransitPacker().unpack(text)) == text


RICH = next(text for _, text in PAYLOADS if text.startswith('[["~:test/echo",["^ ","~:neg"'))


def test_the_rich_payload_reads_as_the_edn_mapping() -> None:
    (event, cb) = transit.loads(RICH)
    assert cb == "f4af85"
    assert event[0] == K("test/echo")
    data = event[1]
    assert data == {
        "neg": -7,
        "long": 9007199254740993,
        "str-caret": "^y",
        "vec": [],
        "big": 12345678901234567890,
        "m": {"str-key": 1, 7: "int-key"},
        "s": "x y",
        "k": K("foo/bar"),
        "cm": {(1, 2): "vec-key"},
        "rows": [{"kk": K("foo/bar"), "sym": Symbol("my/sym")}] * 2,
        "str-tilde": "~x",
        "nil": None,
        "f": 1.5,
        "t": dt.datetime(2020, 1, 1, tzinfo=UTC),
        "bool": True,
        "set": frozenset({1, 2}),
        "a": 1,
        "u": uuid.UUID(int=1),
    }
    assert all(type(k) is Keyword for k in data)
    assert [type(k) for k in data["m"]] == [StringKey, int]
    assert type(next(iter(data["cm"]))) is ImmutableVector
    assert type(data["k"]) is Keyword and type(data["t"]) is dt.datetime


def test_a_python_reply_is_written_as_the_sente_server_wrote_it() -> None:
    """The server's echo of the rich payload, built in Python as a handler builds it."""
    (event, cb) = transit.loads(RICH)
    reply = str(protocol.pack(TransitPacker(), {"echo": event[1]}, cb))
    recorded = next(
        text for _, text in PAYLOADS if text.startswith('[["^ ","~:echo",["^ ","~:neg"')
    )
    assert reply == recorded


# ---------------------------------------------------------------------------- the format


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, '["~#\'",null]'),
        (K("hello"), '["~#\'","~:hello"]'),
        ("~eight", '["~#\'","~~eight"]'),
        (
            [1, 2.5, True, None, "five", K("six"), Symbol("seven")],
            '[1,2.5,true,null,"five","~:six","~$seven"]',
        ),
        (["", "a", "~", "~a", "^", "^a", "`a", "#a"], '["","a","~~","~~a","~^","~^a","~`a","#a"]'),
        ([2**53 - 1, 2**53, -(2**53), 2**63 - 1, 2**63, -(2**63) - 1], None),
        ([0.0, -0.0, 1e21, 1e-5, 1e7, math.inf, -math.inf], None),
        ([uuid.UUID(int=1), dt.datetime(2000, 1, 1, 12, tzinfo=UTC)], None),
        ([Decimal("1.50"), Char("x"), b"\x00\xff", Fraction(1, 3), Fraction(4, 2)], None),
        ({"a": 1, K("b"): "x", "c d": [], 7: None, None: 1, True: 2, 1.5: 3}, None),
        ({(1, 2): "v", "s": 1}, '["~#cmap",[["~#list",[1,2]],"v","~:s",1]]'),
        ({ImmutableVector([1]): 1}, '["~#cmap",[[1],1]]'),
        ((), '["~#list",[]]'),
        (frozenset({K("abcd")}), '["~#set",["~:abcd"]]'),
        (TaggedValue("r", "http://example.com"), '["~#\'","~rhttp://example.com"]'),
        (TaggedValue("point", ImmutableVector([1, 2])), '["~#point",[1,2]]'),
        ("\x01\n\u2028é", '["~#\'","\\u0001\\n\u2028é"]'),
    ],
)
def test_writes_the_spec_forms(value: Any, text: str | None) -> None:
    written = transit.dumps(value)
    if text is not None:
        assert written == text
    assert same_value(transit.loads(written), value)


def same_value(a: Any, b: Any) -> bool:
    if isinstance(b, float) and math.isnan(b):
        return isinstance(a, float) and math.isnan(a)
    if isinstance(b, Fraction) and b.denominator == 1:
        return a == b and type(a) is int
    return bool(a == b)


def test_numbers_and_scalars_spell_as_transit_java_spells_them() -> None:
    assert transit.dumps([2**53 - 1, 2**53, 2**63, -7]) == (
        '[9007199254740991,"~i9007199254740992","~n9223372036854775808",-7]'
    )
    assert transit.dumps([1e21, 1e-5, 1e7, 0.001, -0.0, math.nan]) == (
        '[1.0E21,1.0E-5,1.0E7,0.001,-0.0,"~zNaN"]'
    )
    assert transit.dumps([dt.datetime(2020, 1, 1), Decimal("1.5"), b"hi", Char("c")]) == (
        '["~m1577836800000","~f1.5","~baGk=","~cc"]'
    )
    assert transit.dumps([Fraction(1, 3)]) == '[["~#ratio",["~n1","~n3"]]]'
    assert transit.dumps({7: 1, True: 2, None: 3, 1.5: 4, K("k"): 5, "str": 6}) == (
        '["^ ","~i7",1,"~?t",2,"~_",3,"~d1.5",4,"~:k",5,"~:str",6]'
    )


def test_keywordize_keys_writes_plain_string_keys_as_keywords() -> None:
    assert transit.dumps({"id": 1, "a b": 2}) == '["^ ","~:id",1,"a b",2]'
    assert transit.dumps({"id": 1}, keywordize_keys=False) == '["^ ","id",1]'
    assert transit.dumps({StringKey("id"): 1}) == '["^ ","id",1]'
    assert transit.dumps({"~x": 1, "^y": 2}) == '["^ ","~~x",1,"~^y",2]'


def test_the_cache_codes_count_past_44_and_restart_after_1936() -> None:
    keys = [K(f"key{i:04d}") for i in range(1936)]
    value = [keys, keys, [K("extra"), K("key0000"), K("extra")]]
    text = transit.dumps(value)
    first, second, third = json.loads(text)
    assert first == [f"~:key{i:04d}" for i in range(1936)]
    assert second[:2] == ["^0", "^1"]
    assert second[43:46] == ["^[", "^10", "^11"]
    assert second[-1] == "^[["
    assert third == ["~:extra", "~:key0000", "^0"]  # the full cache started again
    assert transit.loads(text) == value


def test_map_keys_of_four_characters_or_more_are_cached() -> None:
    text = transit.dumps([{"abc": 1, "abcd": 2}, {"abc": 3, "abcd": 4}], keywordize_keys=False)
    assert text == '[["^ ","abc",1,"abcd",2],["^ ","abc",3,"^0",4]]'
    assert transit.dumps([{K("abc"): K("abcd")}, {K("abc"): K("abcd")}]) == (
        '[["^ ","~:abc","~:abcd"],["^ ","^0","^1"]]'
    )


def test_each_message_has_its_own_cache() -> None:
    packer = TransitPacker()
    first = packer.pack([K("chsk/handshake"), K("chsk/handshake")])
    assert first == '["~:chsk/handshake","^0"]'
    assert packer.pack([K("chsk/handshake")]) == '["~:chsk/handshake"]'


def test_verbose_writes_objects_iso_instants_and_no_cache() -> None:
    value = [{K("hello"): "world", K("n"): 1}, frozenset({1}), {ImmutableVector([1, 2]): "v"}]
    value += [K("a/b"), K("a/b"), dt.datetime(2020, 1, 1, tzinfo=UTC)]
    text = transit.dumps(value, verbose=True)
    assert text == (
        '[{"~:hello":"world","~:n":1},{"~#set":[1]},{"~#cmap":[[1,2],"v"]},"~:a/b","~:a/b",'
        '"~t2020-01-01T00:00:00.000Z"]'
    )
    assert transit.loads(text) == value
    assert transit.dumps(K("x"), verbose=True) == '{"~#\'":"~:x"}'
    assert TransitPacker(verbose=True).pack({"a": 1}) == '{"~:a":1}'


def test_reads_what_sente_writes_verbose() -> None:
    """T6: the handshake and a push batch from a :json-verbose Sente server."""
    handshake = '[["~:chsk/handshake",["u-1",null,{"~:hello":"world","~:n":1}]],null]'
    assert transit.loads(handshake) == [
        [K("chsk/handshake"), ["u-1", None, {"hello": "world", "n": 1}]],
        None,
    ]
    batch = '[[["~:test/pushed",0],["~:test/pushed",1],["~:test/pushed",2]],null]'
    assert transit.loads(batch) == [[[K("test/pushed"), n] for n in range(3)], None]
    assert transit.loads('["~t2020-01-01T00:00:00.000Z"]') == [dt.datetime(2020, 1, 1, tzinfo=UTC)]


def test_reads_unknown_tags_as_tagged_values_and_writes_them_back() -> None:
    text = '["~rhttp://x.y/","~Unrecognized",["~#point",[1,2]],["^ ","~rhttp://z/",1]]'
    value = transit.loads(text)
    assert value == [
        TaggedValue("r", "http://x.y/"),
        TaggedValue("U", "nrecognized"),
        TaggedValue("point", ImmutableVector([1, 2])),
        {TaggedValue("r", "http://z/"): 1},
    ]
    assert transit.dumps(value) == text


def test_the_transit_packer_by_name_and_wrapped() -> None:
    assert repr(get_packer("transit")) == "TransitPacker(keywordize_keys=True, verbose=False)"
    gzip = get_packer("gzip+transit")
    assert isinstance(gzip, GzipPacker) and gzip.name == "gzip+transit"
    assert gzip.unpack(gzip.pack([K("a/b"), {"x": 1}])) == [K("a/b"), {"x": 1}]
    with pytest.raises(PackError, match="transit cannot write a date"):
        TransitPacker().pack([dt.date(2020, 1, 1)])
    with pytest.raises(PackError):
        TransitPacker().pack([object()])


# ---------------------------------------------------------------------------- round trips


@settings(max_examples=300, deadline=None)
@given(edn_values, st.booleans())
def test_every_mapped_value_round_trips(value: Any, verbose: bool) -> None:
    text = transit.dumps(value, verbose=verbose)
    back = transit.loads(text)
    assert same(_plain(back), _plain(_expected(value))), text
    if "~#set" not in text:  # a Python set's order is its own, as a Clojure set's is
        assert transit.dumps(back, verbose=verbose) == text


def _expected(x: Any) -> Any:
    """What transit reads back: whole ratios are ints, as in the msgpack packer."""
    if isinstance(x, Fraction) and x.denominator == 1:
        return x.numerator
    if isinstance(x, list):
        return [_expected(v) for v in x]
    if isinstance(x, tuple):
        return tuple(_expected(v) for v in x)
    if isinstance(x, dict):
        return {_expected(k): _expected(v) for k, v in x.items()}
    if isinstance(x, frozenset):
        return frozenset(map(_expected, x))
    return x


def _plain(x: Any) -> Any:
    """Keys and members compared by value: StringKey as str, sets and keys by equality."""
    if isinstance(x, dict | ImmutableDict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_plain(v) for v in x]
    if isinstance(x, tuple):
        return tuple(_plain(v) for v in x)
    if type(x) is StringKey:
        return str(x)
    return x


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[1,", "Expecting value"),
        ('["^ ","~:a"]', "key without a value"),
        ('["^0"]', "refers to nothing"),
        ('["~#set",1]', "holds an array"),
        ('["~#set",[1,1]]', "duplicate set members"),
        ('["^ ","~:a",1,"~:a",2]', "duplicate map keys"),
        ('["^ ","~i1",1,"~?t",2]', "duplicate map keys"),
        ('["~#cmap",[1]]', "key without a value"),
        ('["~#ratio",[1,0]]', "Fraction"),
        ('["~#ratio",["a","b"]]', "two integers"),
        ('["~u12"]', "badly formed"),
        ('["~m1x"]', "not an integer"),
        ('["~cab"]', "one character"),
        ('["~?x"]', "neither"),
        ('["~zinf"]', "none of"),
        ('["~bnot base64!"]', "base64"),
        ('["~t2020-13-01T00:00:00Z"]', "month"),
        ('["~^"]', None),
        ('["^ ","~#set",1]', "a tag cannot be a map key"),
        ("[" * 300 + "]" * 300, f"nest more than {MAX_DEPTH} deep"),
        ("[" * 100_000, "nest"),
        (b"\xff", "UTF-8"),
    ],
)
def test_bad_transit_raises_unpack_error_saying_what(text: str | bytes, says: str | None) -> None:
    if says is None:
        assert transit.loads(text) == ["^"]
        return
    with pytest.raises(UnpackError) as caught:
        transit.loads(text)
    assert says in str(caught.value)
    assert caught.value.package is text


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from('[]{}",:^~#$ 0123456789.-+eEtfnul?_zimdcbu'), max_size=60))
def test_garbage_raises_unpack_error_or_reads(text: str) -> None:
    with contextlib.suppress(UnpackError):
        transit.loads(text)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([text for _, text in PAYLOADS]), st.data())
def test_damaged_payloads_raise_unpack_error_or_read(text: str, data: st.DataObject) -> None:
    at = data.draw(st.integers(0, len(text)))
    cut = data.draw(st.integers(0, 4))
    insert = data.draw(st.sampled_from(["", "[", "]", '"', "^", "~", "^1", '"~#set",', "{", ","]))
    with contextlib.suppress(UnpackError):
        transit.loads(text[:at] + insert + text[at + cut :])


def test_long_keywords_are_not_kept_in_the_cache() -> None:
    from flask_sente import transit_reader

    long_name = "k" * 1000
    assert transit.loads(f'["~:{long_name}"]') == [K(long_name)]
    assert f"~:{long_name}" not in transit_reader._keywords
    assert transit.dumps({long_name: 1}) == f'["^ ","~:{long_name}",1]'
