"""Transit JSON as Sente's transit packer writes it (transit-java on the server, transit-js
in ClojureScript), with the same Python values as the edn packer.

``(taoensso.sente.packers.transit/get-packer :json)`` writes compact, cached transit
(:func:`dumps`); ``:json-verbose`` (``verbose=True``) writes maps as JSON objects, instants
as ISO strings and no cache. :func:`loads` reads both, as transit's readers do.

=========================  ================================  ==============================
transit (``:json``)        Python (read)                     Python (written as that)
=========================  ================================  ==============================
``null true false``        ``None True False``
``1`` ``"~i1"`` ``"~n1"``  ``int``                           ``int`` (number/``~i``/``~n``)
``1.5``, ``"~zNaN"``       ``float``                         ``float`` (Java's digits)
``"~f1.5"``                ``Decimal``                       ``Decimal``
``"s"``, ``"~~s"``         ``str`` (``StringKey`` as a key)  ``str``
``"~:ns/name"``            ``Keyword``                       ``Keyword``; ``str`` map keys
``"~$sym"``                ``Symbol``                        ``Symbol``
``"~cx"``                  ``Char``                          ``Char``
``"~u..."``                ``uuid.UUID``                     ``UUID``
``"~m1577836800000"``      aware ``datetime`` in UTC         ``datetime`` (naive = UTC)
``"~b..."``                ``bytes``                         ``bytes``, ``bytearray``
``[...]``                  ``list``                          ``list``
``["~#list",[...]]``       ``tuple``                         ``tuple``
``["^ ",k,v,...]``         ``dict``                          ``dict``, any ``Mapping``
``["~#cmap",[k,v,...]]``   ``dict`` (keys not strings)       a map with a composite key
``["~#set",[...]]``        ``frozenset``                     ``set``, ``frozenset``
``["~#ratio",[n,d]]``      ``Fraction``                      ``Fraction``
other tags                 ``TaggedValue``                   ``TaggedValue``
=========================  ================================  ==============================

An ``int`` is a JSON number up to 2**53-1, ``~i`` up to 64 bits and ``~n`` past that. Each
message has its own cache, on both sides: a map key of 4 characters or more, and a
keyword, symbol or tag of 4 or more anywhere, is written in full the first time and as a
``^`` code (``^0`` ... ``^9``, ``^:`` ...) after that. Strings are JSON-escaped as Jackson
escapes them; doubles are written as Java prints them. With ``keywordize_keys`` plain
``str`` map keys that are keyword names are written as keywords, as with edn.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

from .edn import java_double
from .errors import PackError, UnpackError
from .transit_reader import MAX_DEPTH, read
from .values import Char, ImmutableVector, Keyword, StringKey, Symbol, TaggedValue, is_keyword_name

__all__ = ["MAX_DEPTH", "dumps", "loads"]

_JSON_INT = 2**53 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_CACHE_DIGITS = 44
_CODES = tuple(
    "^" + (chr(48 + i // _CACHE_DIGITS) if i >= _CACHE_DIGITS else "") + chr(48 + i % 44)
    for i in range(_CACHE_DIGITS * _CACHE_DIGITS)
)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# The transit form of each plain str map key seen, with keywordize_keys; only short keys,
# so that a peer cannot fill memory with them.
_keywordized: dict[str, str] = {}
_KEYWORDIZED_LIMIT = 4096
_MILLISECOND = dt.timedelta(milliseconds=1)


def dumps(value: Any, *, keywordize_keys: bool = True, verbose: bool = False) -> str:
    """``value`` as transit JSON; raises :class:`PackError` for what transit cannot carry."""
    return _Writer(keywordize_keys, verbose).top(value)


def loads(text: str | bytes) -> Any:
    """One transit JSON value (``:json`` or ``:json-verbose``); raises :class:`UnpackError`
    carrying ``text`` when it cannot."""
    if type(text) is str:
        return read(text, text)
    if isinstance(text, bytes | bytearray):
        text = bytes(text)
        try:
            source = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnpackError(f"transit must be UTF-8 text: {exc}", text) from exc
    else:
        source = text
    return read(source, text)


_encode_string: Callable[[str], str] = json.encoder.encode_basestring
_OTHER_CONTROLS = re.compile("[\\x00-\\x07\\x0b\\x0e-\\x1f]")
_JACKSON_ESCAPES = str.maketrans(
    {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\f": "\\f", "\b": "\\b"}
    | {chr(c): f"\\u{c:04X}" for c in (*range(8), 11, *range(14, 32))}
)


def _json_string(s: str) -> str:
    """``s`` as Jackson writes a JSON string: short escapes, other controls as \\u00XX."""
    out = _encode_string(s)
    if "\\u" in out and _OTHER_CONTROLS.search(s):  # the json module writes \\u001f
        return '"' + s.translate(_JACKSON_ESCAPES) + '"'
    return out


class _Writer:
    """One message: the write cache (none when verbose) and the options."""

    __slots__ = ("cache", "keywordize", "verbose")

    def __init__(self, keywordize: bool, verbose: bool) -> None:
        self.keywordize = keywordize
        self.verbose = verbose
        self.cache: dict[str, str] | None = None if verbose else {}

    def top(self, x: Any) -> str:
        """A scalar alone is quoted, ``["~#'", x]``, as transit's writers quote it."""
        if isinstance(x, list | tuple | Mapping | set | frozenset) or (
            isinstance(x, TaggedValue) and len(x.tag) != 1
        ):
            return self.value(x)
        if isinstance(x, Fraction) and x.denominator != 1:
            return self.value(x)
        if self.verbose:
            return '{"~#\'":' + self.value(x) + "}"
        return '["~#\'",' + self.value(x) + "]"

    def out(self, s: str, as_key: bool) -> str:
        """The string ``s`` (tag and escape applied) as written: in full or as its code."""
        cache = self.cache
        if cache is not None and len(s) > 3 and (as_key or (s[0] == "~" and s[1] in ":$#")):
            code = cache.get(s)
            if code is not None:
                return '"' + code + '"'
            if len(cache) == len(_CODES):
                cache.clear()
            cache[s] = _CODES[len(cache)]
        out = _encode_string(s)
        return out if "\\u" not in out else _json_string(s)

    def value(self, x: Any) -> str:
        t = type(x)
        if t is str:
            return _json_string(_escape(x))
        if t is Keyword:
            return self.out("~:" + x, False)
        if t is int:
            return repr(x) if -_JSON_INT <= x <= _JSON_INT else self.out(_integer(x), False)
        if t is dict:
            return self.map(x)
        if t is list:
            return self.array(x)
        if x is None:
            return "null"
        if x is True:
            return "true"
        if x is False:
            return "false"
        if t is float:
            return java_double(x) if math.isfinite(x) else self.out(_special(x), False)
        return self.other(x)

    def array(self, xs: Any) -> str:
        parts: list[str] = []
        append = parts.append
        for x in xs:  # the common scalars inline: this loop is most of the time spent
            t = type(x)
            if t is str and x[:1] not in ("~", "^", "`"):
                append(_json_string(x))
            elif t is Keyword:
                append(self.out("~:" + x, False))
            elif t is int and -_JSON_INT <= x <= _JSON_INT:
                append(repr(x))
            elif t is dict:
                append(self.map(x))
            elif t is list:
                append(self.array(x))
            else:
                append(self.value(x))
        return "[" + ",".join(parts) + "]"

    def map(self, m: Mapping[Any, Any]) -> str:
        if not all(type(k) in _STRINGABLE or _stringable(k) for k in m):
            return self.tagged("cmap", lambda: self.array(self.cmap_items(m)))
        verbose = self.verbose
        parts: list[str] = [] if verbose else ['"^ "']
        append = parts.append
        for k, v in m.items():
            key = self.key(k)
            t = type(v)
            if t is str and v[:1] not in ("~", "^", "`"):
                value = _json_string(v)
            elif t is int and -_JSON_INT <= v <= _JSON_INT:
                value = repr(v)
            elif t is Keyword:
                value = self.out("~:" + v, False)
            elif v is True or v is False:
                value = "true" if v else "false"
            elif t is list:
                value = self.array(v)
            elif t is dict:
                value = self.map(v)
            else:
                value = self.value(v)
            if verbose:
                append(key + ":" + value)
            else:
                append(key)
                append(value)
        return "{" + ",".join(parts) + "}" if verbose else "[" + ",".join(parts) + "]"

    def cmap_items(self, m: Mapping[Any, Any]) -> list[Any]:
        """A cmap's keys and values in turn; its keys are written as values, keywordized."""
        items: list[Any] = []
        for k, v in m.items():
            if type(k) is str and self.keywordize and is_keyword_name(k):
                k = Keyword(k)
            items += (k, v)
        return items

    def key(self, k: Any) -> str:
        t = type(k)
        if t is Keyword:
            return self.out("~:" + k, True)
        if t is str and self.keywordize:
            form = _keywordized.get(k)
            if form is None:
                form = "~:" + k if is_keyword_name(k) else _escape(k)
                if len(_keywordized) < _KEYWORDIZED_LIMIT and len(k) <= 64:
                    _keywordized[k] = form
            return self.out(form, True)
        if isinstance(k, str) and not isinstance(k, Keyword | Char):
            return self.out(_escape(k), True)
        if k is None:
            return self.out("~_", True)
        if t is bool:
            return self.out("~?t" if k else "~?f", True)
        if isinstance(k, int | Fraction):
            return self.out(_integer(int(k)), True)
        if isinstance(k, float):
            return self.out("~d" + java_double(k) if math.isfinite(k) else _special(k), True)
        return self.out(self.scalar(k), True)

    def tagged(self, tag: str, rep: Callable[[], str]) -> str:
        """``["~#tag", rep]``: the tag is written (and cached) before its representation."""
        if self.verbose:
            head = self.out("~#" + tag, True)
            return "{" + head + ":" + rep() + "}"
        head = self.out("~#" + tag, False)
        return "[" + head + "," + rep() + "]"

    def other(self, x: Any) -> str:
        """The types less common on the wire, subclasses included."""
        if isinstance(x, str | int | float):
            if isinstance(x, Keyword):
                return self.out("~:" + x, False)
            if isinstance(x, Char):
                return self.out("~c" + x, False)
            for base in (str, bool, int, float):
                if isinstance(x, base):
                    return self.value(base(x))
        if isinstance(x, list | ImmutableVector):
            return self.array(x)
        if isinstance(x, tuple):
            return self.tagged("list", lambda: self.array(x))
        if isinstance(x, Mapping):
            return self.map(x)
        if isinstance(x, set | frozenset):
            return self.tagged("set", lambda: self.array(x))
        if isinstance(x, Fraction):
            if x.denominator == 1:
                return self.value(x.numerator)
            return self.tagged("ratio", lambda: f'["~n{x.numerator}","~n{x.denominator}"]')
        if isinstance(x, TaggedValue) and not (len(x.tag) == 1 and isinstance(x.rep, str)):
            return self.tagged(x.tag, lambda: self.value(x.rep))
        return self.out(self.scalar(x), False)

    def scalar(self, x: Any) -> str:
        """The string form of a scalar with a one-letter tag (no escape, no cache yet)."""
        if isinstance(x, Symbol):
            return "~$" + x.name
        if isinstance(x, Char):
            return "~c" + x
        if isinstance(x, uuid.UUID):
            return f"~u{x}"
        if isinstance(x, dt.datetime):
            if x.tzinfo is None:
                x = x.replace(tzinfo=dt.UTC)
            ms = (x - _EPOCH) // _MILLISECOND
            if self.verbose:
                d = _EPOCH + ms * _MILLISECOND
                return (
                    f"~t{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:"
                    f"{d.second:02d}.{d.microsecond // 1000:03d}Z"
                )
            return f"~m{ms}"
        if isinstance(x, Decimal):
            return f"~f{x}"
        if isinstance(x, bytes | bytearray | memoryview):
            return "~b" + base64.b64encode(bytes(x)).decode("ascii")
        if isinstance(x, TaggedValue) and len(x.tag) == 1 and isinstance(x.rep, str):
            return "~" + x.tag + x.rep
        raise PackError(f"transit cannot write a {type(x).__name__}: {x!r}")


_STRINGABLE = frozenset(
    {str, Keyword, StringKey, Char, Symbol, int, bool, float, type(None), uuid.UUID}
    | {dt.datetime, Decimal, bytes}
)


def _stringable(k: Any) -> bool:
    """Whether a map key has a one-letter tag, so the map can be written as ``"^ "``."""
    if isinstance(k, TaggedValue):
        return len(k.tag) == 1 and isinstance(k.rep, str)
    if isinstance(k, Fraction):
        return k.denominator == 1
    return isinstance(k, str | int | float | Symbol | uuid.UUID | dt.datetime | Decimal | bytes)


def _escape(s: str) -> str:
    """A string as transit writes it: with a ``~`` before a leading ``~``, ``^`` or ```."""
    return "~" + s if s[:1] in ("~", "^", "`") else s


def _integer(n: int) -> str:
    return f"~i{n}" if _LONG_MIN <= n <= _LONG_MAX else f"~n{n}"


def _special(x: float) -> str:
    return "~zNaN" if math.isnan(x) else "~zINF" if x > 0 else "~z-INF"
