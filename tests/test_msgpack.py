"""flask_sente.msgpack: Sente's MessagePack dialect, byte for byte, and the msgpack packer."""

from __future__ import annotations

import array
import datetime as dt
import json
import math
import struct
import subprocess
import sys
import uuid
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import msgpack as stdmsgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_sente import protocol
from flask_sente.errors import ConfigError, PackError, UnpackError
from flask_sente.msgpack import dumps, loads
from flask_sente.packers import MsgpackPacker, get_packer
from flask_sente.values import Char, ImmutableDict, Keyword, StringKey, Symbol
from tests.support import PROTOCOL_DIR

VECTORS = PROTOCOL_DIR / "vectors.json"
K = Keyword


def h(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text.replace(" ", ""))


# ---------------------------------------------------------------------------- golden vectors


def _vectors() -> list[dict[str, Any]]:
    return [v for v in json.loads(VECTORS.read_text()) if v["packer"] == "msgpack"]


@pytest.mark.parametrize("vector", _vectors(), ids=lambda v: v["description"][:50])
def test_sente_vectors_read_and_write_back_byte_for_byte(vector: dict[str, Any]) -> None:
    wire = bytes.fromhex(vector["wire"])
    packer = MsgpackPacker()
    value, cb = protocol.unpack(packer, wire)
    assert protocol.pack(packer, value, cb) == wire


def test_sente_vectors_mean_what_they_say() -> None:
    handshake, ping, send = (bytes.fromhex(v["wire"]) for v in _vectors())
    assert loads(handshake) == [[K("chsk/handshake"), ["alice", None, None]], None]
    assert loads(ping) == [K("chsk/ws-ping"), None]
    value = loads(send)
    assert value == [[K("a/bc"), {"k": 1, "m": {"k": 2}}], "3f2e1d"]
    assert all(type(k) is Keyword for k in [*value[0][1], *value[0][1]["m"]])
    assert dumps([["a/bc", {"k": 1, "m": {"k": 2}}], "3f2e1d"]) != send  # "a/bc" is a string
    assert dumps([[K("a/bc"), {"k": 1, "m": {"k": 2}}], "3f2e1d"]) == send


# ---------------------------------------------------------------------------- layouts


@pytest.mark.parametrize(
    ("n", "wire"),
    [
        (0, "00"),
        (127, "7f"),
        (128, "cc80"),
        (255, "ccff"),
        (256, "cd0100"),
        (65535, "cdffff"),
        (65536, "ce00010000"),
        (0xFFFFFFFF, "ceffffffff"),
        (0x100000000, "d30000000100000000"),
        (1700000000123, "d30000018bcfe5687b"),
        (2**63 - 1, "d37fffffffffffffff"),
        (2**63, "cf8000000000000000"),
        (2**64 - 1, "cfffffffffffffffff"),
        (-1, "ff"),
        (-32, "e0"),
        (-33, "d0df"),
        (-128, "d080"),
        (-129, "d1ff7f"),
        (-32768, "d18000"),
        (-32769, "d2ffff7fff"),
        (-(2**31), "d280000000"),
        (-(2**31) - 1, "d3ffffffff7fffffff"),
        (-(2**63), "d38000000000000000"),
    ],
)
def test_ints_use_the_smallest_encoding_and_int64_above_uint32(n: int, wire: str) -> None:
    assert dumps(n).hex() == wire
    back = loads(h(wire))
    assert back == n and type(back) is int


@pytest.mark.parametrize("n", [2**64, -(2**63) - 1, 10**30])
def test_ints_past_64_bits_cannot_be_written(n: int) -> None:
    with pytest.raises(PackError, match="2\\*\\*63"):
        dumps(n)


def test_floats_are_doubles_and_float32_reads() -> None:
    assert dumps(1.5) == b"\xcb" + struct.pack(">d", 1.5)
    assert dumps(-0.0) == b"\xcb" + struct.pack(">d", -0.0)
    assert loads(b"\xca" + struct.pack(">f", 1.5)) == 1.5
    assert math.isnan(loads(dumps(math.nan)))
    assert loads(dumps(math.inf)) == math.inf
    assert dumps(Decimal("2.5")) == dumps(2.5)  # as Sente writes a BigDecimal


def test_nil_booleans_and_containers() -> None:
    assert dumps([None, True, False]) == h("93 c0 c3 c2")
    assert dumps((1, 2)) == h("92 01 02")
    assert dumps({}) == h("80")
    assert loads(h("93 c0 c3 c2")) == [None, True, False]


@pytest.mark.parametrize(
    ("size", "head"),
    [(0, "a0"), (31, "bf"), (32, "d920"), (255, "d9ff"), (256, "da0100"), (65536, "db00010000")],
)
def test_string_headers(size: int, head: str) -> None:
    text = "x" * size
    assert dumps(text) == h(head) + text.encode()
    assert loads(dumps(text)) == text


def test_strings_are_utf8() -> None:
    assert dumps("é€😀") == h("a9") + "é€😀".encode()


@pytest.mark.parametrize(
    ("size", "head"), [(0, "c400"), (255, "c4ff"), (256, "c50100"), (65536, "c600010000")]
)
def test_bytes_are_bin(size: int, head: str) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert dumps(data) == h(head) + data
    back = loads(dumps(data))
    assert back == data and type(back) is bytes
    assert dumps(bytearray(data)) == dumps(memoryview(data)) == dumps(data)


@pytest.mark.parametrize(
    ("size", "head"), [(15, "9f"), (16, "dc0010"), (65535, "dcffff"), (65536, "dd00010000")]
)
def test_array_headers(size: int, head: str) -> None:
    assert dumps([None] * size) == h(head) + b"\xc0" * size
    assert loads(dumps([None] * size)) == [None] * size


@pytest.mark.parametrize(("size", "head"), [(15, "8f"), (16, "de0010"), (65536, "df00010000")])
def test_map_headers(size: int, head: str) -> None:
    value = {i: None for i in range(size)}
    assert dumps(value).startswith(h(head))
    assert loads(dumps(value)) == value


@pytest.mark.parametrize(
    ("size", "head"),
    [
        (1, "d4"),
        (2, "d5"),
        (3, "c703"),
        (4, "d6"),
        (8, "d7"),
        (16, "d8"),
        (17, "c711"),
        (255, "c7ff"),
        (256, "c80100"),
        (65536, "c900010000"),
    ],
)
def test_extension_headers_use_fixext_for_1_2_4_8_16_bytes(size: int, head: str) -> None:
    name = "k" * size
    assert dumps(K(name)) == h(head) + b"\x00" + name.encode()
    assert loads(dumps(K(name))) == K(name)
    other = stdmsgpack.ExtType(42, b"z" * size)
    assert dumps(other) == h(head) + b"\x2a" + other.data
    assert loads(dumps(other)) == other


# ---------------------------------------------------------------------------- extension types


def test_keyword_symbol_char() -> None:
    assert dumps(K("chsk/handshake")) == h("c7 0e 00") + b"chsk/handshake"
    assert dumps(Symbol("ns/s")) == h("d6 01") + b"ns/s"
    assert dumps(Symbol("sym")) == h("c7 03 01") + b"sym"
    assert dumps(Char("c")) == h("d4 02 63")
    assert dumps(Char("€")) == h("c7 03 02") + "€".encode()
    for value in (K("a/b"), Symbol("a/b"), Char("x")):
        back = loads(dumps(value))
        assert back == value and type(back) is type(value)


def test_ratio() -> None:
    assert dumps(Fraction(1, 3)) == h("d5 03 01 03")
    assert dumps(Fraction(-7, 2**40)) == h("c7 0a 03 f9 d3 0000010000000000")
    assert dumps(Fraction(4, 2)) == h("02")  # a whole ratio is an int, as in Clojure
    assert loads(h("d5 03 01 03")) == Fraction(1, 3)
    assert loads(h("d5 03 04 02")) == 2 and type(loads(h("d5 03 04 02"))) is int


def test_set() -> None:
    assert dumps({1}) == h("d5 04 91 01")
    assert dumps(frozenset()) == h("d4 04 90")
    back = loads(dumps({1, "a", K("k"), (1, 2), frozenset({3})}))
    assert back == frozenset({1, "a", K("k"), (1, 2), frozenset({3})})
    assert type(back) is frozenset


def test_uuid() -> None:
    u = uuid.UUID("0f8e4c2a-7d1b-4c3e-9a5f-1b2c3d4e5f60")
    assert dumps(u) == h("c7 24 09") + str(u).encode()
    assert loads(dumps(u)) == u


@pytest.mark.parametrize(
    ("when", "wire"),
    [
        (dt.datetime(2024, 1, 2, 3, 4, 5, 6000, tzinfo=dt.UTC), "005b8d80 0000000065937d25"),
        (dt.datetime(1970, 1, 1), "00000000 0000000000000000"),
        (dt.datetime(1969, 12, 31, 23, 59, 59, 500000), "1dcd6500 ffffffffffffffff"),
        (
            dt.datetime(2024, 1, 2, 5, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "00000000 0000000065937d25",
        ),
    ],
)
def test_timestamps_are_always_the_12_byte_form(when: dt.datetime, wire: str) -> None:
    packed = dumps(when)
    assert packed == h("c7 0c ff " + wire)
    back = loads(packed)
    aware = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    assert back == aware and back.tzinfo == dt.UTC


def test_timestamps_in_the_4_and_8_byte_forms_read_too() -> None:
    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert loads(h("d6 ff 65937d25")) == when
    assert loads(h("d7 ff") + ((6000 << 34) | 0x65937D25).to_bytes(8, "big")) == when.replace(
        microsecond=6
    )


def test_typed_arrays_are_big_endian() -> None:
    ints = array.array("i", [1, -2])
    assert dumps(ints) == h("d7 05 00000001 fffffffe")
    assert dumps(array.array("f", [1.5])) == h("d6 06 3fc00000")
    assert dumps(array.array("d", [2.25])) == h("d7 07 4002000000000000")
    assert dumps(array.array("i")) == h("c7 00 05")
    for value in (ints, array.array("f", [1.5, -0.25]), array.array("d", [math.pi])):
        back = loads(dumps(value))
        assert back == value and back.typecode == value.typecode
    assert ints == array.array("i", [1, -2])  # writing did not swap the caller's array
    assert loads(dumps({(1,): array.array("i", [7])})) == {(1,): array.array("i", [7])}
    assert loads(dumps({array.array("i", [7]).tobytes(): 1}))  # bytes keys are fine
    with pytest.raises(PackError, match="array\\('q'\\)"):
        dumps(array.array("q", [1]))


def test_unknown_extension_types_pass_through() -> None:
    assert loads(h("d4 2a 07")) == stdmsgpack.ExtType(42, b"\x07")
    with pytest.raises(UnpackError, match="reserved"):
        loads(h("d4 fe 07"))


# ---------------------------------------------------------------------------- map-key cache


def test_str_keys_that_are_keyword_names_are_written_as_keywords() -> None:
    assert dumps({"id": 1}) == h("81 d5 00 6964 01")
    not_names = {"a b": 1, "1": 2, "é": 3}
    assert dumps(not_names) == dumps(not_names, keywordize_keys=False)
    assert dumps({"id": 1}, keywordize_keys=False) == h("81 a2 6964 01")
    assert MsgpackPacker(keywordize_keys=False).pack({"id": 1}) == h("81 a2 6964 01")
    assert dumps([K("id"), "id"]) == h("92 d5 00 6964 a2 6964")  # values stay as they are


def test_repeated_keys_are_cache_references_in_order_of_first_appearance() -> None:
    value = [{"a": 1, "b": 2}, {"b": 3, "c": 4, "a": 5}, {"c": {"a": 6}}]
    assert dumps(value) == h(
        "93"
        "82 d4 00 61 01 d4 00 62 02"  # a -> 0, b -> 1
        "83 d4 08 01 03 d4 00 63 04 d4 08 00 05"  # c -> 2
        "81 d4 08 02 81 d4 08 00 06"
    )
    assert loads(dumps(value)) == value


def test_keyword_and_string_keys_are_separate_cache_entries() -> None:
    value = [{K("k"): 1}, {"k": 2}, {K("k"): 3}, {"k": 4}]
    packed = dumps(value, keywordize_keys=False)
    assert packed == h("94 81 d4 00 6b 01 81 a1 6b 02 81 d4 08 00 03 81 d4 08 01 04")
    back = loads(packed)
    assert [type(next(iter(m))) for m in back] == [Keyword, StringKey, Keyword, StringKey]
    assert dumps(back) == packed  # string keys read stay strings, even with keywordize_keys


def test_only_the_first_256_distinct_keys_are_cached() -> None:
    keys = [f"k{i}" for i in range(300)]
    value = [{k: 0 for k in keys}, {k: 1 for k in keys}]
    packed = dumps(value)
    assert h("d4 08 ff") in packed  # k255
    assert packed.count(b"\xd4\x08") == 256
    assert packed.count(b"k299") == 2  # past the cache: written out each time
    assert loads(packed) == value


def test_keys_inside_sets_and_collection_keys_share_the_cache() -> None:
    value = {"a": {ImmutableDict({"a": 1}), 2}, ("x", ImmutableDict({"b": 1})): {"b": 2}}
    packed = dumps(value)
    back = loads(packed)
    assert back == value
    # "a" (0) is written once; the map in the set refers to it; "b" (1) likewise
    assert packed.count(b"\xd4\x00a") == 1 and packed.count(b"\xd4\x00b") == 1
    assert packed.count(h("d4 08 00")) == 1 and packed.count(h("d4 08 01")) == 1


def test_collection_keys_read_as_hashable_values() -> None:
    value = {(1, (2,)): "t", ImmutableDict({"k": (1,)}): "m", frozenset({(1,)}): "s"}
    back = loads(dumps(value))
    assert back == {(1, (2,)): "t", ImmutableDict({"k": (1,)}): "m", frozenset({(1,)}): "s"}
    # Sente's own test data: a complex key [nil #{:x :y}]
    assert loads(dumps({(None, frozenset({K("x"), K("y")})): 1})) == {
        (None, frozenset({"x", "y"})): 1
    }


def test_cache_references_must_name_a_key_already_seen_and_be_keys() -> None:
    with pytest.raises(UnpackError, match="cached key 1 is used before 1 keys"):
        loads(h("92 81 a1 61 01 81 d4 08 01 02"))
    with pytest.raises(UnpackError, match="only be a map key"):
        loads(h("92 81 a1 61 01 d4 08 00"))
    with pytest.raises(UnpackError):
        loads(h("81 d5 08 0000 01"))


def test_a_writer_that_does_not_cache_is_read_like_sente_reads_it() -> None:
    """Every keyword or string key read in full takes the next number, repeats included."""
    plain = h("93 81 a1 61 01 81 a1 61 02 81 d4 08 01 03")
    assert loads(plain) == [{"a": 1}, {"a": 2}, {"a": 3}]


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "value",
    [object(), dt.date(2024, 1, 2), {1: object()}, {object()}, complex(1, 2)],
    ids=repr,
)
def test_what_msgpack_cannot_write(value: Any) -> None:
    with pytest.raises(PackError, match="msgpack cannot write"):
        MsgpackPacker().pack(value)


def test_too_deep_is_a_pack_error() -> None:
    value: list[Any] = []
    for _ in range(5000):
        value = [value]
    with pytest.raises(PackError, match="nested too deeply"):
        MsgpackPacker().pack(value)


def test_zero_padding_after_the_value_is_ignored() -> None:
    """Sente's ClojureScript client POSTs its msgpack stream's whole buffer (F12)."""
    package = h("9292c70900746573742f6e6f6f7001c0")
    padded = package + bytes(1024 - len(package))
    assert loads(padded) == loads(package) == [[K("test/noop"), 1], None]
    assert protocol.unpack(MsgpackPacker(), padded) == ([K("test/noop"), 1], None)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",  # never used
        h("92 01"),  # truncated
        h("01 02"),  # trailing data that is not zero padding
        h("01 00 00 07"),  # zero padding, then more
        h("a2 ff fe"),  # not UTF-8
        h("d5 03 01 00"),  # ratio 1/0
        h("d4 03 01"),  # ratio of one int
        h("c7 03 03 01 a1 78"),  # ratio of an int and a string
        h("d4 04 01"),  # a set holding no array
        h("d6 09 61626364"),  # not a uuid
        h("c7 00 02"),  # an empty char
        h("d5 05 0000"),  # an int array of 2 bytes
        h("c7 0c ff 00000000 7fffffffffffffff"),  # past year 9999
        bytes(1100 * [0x91]),  # nested too deeply
        "[1]",  # text
    ],
    ids=repr,
)
def test_bad_packages_raise_unpack_error_with_the_package(data: Any) -> None:
    with pytest.raises(UnpackError) as caught:
        MsgpackPacker().unpack(data)
    assert caught.value.package is data
    with pytest.raises(UnpackError) as caught:
        protocol.unpack(MsgpackPacker(), data)
    assert caught.value.package is data


def test_text_says_what_is_wrong() -> None:
    with pytest.raises(UnpackError, match="text message arrived"):
        loads('["chsk/ws-ping",null]')


def test_missing_msgpack_package_is_a_config_error(tmp_path: Path) -> None:
    """Run in a fresh interpreter in which ``import msgpack`` fails."""
    script = (
        "import sys; sys.modules['msgpack'] = None\n"
        "from flask import Flask\n"
        "from flask_sente import Sente, get_packer\n"
        "from flask_sente.errors import ConfigError\n"
        "for make in (lambda: get_packer('msgpack'), lambda: get_packer('gzip+msgpack'),\n"
        "             lambda: Sente(Flask('x'), packer='msgpack')):\n"
        "    try:\n"
        "        make()\n"
        "    except ConfigError as exc:\n"
        "        print(exc)\n"
        "print(get_packer('gzip+json').name)\n"
    )
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 4
    for line in lines[:3]:
        assert "pip install 'flask-sente[msgpack]'" in line
    assert lines[3] == "gzip+json"
    assert issubclass(ConfigError, ValueError)


def test_packer_by_name() -> None:
    packer = get_packer("msgpack")
    assert isinstance(packer, MsgpackPacker) and packer.binary is True
    assert repr(packer) == "MsgpackPacker(keywordize_keys=True)"
    assert isinstance(protocol.pack(packer, [K("a/b")], None), bytes)
    with pytest.raises(PackError, match="legacy v1 format is text only"):
        protocol.pack(packer, [K("a/b")], None, legacy=True)


# ---------------------------------------------------------------------------- properties

_ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
_names = st.text(alphabet="abxyz-?!*", min_size=1, max_size=6).map(lambda s: "k" + s)
_keywords = st.builds(
    lambda ns, name: K(f"{ns}/{name}" if ns else name), st.none() | _names, _names
)
_datetimes = st.datetimes(
    min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31), timezones=st.just(dt.UTC)
)
_ratios = st.fractions(max_denominator=2**40).filter(
    lambda f: f.denominator != 1 and abs(f.numerator) < 2**62
)
_hashable_leaves = (
    st.none()
    | st.booleans()
    | _ints
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
    | _keywords
    | st.text(min_size=1, max_size=8).map(Symbol)
    | st.characters(exclude_categories=["Cs"]).map(Char)
    | st.uuids()
    | _datetimes
    | _ratios
)
_typed_arrays = (
    st.lists(st.integers(-(2**31), 2**31 - 1), max_size=5).map(lambda v: array.array("i", v))
    | st.lists(st.floats(width=32, allow_nan=False), max_size=5).map(lambda v: array.array("f", v))
    | st.lists(st.floats(allow_nan=False), max_size=5).map(lambda v: array.array("d", v))
)
hashables = st.recursive(
    _hashable_leaves,
    lambda inner: (
        st.lists(inner, max_size=4).map(tuple)
        | st.frozensets(inner, max_size=4)
        | st.dictionaries(inner, inner, max_size=4).map(ImmutableDict)
    ),
    max_leaves=12,
)
values = st.recursive(
    _hashable_leaves | _typed_arrays,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.frozensets(hashables, max_size=4)
        | st.dictionaries(st.text(max_size=6) | _keywords | hashables, inner, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values, st.booleans())
def test_every_supported_value_round_trips(value: Any, keywordize: bool) -> None:
    packed = dumps(value, keywordize_keys=keywordize)
    back = loads(packed)
    assert back == value
    if not _holds_a_set(value):  # a set's order is not kept
        assert dumps(back, keywordize_keys=keywordize) == packed  # writes back byte for byte


def _holds_a_set(x: Any) -> bool:
    if isinstance(x, frozenset):
        return True
    if isinstance(x, list | tuple):
        return any(map(_holds_a_set, x))
    if isinstance(x, dict | ImmutableDict):
        return any(_holds_a_set(k) or _holds_a_set(v) for k, v in x.items())
    return False


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values, st.none() | st.text(alphabet="0123456789abcdef", min_size=6, max_size=6))
def test_messages_round_trip_through_the_protocol(value: Any, cb: Any) -> None:
    packer = MsgpackPacker()
    assert protocol.unpack(packer, protocol.pack(packer, value, cb)) == (value, cb)


_plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=0xFFFFFFFF)
    | st.floats()
    | st.text(max_size=40)
    | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=20),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(_plain)
def test_plain_values_are_written_as_the_msgpack_package_writes_them(value: Any) -> None:
    assert dumps(value) == stdmsgpack.packb(value, use_bin_type=True)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**64 - 1)
        | st.floats(allow_nan=False)
        | st.text(max_size=10)
        | st.binary(max_size=10),
        lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=30,
    )
)
def test_standard_msgpack_reads(value: Any) -> None:
    assert loads(stdmsgpack.packb(value, use_bin_type=True)) == value


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_unpacking_any_bytes_raises_only_unpack_error(data: bytes) -> None:
    try:
        loads(data)
    except UnpackError as exc:
        assert exc.package is data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values, st.data())
def test_corrupted_packages_raise_only_unpack_error(value: Any, data: st.DataObject) -> None:
    packed = bytearray(dumps(value))
    if not packed:
        return
    i = data.draw(st.integers(0, len(packed) - 1))
    packed[i] = data.draw(st.integers(0, 255))
    cut = bytes(packed[: data.draw(st.integers(0, len(packed)))])
    for bad in (bytes(packed), cut):
        try:
            loads(bad)
        except UnpackError as exc:
            assert exc.package is bad
