"""flask_sente.packers: choosing a packer, JSON's conventions, and properties of every packer."""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_sente import protocol
from flask_sente.errors import ConfigError, PackError, UnpackError
from flask_sente.packers import EdnPacker, JsonPacker, Packer, get_packer
from flask_sente.values import Keyword, Symbol

PACKERS: list[Packer] = [JsonPacker(), EdnPacker()]


# ---------------------------------------------------------------------------- choosing


def test_get_packer_by_name_or_object() -> None:
    assert isinstance(get_packer(None), JsonPacker)
    assert isinstance(get_packer("json"), JsonPacker)
    assert isinstance(get_packer("EDN"), EdnPacker)
    mine = EdnPacker(keywordize_keys=False)
    assert get_packer(mine) is mine
    for packer in PACKERS:
        assert isinstance(packer, Packer)
        assert packer.binary is False
    assert repr(get_packer("json")) == "JsonPacker()"
    assert repr(get_packer("edn")) == "EdnPacker(keywordize_keys=True)"


@pytest.mark.parametrize(
    "bad", ["fressian", "gzip+fressian", "gzip+gzip+json", "", 42, object()], ids=repr
)
def test_get_packer_refuses_what_is_no_packer(bad: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        get_packer(bad)
    assert isinstance(caught.value, ValueError)
    assert "packer" in str(caught.value)


# ---------------------------------------------------------------------------- json


def test_json_is_compact_and_keeps_unicode() -> None:
    assert JsonPacker().pack({"a": [1, "é€😀", None, True]}) == '{"a":[1,"é€😀",null,true]}'


def test_json_writes_keywords_and_other_values_as_strings_or_arrays() -> None:
    packer = JsonPacker()
    value = [
        Keyword("chsk/handshake"),
        (1, 2),
        frozenset({3}),
        uuid.UUID(int=1),
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        dt.date(2024, 1, 2),
        Decimal("1.5"),
        Symbol("foo"),
    ]
    assert packer.pack(value) == (
        '["chsk/handshake",[1,2],[3],"00000000-0000-0000-0000-000000000001",'
        '"2024-01-02T03:04:05+00:00","2024-01-02","1.5","foo"]'
    )


@pytest.mark.parametrize("value", [b"x", math.nan, math.inf, object(), {(1, 2): 3}], ids=repr)
def test_json_refuses_what_it_cannot_carry(value: Any) -> None:
    with pytest.raises(PackError):
        JsonPacker().pack([value])


def test_json_unpacks_text_and_utf8_bytes() -> None:
    packer = JsonPacker()
    assert packer.unpack('["é"]') == ["é"]
    assert packer.unpack('["é"]'.encode()) == ["é"]
    assert packer.unpack(bytearray(b"[1]")) == [1]
    raw = b'["\xff"]'
    with pytest.raises(UnpackError) as caught:
        packer.unpack(raw)
    assert caught.value.package is raw


def test_edn_packer_keywordize_keys_option() -> None:
    assert EdnPacker().pack({"a": 1}) == "{:a 1}"
    assert EdnPacker(keywordize_keys=False).pack({"a": 1}) == '{"a" 1}'


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "value",
    [b"x", object(), 10**5000, _nested(5000)],
    ids=["bytes", "object", "int-too-long-to-print", "too-deep"],
)
def test_edn_pack_errors_are_pack_errors(value: Any) -> None:
    with pytest.raises(PackError):
        EdnPacker().pack(value)


# ---------------------------------------------------------------------------- properties

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=25,
)
callbacks = st.none() | st.text(alphabet="0123456789abcdef", min_size=6, max_size=6)


def _same(a: Any, b: Any) -> bool:
    """Equal, with floats bit-exact and bool, int and float not mixed up."""
    if isinstance(a, float) or isinstance(b, float):
        return type(a) is type(b) and a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, list):
        return type(b) is list and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return type(b) is dict and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values, callbacks, st.sampled_from(PACKERS))
def test_json_values_round_trip_in_the_current_format(value: Any, cb: Any, packer: Any) -> None:
    wire = protocol.pack(packer, value, cb)
    back, back_cb = protocol.unpack(packer, wire)
    assert _same(back, value), wire
    assert back_cb == cb


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values, callbacks, st.sampled_from([None, True, False]), st.sampled_from(PACKERS))
def test_json_values_round_trip_in_legacy_v1(
    value: Any, cb: Any, wrap: bool | None, packer: Any
) -> None:
    wire = protocol.pack(packer, value, cb, wrap=wrap, legacy=True)
    assert isinstance(wire, str)
    wrapped = wrap if wrap is not None else cb is not None
    assert wire[0] == ("+" if wrapped else "-")
    back, back_cb = protocol.unpack(packer, wire)
    assert _same(back, value), wire
    assert back_cb == (cb if wrapped else None)


@settings(max_examples=250, deadline=None)
@given(json_values, st.sampled_from(PACKERS))
def test_json_values_round_trip_through_the_packer_alone(value: Any, packer: Any) -> None:
    assert _same(packer.unpack(packer.pack(value)), value)


@settings(max_examples=300, deadline=None)
@given(st.text() | st.binary(), st.sampled_from(PACKERS))
def test_unpacking_anything_raises_only_unpack_error(data: str | bytes, packer: Any) -> None:
    for unpack in (packer.unpack, lambda d: protocol.unpack(packer, d)):
        try:
            unpack(data)
        except UnpackError as exc:
            assert exc.package is data


_EDNISH = st.text(alphabet='[](){}#:"\\^_,;/ +-.0123456789eENMaxuinst@\n\t', max_size=40)
_JSONISH = st.text(alphabet='[]{}:,"\\ -+.0123456789eEtruefalsn\n', max_size=40)


@settings(max_examples=300, deadline=None)
@given(_EDNISH | _JSONISH, st.sampled_from(["", "+", "-"]), st.sampled_from(PACKERS))
def test_unpacking_near_misses_raises_only_unpack_error(
    text: str, prefix: str, packer: Any
) -> None:
    """Text built from each syntax's own characters reaches deeper into the readers."""
    data = prefix + text
    for unpack in (packer.unpack, lambda d: protocol.unpack(packer, d)):
        try:
            unpack(data)
        except UnpackError as exc:
            assert exc.package is data


_EDN_ATOMS = st.sampled_from(
    [
        "nil",
        "true",
        "1",
        "-2",
        "1.5",
        "1e3",
        "2N",
        "1.5M",
        "1/2",
        "##Inf",
        ":a",
        ":a/b",
        "sym",
        '"s"',
        "\\a",
        "\\newline",
        '#uuid "00000000-0000-0000-0000-000000000001"',
        '#inst "2024-01-02T03:04:05.006-00:00"',
        '#inst "2024-01-02"',
        "#_ 1",
        "^:m",
        "#:ns",
        "#unknown",
    ]
)
_CLOSERS = {"[": "]", "(": ")", "{": "}", "#{": "}"}
edn_texts = st.recursive(
    _EDN_ATOMS,
    lambda inner: st.builds(
        lambda opener, items: opener + " ".join(items) + _CLOSERS[opener],
        st.sampled_from(list(_CLOSERS)),
        st.lists(inner, max_size=4),
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(edn_texts)
def test_edn_shaped_text_reads_or_raises_unpack_error_and_what_reads_writes(text: str) -> None:
    """Structured edn (odd maps, collections as keys, tags, metadata) reaches the conversion."""
    packer = EdnPacker()
    try:
        value = packer.unpack(text)
    except UnpackError as exc:
        assert exc.package is text
        return
    assert packer.unpack(packer.pack(value)) == value


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.uuids()
    | st.datetimes()
    | st.builds(Keyword, st.text(min_size=1)),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.frozensets(st.integers(), max_size=3)
        | st.dictionaries(st.text(), inner, max_size=4)
    ),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_the_json_packer_writes_what_the_standard_json_encoder_writes(value: Any) -> None:
    """It makes the C encoder once instead of on every call; the text must not change."""
    from flask_sente.packers import _json_default

    expected = json.dumps(
        value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default
    )
    assert JsonPacker().pack(value) == expected


def test_what_json_cannot_write_is_still_a_pack_error() -> None:
    circular: list[Any] = []
    circular.append(circular)
    for value in (float("nan"), {1j: 1}, circular, object(), b"bytes"):
        with pytest.raises(PackError):
            JsonPacker().pack(value)
