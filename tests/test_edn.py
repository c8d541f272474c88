"""flask_sente.edn: printing as Clojure's pr-str, reading through edn_format, and the mapping."""

from __future__ import annotations

import datetime as dt
import math
import threading
import uuid
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_sente import edn
from flask_sente.errors import PackError, UnpackError
from flask_sente.values import Char, ImmutableDict, ImmutableVector, Keyword, Symbol

K = Keyword
UTC = dt.UTC


# ---------------------------------------------------------------------------- writing


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "nil"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-7, "-7"),
        (2**63 - 1, "9223372036854775807"),
        (2**63, "9223372036854775808N"),
        (-(2**63), "-9223372036854775808"),
        (-(2**63) - 1, "-9223372036854775809N"),
        ("", '""'),
        ("s", '"s"'),
        (K("k"), ":k"),
        (K("chsk/handshake"), ":chsk/handshake"),
        (Symbol("foo"), "foo"),
        (Symbol("a.b/c"), "a.b/c"),
        ([], "[]"),
        ((), "()"),
        ({}, "{}"),
        (set(), "#{}"),
        (frozenset({1}), "#{1}"),
        ([1, [2, ()], (3, 4)], "[1 [2 ()] (3 4)]"),
        ({"a": 1, "b": [None]}, "{:a 1, :b [nil]}"),
        ({K("a"): {1: 2}}, "{:a {1 2}}"),
        (uuid.UUID(int=1), '#uuid "00000000-0000-0000-0000-000000000001"'),
        (Decimal("1.5"), "1.5M"),
        (Fraction(1, 3), "1/3"),
        (Fraction(-4, 2), "-2"),
    ],
)
def test_writes_as_pr_str(value: Any, text: str) -> None:
    assert edn.dumps(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1.0"),
        (1.5, "1.5"),
        (-2.5, "-2.5"),
        (0.1, "0.1"),
        (0.001, "0.001"),
        (0.0001, "1.0E-4"),
        (1e-5, "1.0E-5"),
        (1234567.0, "1234567.0"),
        (9999999.0, "9999999.0"),
        (1e7, "1.0E7"),
        (12345678.9, "1.23456789E7"),
        (1e21, "1.0E21"),
        (1.5e300, "1.5E300"),
        (1.7976931348623157e308, "1.7976931348623157E308"),
        (2.2250738585072014e-308, "2.2250738585072014E-308"),
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (math.inf, "##Inf"),
        (-math.inf, "##-Inf"),
        (math.nan, "##NaN"),
    ],
)
def test_writes_doubles_as_java(value: float, text: str) -> None:
    assert edn.dumps(value) == text


def test_strings_escape_only_what_clojure_escapes() -> None:
    assert edn.dumps('q"b\\n\nt\tr\rf\fb\b') == '"q\\"b\\\\n\\nt\\tr\\rf\\fb\\b"'
    raw = "\x00\x01\x1b\x7f\u2028 é € 😀"
    assert edn.dumps(raw) == f'"{raw}"'


@pytest.mark.parametrize(
    ("char", "text"),
    [
        ("a", "\\a"),
        ("\n", "\\newline"),
        (" ", "\\space"),
        ("\t", "\\tab"),
        ("\b", "\\backspace"),
        ("\f", "\\formfeed"),
        ("\r", "\\return"),
        ('"', '\\"'),
        ("é", "\\é"),
    ],
)
def test_writes_chars_as_clojure(char: str, text: str) -> None:
    assert edn.dumps(Char(char)) == text
    assert edn.loads(text) == char
    assert type(edn.loads(text)) is Char


def test_writes_instants_in_utc_with_milliseconds() -> None:
    aware = dt.datetime(2024, 1, 2, 4, 4, 5, 6789, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert edn.dumps(aware) == '#inst "2024-01-02T03:04:05.006-00:00"'
    assert edn.dumps(dt.datetime(2024, 1, 2, 3, 4, 5)) == '#inst "2024-01-02T03:04:05.000-00:00"'
    assert edn.dumps(dt.datetime(999, 1, 2)) == '#inst "0999-01-02T00:00:00.000-00:00"'


@pytest.mark.parametrize(
    "key", ["a", "a/b", "done?", "a.b/c-d", "-", "+", "*x*", "a1", "a/b+", "<=>", "-a", "._a"]
)
def test_keywordizes_string_keys_that_are_keyword_names(key: str) -> None:
    assert edn.is_keyword_name(key)
    assert edn.dumps({key: 1}) == f"{{:{key} 1}}"
    assert edn.dumps({key: 1}, keywordize_keys=False) == f'{{"{key}" 1}}'


@pytest.mark.parametrize(
    # Clojure cannot read a part that starts with a digit (:1, :a/1), edn_format no "'";
    # number-like parts (:-1, :a/+1) are left alone too.
    "key",
    ["", "a b", "1", "1a", "-1", "+1", ".5", "a/1", "a/+1", "a/", "/a", "/", "a/b/c", "a'b", ":a"],
)
def test_leaves_other_string_keys_as_strings(key: str) -> None:
    assert not edn.is_keyword_name(key)
    assert edn.dumps({key: 1}) == "{" + edn.dumps(key) + " 1}"
    assert edn.loads(edn.dumps({key: 1})) == {key: 1}


def test_only_plain_str_keys_are_keywordized() -> None:
    assert edn.dumps({Char("a"): 1}) == "{\\a 1}"
    assert edn.dumps({K("a"): 1, 2: 3, None: 4}) == "{:a 1, 2 3, nil 4}"


@pytest.mark.parametrize("value", [b"x", bytearray(b"x"), object(), 1 + 2j, dt.date(2024, 1, 2)])
def test_refuses_what_edn_cannot_carry(value: Any) -> None:
    with pytest.raises(PackError):
        edn.dumps([value])


# ---------------------------------------------------------------------------- reading


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        ("nil", None, type(None)),
        ("true", True, bool),
        ("42", 42, int),
        ("42N", 42, int),
        ("9223372036854775808N", 2**63, int),
        ("1.5", 1.5, float),
        ("1.0E21", 1e21, float),
        ("1.5M", Decimal("1.5"), Decimal),
        ("1/3", Fraction(1, 3), Fraction),
        ('"s"', "s", str),
        ("\\a", "a", Char),
        (":ns/name", "ns/name", Keyword),
        ("sym", Symbol("sym"), Symbol),
        ("[1 2]", [1, 2], list),
        ("(1 2)", (1, 2), tuple),
        ("{:a 1}", {"a": 1}, dict),
        ("#{1}", {1}, frozenset),
        ('#uuid "00000000-0000-0000-0000-000000000001"', uuid.UUID(int=1), uuid.UUID),
        (
            '#inst "2024-01-02T03:04:05.006-00:00"',
            dt.datetime(2024, 1, 2, 3, 4, 5, 6000, tzinfo=UTC),
            dt.datetime,
        ),
    ],
)
def test_reads_the_documented_mapping(text: str, value: Any, kind: type) -> None:
    read = edn.loads(text)
    assert read == value
    assert type(read) is kind


def test_reads_keywords_as_keyword_strings() -> None:
    kw = edn.loads(":chat/msg")
    assert kw == "chat/msg"
    assert (kw.namespace, kw.name) == ("chat", "msg")
    assert (K("plain").namespace, K("plain").name) == (None, "plain")
    assert {"chat/msg": 1}[kw] == 1
    assert repr(kw) == "Keyword('chat/msg')"


def test_reads_instants_into_utc() -> None:
    read = edn.loads('#inst "2024-01-02T04:04:05.006+01:00"')
    assert read.tzinfo is UTC
    assert read == dt.datetime(2024, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)
    assert edn.loads('#inst "2024-01-02"') == dt.datetime(2024, 1, 2, tzinfo=UTC)


def test_reads_clojure_reader_syntax() -> None:
    assert edn.loads("[1,2 , 3]") == [1, 2, 3]
    assert edn.loads("#:user{:a 1, :_/b 2, :x/c 3}") == {"user/a": 1, "b": 2, "x/c": 3}
    assert edn.loads("[1 #_ 2 3] ; comment") == [1, 3]
    assert edn.loads("^{:doc 1} [1]") == [1]
    assert edn.loads("[\\backspace \\formfeed \\€ \\u0041]") == ["\b", "\f", "€", "A"]
    assert edn.loads('"\\\\backspace \\\\€"') == "\\backspace \\€"
    assert edn.loads("") is None
    assert edn.loads("[1] [2]") == [1]


def test_reads_collections_as_keys_and_set_members() -> None:
    """Keys and set members must be hashable: vectors become ImmutableVectors (tuples written
    back as vectors), maps ImmutableDicts; written back, they are what was read."""
    text = "{[1 [2]] :v, {:a [1]} :m, #{[1]} :s, (1 [3]) :l}"
    value = edn.loads(text)
    assert value == {
        (1, (2,)): "v",
        ImmutableDict({"a": (1,)}): "m",
        frozenset({(1,)}): "s",
        (1, (3,)): "l",
    }
    assert [type(k) for k in value] == [ImmutableVector, ImmutableDict, frozenset, tuple]
    assert edn.dumps(value) == text
    (member,) = edn.loads("#{{:a [1]}}")
    assert member == {"a": (1,)}
    assert hash(member) == hash(ImmutableDict({"a": (1,)}))


def test_reads_bytes_as_utf8() -> None:
    assert edn.loads('"é"'.encode()) == "é"
    assert edn.loads(bytearray(b"[1]")) == [1]


@pytest.mark.parametrize(
    "text",
    [
        "[1",
        "]",
        "{:a}",
        '"unterminated',
        "#unknown 1",
        '#uuid "nope"',
        '#inst "nope"',
        "#uuid 5",
        "\\",
        b"\xff\xfe",
        "[" * 5000,
        "[" * 5000 + "]" * 5000,
        "1" * 5000,
    ],
)
def test_bad_edn_raises_unpack_error_with_the_raw_text(text: str | bytes) -> None:
    with pytest.raises(UnpackError) as caught:
        edn.loads(text)
    assert caught.value.package is text


def test_the_cached_reader_is_safe_across_threads() -> None:
    texts = [edn.dumps({"n": n, "v": [K(f"a/b{n}"), "x" * n, {n}]}) for n in range(8)]
    barrier = threading.Barrier(len(texts))
    failures: list[str] = []

    def read(n: int) -> None:
        barrier.wait()
        for _ in range(200):
            if edn.loads(texts[n]) != {"n": n, "v": [f"a/b{n}", "x" * n, {n}]}:
                failures.append(texts[n])

    threads = [threading.Thread(target=read, args=(n,)) for n in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


# ---------------------------------------------------------------------------- round trips

_NAME = st.from_regex(r"[a-z][a-z0-9*+!_?<>=.\-]{0,6}", fullmatch=True)
_NAMES = st.builds(lambda ns, n: f"{ns}/{n}" if ns else n, st.none() | _NAME, _NAME)
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)

edn_atoms = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    _TEXT,
    _NAMES.map(Keyword),
    _NAMES.filter(lambda s: s not in ("nil", "true", "false")).map(Symbol),
    st.characters(blacklist_categories=("Cs",), max_codepoint=0xFFFF).map(Char),
    st.uuids(),
    st.datetimes(timezones=st.just(UTC)).map(
        lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
    ),
    st.decimals(min_value=-(10**6), max_value=10**6, places=3),
    st.fractions(max_denominator=50),
)
_hashable = st.recursive(
    edn_atoms, lambda inner: st.lists(inner, max_size=3).map(tuple), max_leaves=6
)
edn_values = st.recursive(
    edn_atoms,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(_hashable, inner, max_size=4),
        st.dictionaries(_TEXT, inner, max_size=4),
        st.frozensets(_hashable, max_size=4),
    ),
    max_leaves=20,
)


def _same(a: Any, b: Any) -> bool:
    """Equal, with floats bit-exact and bool, int and float not mixed up."""
    if isinstance(a, float) or isinstance(b, float):
        return type(a) is type(b) and (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


@settings(max_examples=300, deadline=None)
@given(edn_values)
def test_every_mapped_value_round_trips(value: Any) -> None:
    text = edn.dumps(value)
    assert _same(edn.loads(text), value), text
