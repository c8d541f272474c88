"""flask_sente's edn reader: against edn_format (the reader it replaced), on garbage, at depth.

The differential tests generate values (printed by our writer) and edn text in the many
spellings the edn spec and Clojure's reader allow (commas, comments, discards, metadata,
number forms, escapes, character names, namespaced maps), and require our reader and
edn_format to read the same values. Where edn_format is wrong or refuses what Clojure reads,
the real Clojure reader is the judge instead (tests/test_clojure_reader.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
import uuid
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

import edn_format
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_sente import edn
from flask_sente.edn_reader import MAX_DEPTH
from flask_sente.errors import UnpackError
from flask_sente.values import (
    Char,
    ImmutableDict,
    ImmutableVector,
    Keyword,
    StringKey,
    Symbol,
)
from tests.test_edn import edn_values

UTC = dt.UTC


def from_edn_format(x: Any, hashable: bool = False) -> Any:
    """edn_format's value as flask_sente's mapping has it (what flask_sente 0.1 returned)."""
    if isinstance(x, edn_format.Keyword):
        return Keyword(x.name)
    if isinstance(x, edn_format.Symbol):
        return Symbol(x.name)
    if isinstance(x, edn_format.Char):
        return Char(x)
    if isinstance(x, dt.datetime):
        return x.astimezone(UTC)
    if isinstance(x, dt.date):
        return dt.datetime(x.year, x.month, x.day, tzinfo=UTC)
    if isinstance(x, edn_format.ImmutableList | list):
        if hashable:
            return ImmutableVector(from_edn_format(v, True) for v in x)
        return [from_edn_format(v) for v in x]
    if isinstance(x, tuple):
        return tuple(from_edn_format(v, hashable) for v in x)
    if isinstance(x, Mapping):
        items = {from_edn_format(k, True): from_edn_format(v, hashable) for k, v in x.items()}
        return ImmutableDict(items) if hashable else items
    if isinstance(x, frozenset):
        return frozenset(from_edn_format(v, True) for v in x)
    if isinstance(x, edn_format.MetadataValue):
        return from_edn_format(x.value, hashable)
    return x


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (floats bit for bit, NaN equal)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, Mapping):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


# Character literals Clojure prints that edn_format's lexer cannot read (\backspace,
# \formfeed, \€, a raw control character), rewritten as \uXXXX outside strings, as
# flask_sente 0.1 rewrote them before handing the text to edn_format.
_CHAR_TOKEN = re.compile(r'\\(backspace|formfeed|[^!-~\w])|\\.|"(?:[^"\\]|\\.)*"', re.DOTALL)
_CHAR_CODES = {"backspace": "\\u0008", "formfeed": "\\u000c"}


def _for_edn_format(text: str) -> str:
    def code(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)
        return _CHAR_CODES.get(name) or f"\\u{ord(name):04x}"

    return _CHAR_TOKEN.sub(code, text)


def ours_and_theirs(text: str) -> tuple[Any, Any]:
    return edn.loads(text), from_edn_format(edn_format.loads(_for_edn_format(text)))


def without_string_keys(x: Any) -> Any:
    """``x`` with StringKey map keys as the plain str edn_format reads them as."""
    if isinstance(x, dict):
        return {str(k) if type(k) is StringKey else k: without_string_keys(v) for k, v in x.items()}
    if isinstance(x, list):
        return [without_string_keys(v) for v in x]
    return x


# ---------------------------------------------------------------------------- values


@settings(max_examples=400, deadline=None)
@given(edn_values)
def test_reads_what_we_write_as_edn_format_does(value: Any) -> None:
    text = edn.dumps(value)
    ours, theirs = ours_and_theirs(text)
    assert same(without_string_keys(ours), theirs), text


# ---------------------------------------------------------------------------- edn text

_WS = st.sampled_from([" ", ",", ", ", "\n", "\t", " ; a comment\n", "  "])
_SEP = st.lists(_WS, min_size=1, max_size=2).map("".join)
_OPT = st.lists(_WS, max_size=2).map("".join)

_NAME = st.from_regex(r"[a-zA-Z*!_?<>=][a-zA-Z0-9*!_?<>=+.\-]{0,5}", fullmatch=True).filter(
    lambda s: s not in ("nil", "true", "false")
)
_QUALIFIED = st.builds(lambda ns, n: f"{ns}/{n}" if ns else n, st.none() | _NAME, _NAME)

_ints = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.integers(0, 10**20).map(lambda n: f"+{n}"),
    st.integers(-(10**30), 10**30).map(lambda n: f"{n}N"),
)
_floats = st.one_of(
    st.builds(
        lambda sign, i, f, e: f"{sign}{i}.{f}{e}",
        st.sampled_from(["", "-", "+"]),
        st.integers(0, 10**6),
        st.from_regex(r"[0-9]{1,6}", fullmatch=True),
        st.sampled_from(["", "e5", "E-3", "e+2"]),
    ),
    st.builds(lambda i, e: f"{i}e{e}", st.integers(-999, 999), st.integers(-20, 20)),
    st.decimals(
        allow_nan=False, allow_infinity=False, places=4, max_value=10**9, min_value=-(10**9)
    )
    .map(lambda d: f"{d}M")
    .filter(lambda s: "E" not in s),
    st.sampled_from(["##Inf", "##-Inf", "##NaN"]),
)
_ratios = st.builds(lambda n, d: f"{n}/{d}", st.integers(-999, 999), st.integers(1, 999))
_ESCAPES = st.sampled_from(['\\"', "\\\\", "\\n", "\\t", "\\r", "\\b", "\\f", "\\u00e9", "\\u0041"])
_PLAIN = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters='"\\'), max_size=8
)
_strings = st.lists(_PLAIN | _ESCAPES, max_size=5).map(lambda parts: '"' + "".join(parts) + '"')
_chars = st.one_of(
    st.sampled_from(["\\a", "\\Z", "\\0", "\\\\", "\\(", "\\newline", "\\space", "\\tab"]),
    st.sampled_from(["\\return", "\\u0041", "\\u20AC", "\\é", "\\!", "\\]"]),
)
_keywords = _QUALIFIED.map(lambda s: ":" + s)
_symbols = _QUALIFIED
_insts = st.datetimes(
    min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: '#inst "' + d.isoformat(timespec="milliseconds").replace("+00:00", "Z") + '"')
_uuids = st.uuids().map(lambda u: f'#uuid "{u}"')

edn_scalars = st.one_of(
    st.sampled_from(["nil", "true", "false"]),
    _ints,
    _floats,
    _ratios,
    _strings,
    _chars,
    _keywords,
    _symbols,
    _insts,
    _uuids,
)


def _join(open_: str, close: str, forms: list[str], seps: list[str]) -> str:
    body = "".join(sep + form for sep, form in zip(["", *seps], forms, strict=False))
    return open_ + body + close


@st.composite
def _collection(draw: st.DrawFn, inner: st.SearchStrategy[str]) -> str:
    kind = draw(st.sampled_from(["vector", "list", "map", "nsmap", "set"]))
    if kind in ("vector", "list"):
        forms = draw(st.lists(inner, max_size=4))
        seps = draw(st.lists(_SEP, min_size=len(forms), max_size=len(forms)))
        return _join(
            "[" if kind == "vector" else "(", "]" if kind == "vector" else ")", forms, seps
        )
    if kind == "set":  # unique members, read alike by both (no 1 and 1.0, nor 1 and true)
        forms = draw(st.lists(st.integers(-99, 99).map(str) | _keywords, max_size=4, unique=True))
        seps = draw(st.lists(_SEP, min_size=len(forms), max_size=len(forms)))
        return _join("#{", "}", forms, seps)
    keys = draw(st.lists(_NAME, max_size=4, unique=True))
    values = draw(st.lists(inner, min_size=len(keys), max_size=len(keys)))
    seps = draw(st.lists(_SEP, min_size=2 * len(keys), max_size=2 * len(keys)))
    forms = [f for k, v in zip(keys, values, strict=True) for f in (":" + k, v)]
    if kind == "nsmap":
        return "#:ns" + draw(st.sampled_from(["", " "])) + _join("{", "}", forms, seps)
    return _join("{", "}", forms, seps)


@st.composite
def _decorated(draw: st.DrawFn, form: st.SearchStrategy[str]) -> str:
    """A form, maybe behind a discarded form or metadata, with whitespace around it."""
    text = draw(form)
    prefix = draw(st.sampled_from(["", "#_ 1 ", "#_[:x] ", "^:meta ", "^{:a 1} "]))
    if prefix.startswith("^") and text[0] not in "[({#":
        prefix = ""  # Clojure takes metadata only on collections and symbols
    return draw(_OPT) + prefix + text + draw(_OPT)


edn_texts = st.recursive(edn_scalars, lambda inner: _collection(_decorated(inner)), max_leaves=12)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_decorated(edn_texts))
def test_reads_edn_text_as_edn_format_does(text: str) -> None:
    ours, theirs = ours_and_theirs(text)
    assert same(without_string_keys(ours), theirs), text


@pytest.mark.parametrize(
    "text",
    [
        "[1,2 , 3]",
        "#:user{:a 1, :_/b 2, :x/c 3}",
        "[1 #_ 2 3] ; comment",
        "^{:doc 1} [1]",
        '["a\\tb\\u00e9" \\u0041 \\newline]',
        "{:a [1 (2 #{3})] :b {:c nil}}",
        "[##Inf ##-Inf +5 -0 1e3 1.5M 2/4 7N]",
        '#inst "2024-01-02T03:04:05.678+01:30"',
        '#inst "2024-01-02"',
    ],
)
def test_reads_these_as_edn_format_does(text: str) -> None:
    ours, theirs = ours_and_theirs(text)
    assert same(without_string_keys(ours), theirs)


# ---------------------------------------------------------------------------- beyond edn_format


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("[\\backspace \\formfeed \\o101 \\u00e9]", ["\b", "\f", "A", "é"]),
        ("017", 15),  # octal, as Clojure reads it
        ("[0x1F 2r101 36rZZ -0x10 0X1fN]", [31, 5, 1295, -16, 31]),
        ('"\\101\\7"', "A\x07"),  # octal escapes in strings
        ('"\\ud83d\\ude00"', "😀"),  # a surrogate pair is one character
        ('"\\ud83d\\ude00 \\ud800"', "😀 \ud800"),  # and a lone one stays
        ("#:a{b 1, _/c 2}", {Symbol("a/b"): 1, Symbol("c"): 2}),
        ("## Inf", math.inf),
        ("[1.] ", [1.0]),
        ("a'b", Symbol("a'b")),
        (":a/b/c", Keyword("a/b/c")),
        ("[1] ]", [1]),  # what follows the first value is not read, as in Clojure
        ('#inst "2024-01-02T03"', dt.datetime(2024, 1, 2, 3, tzinfo=UTC)),
        ('#inst "2024-01-02T03:04:05.123456789Z"', dt.datetime(2024, 1, 2, 3, 4, 5, 123456, UTC)),
        (
            "1.12345678901234567890123456789012345M",
            Decimal("1.12345678901234567890123456789012345"),
        ),
    ],
)
def test_reads_clojure_syntax_edn_format_does_not(text: str, value: Any) -> None:
    assert edn.loads(text) == value


def test_string_map_keys_are_read_as_string_keys() -> None:
    value = edn.loads('{"id" 1, :id2 2, "a b" {"c" 3}}')
    assert [type(k) for k in value] == [StringKey, Keyword, StringKey]
    assert type(next(iter(value["a b"]))) is StringKey
    assert edn.dumps(value) == '{"id" 1, :id2 2, "a b" {"c" 3}}'
    assert type(edn.loads('["id" #{"x"}]')[0]) is str  # only keys


def test_a_tag_reader_reads_its_tag() -> None:
    edn.add_tag("my/point", lambda v: complex(*v))
    try:
        assert edn.loads("[#my/point [1 2] 3]") == [1 + 2j, 3]
        with pytest.raises(UnpackError, match="reader for #my/point failed"):
            edn.loads("#my/point :x")
    finally:
        edn.remove_tag("my/point")
    with pytest.raises(UnpackError, match="add_tag"):
        edn.loads("#my/point [1 2]")
    for bad in ("inst", "uuid", "1x", ":k", ""):
        with pytest.raises(ValueError, match="cannot be an edn tag"):
            edn.add_tag(bad, str)


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("text", "position", "says"),
    [
        ("[1 2", 4, "ends inside"),
        ("[1 2}", 4, "unexpected }"),
        ("{:a 1 :b}", 8, "even number"),
        ('[1 "abc', 3, "not closed"),
        ("[1 #foo 2]", 3, "no reader for the tag #foo"),
        ("[09]", 1, "only 0 may start with 0"),
        ("{:a 1 :a 2}", 10, "duplicate map keys"),
        ('{:a 1 "a" 2}', 11, "duplicate map keys"),
        ("#{1 true}", 8, "duplicate set members"),
        ('"\\q"', 0, "unsupported escape"),
        ("\\abc", 0, "unsupported character"),
        ("::k", 0, "auto-resolved"),
        ("[1/0]", 1, "divides by zero"),
        ("#:a/b{:c 1}", 0, "namespace"),
        ("#:a [1]", 4, "must be followed by {"),
        ("##Foo", 0, "symbolic"),
        ('#uuid "nope"', 6, "badly formed"),
        ('#inst "2024-13-01"', 6, "month"),
        ("#inst 5", 6, "#inst takes"),
        ("^:m", 3, "ends inside"),
        ("#_", 2, "ends inside"),
        ("9" * 5000, 0, "digits"),
    ],
)
def test_bad_edn_says_what_and_where(text: str, position: int, says: str) -> None:
    with pytest.raises(UnpackError) as caught:
        edn.loads(text)
    assert f"at position {position} " in str(caught.value)
    assert says in str(caught.value)
    assert caught.value.package is text


def test_nesting_is_bounded() -> None:
    deepest = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    value = edn.loads(deepest)
    assert edn.dumps(value) == deepest  # and written back without a RecursionError
    for too_deep in ["[" * (MAX_DEPTH + 1), "#_" * (MAX_DEPTH + 1) + "1", "^:a " * 300 + "[]"]:
        with pytest.raises(UnpackError, match=f"nest more than {MAX_DEPTH} deep"):
            edn.loads(too_deep)


def test_empty_text_reads_as_nil() -> None:
    assert edn.loads("") is None
    assert edn.loads(" ,; only a comment\n #_ 1 ") is None


@pytest.mark.parametrize(
    "text",
    [
        '"' + "\\" * 100_001,
        "\\" * 100_000,
        ":" * 100_000,
        "a/" * 50_000,
        "/" * 100_000,
        "#" * 100_000,
        "#_" * 200 + "]" * 100_000,
        '"' * 100_001,
        "[" * 256 + "1" * 100_000,
        "{" * 200 + ":a " * 100_000,
        "#:" + "a" * 100_000 + "{",
        "1" + "e" * 100_000,
        "0x" + "F" * 100_000,
    ],
)
def test_pathological_text_is_refused_or_read_in_linear_time(text: str) -> None:
    with contextlib.suppress(UnpackError):
        edn.loads(text)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from('[](){}#_^:;"\\ ,\n0123456789.-+/aeNMxu~`@'), max_size=60))
def test_garbage_raises_unpack_error_or_reads(text: str) -> None:
    try:
        edn.loads(text)
    except UnpackError as exc:
        assert exc.package is text


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_garbage_bytes_raise_unpack_error_or_read(data: bytes) -> None:
    try:
        edn.loads(data)
    except UnpackError as exc:
        assert exc.package == data


@settings(max_examples=300, deadline=None)
@given(edn_values, st.data())
def test_damaged_edn_raises_unpack_error_or_reads(value: Any, data: st.DataObject) -> None:
    text = edn.dumps(value)
    at = data.draw(st.integers(0, len(text)))
    cut = data.draw(st.integers(0, 3))
    insert = data.draw(st.sampled_from(["", "[", "}", '"', "\\", "#", "^", ":", "#_", " "]))
    with contextlib.suppress(UnpackError):
        edn.loads(text[:at] + insert + text[at + cut :])


def test_values_read_are_those_of_the_mapping() -> None:
    text = '[nil true 1 1.5 1.5M 1/3 "s" \\a :k s (1) {:a 1} #{1} #uuid "{}" #inst "2020"]'
    text = text.replace("{}", str(uuid.UUID(int=1)))
    types = [type(v) for v in edn.loads(text)]
    assert types == [
        type(None),
        bool,
        int,
        float,
        Decimal,
        Fraction,
        str,
        Char,
        Keyword,
        Symbol,
        tuple,
        dict,
        frozenset,
        uuid.UUID,
        dt.datetime,
    ]


def test_long_names_are_not_kept_in_the_caches() -> None:
    from flask_sente.edn_scalars import KEYWORDS, SYMBOLS

    long_name = "a" * 1000
    assert edn.loads(f"[:{long_name} {long_name}]") == [Keyword(long_name), Symbol(long_name)]
    assert f":{long_name}" not in KEYWORDS and long_name not in SYMBOLS
    edn.dumps({long_name: 1})
    assert edn.loads(":short-enough") == Keyword("short-enough")
    assert ":short-enough" in KEYWORDS
