"""Reading transit JSON (``:json`` and ``:json-verbose``) as transit-java and transit-js do.

The JSON itself is parsed by the standard library's C parser; one walk over the result then
applies transit's rules: ``~`` tags on strings, ``"^ "`` maps, ``["~#tag", rep]`` (verbose:
``{"~#tag": rep}``) tagged values, and the per-message read cache of ``^`` codes, filled
with every cacheable string as it is read, exactly as the writer filled its own. Nesting is
bounded by :data:`MAX_DEPTH`; whatever is wrong raises
:class:`~flask_sente.errors.UnpackError`.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from decimal import Decimal
from fractions import Fraction
from typing import Any

from .errors import UnpackError
from .values import Char, Keyword, StringKey, Symbol, TaggedValue, frozen

__all__ = ["MAX_DEPTH", "read"]

#: How deeply arrays and maps may nest in one message.
MAX_DEPTH = 256

_CACHE_DIGITS = 44
_CACHE_SIZE = _CACHE_DIGITS * _CACHE_DIGITS
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_SPECIAL_FLOATS = {"NaN": float("nan"), "INF": float("inf"), "-INF": float("-inf")}
# Keywords already read, by their transit string: most messages repeat the same few. Only
# short ones are kept, so that a peer cannot fill memory with them.
_keywords: dict[str, Keyword] = {}
_KEYWORDS_LIMIT = 4096


class _Pairs(list[tuple[str, Any]]):
    """A JSON object's members in order: a verbose map or tagged value, until decoded."""

    __slots__ = ()


class _Tag(str):
    """The tag of ``"~#tag"``, read where a tagged value's first element goes."""

    __slots__ = ()


class _Error(ValueError):
    pass


_parse_json = json.JSONDecoder(object_pairs_hook=_Pairs).raw_decode


def read(text: str, package: str | bytes) -> Any:
    """The first transit value in ``text``; ``package`` goes into any UnpackError."""
    start = len(text) - len(text.lstrip(" \t\n\r"))
    try:
        raw, _ = _parse_json(text, start)
    except json.JSONDecodeError as exc:
        raise UnpackError(f"not valid transit: {exc.msg} at position {exc.pos}", package) from None
    except RecursionError:
        raise UnpackError(f"transit nested more than {MAX_DEPTH} deep", package) from None
    try:
        return _Reader().value(raw, 0)
    except (_Error, ValueError, TypeError, ArithmeticError, IndexError) as exc:
        raise UnpackError(f"not valid transit: {exc}", package) from None


class _Reader:
    """One message: the read cache, as the writer filled its write cache."""

    __slots__ = ("cache",)

    def __init__(self) -> None:
        self.cache: list[Any] = []

    def value(self, x: Any, depth: int) -> Any:
        t = type(x)
        if t is str:
            return self.string(x, False)
        if t is list:
            if depth >= MAX_DEPTH:
                raise _Error(f"arrays and maps nest more than {MAX_DEPTH} deep")
            if x:
                first = x[0]
                if first == "^ ":
                    return self.map(x, 1, depth)
                if (
                    len(x) == 2
                    and type(first) is str
                    and first[:1] in ("~", "^")
                    and self.names_tag(first)
                ):
                    return self.tagged(self.string(first, False), x[1], depth)
            out: list[Any] = []
            append = out.append
            for v in x:  # strings and numbers inline: this loop is most of the time spent
                t = type(v)
                if t is str:
                    append(v if v[:1] not in "~^" else self.string(v, False))
                elif t is int or t is float or v is None or t is bool:
                    append(v)
                else:
                    append(self.value(v, depth + 1))
            return out
        if t is _Pairs:
            if depth >= MAX_DEPTH:
                raise _Error(f"arrays and maps nest more than {MAX_DEPTH} deep")
            if len(x) == 1 and self.names_tag(x[0][0]):
                return self.tagged(self.string(x[0][0], True), x[0][1], depth)
            return self.map([k for pair in x for k in pair], 0, depth)
        return x  # a number, true, false or null

    def names_tag(self, s: str) -> bool:
        """Whether ``s``, first in a 2-array (or a 1-key object), is a tag: ``~#tag`` or a
        cache code of one."""
        if s[:2] == "~#":
            return True
        if s[:1] == "^" and s != "^ ":
            return type(self.cached(s)) is _Tag
        return False

    def string(self, s: str, as_key: bool) -> Any:
        if s[:2] == "~:":  # a keyword: the commonest tagged string by far
            value = _keywords.get(s)
            if value is None:
                value = Keyword(s[2:])
                if len(_keywords) < _KEYWORDS_LIMIT and len(s) <= 66:
                    _keywords[s] = value
            if len(s) > 3:
                self.remember(value)
            return value
        if len(s) > 3 and (as_key or (s[0] == "~" and s[1] in "$#")):
            value = self.parse(s, as_key)
            self.remember(value)
            return value
        if s[:1] == "^" and s != "^ ":
            return self.cached(s)
        return self.parse(s, as_key)

    def remember(self, value: Any) -> None:
        cache = self.cache
        if len(cache) == _CACHE_SIZE:
            cache.clear()
        cache.append(value)

    def cached(self, code: str) -> Any:
        if len(code) == 2:
            index = ord(code[1]) - 48
        elif len(code) == 3:
            index = (ord(code[1]) - 48) * _CACHE_DIGITS + ord(code[2]) - 48
        else:
            raise _Error(f"{code!r} is not a cache code")
        if not 0 <= index < len(self.cache):
            raise _Error(f"the cache code {code!r} refers to nothing read yet")
        return self.cache[index]

    def parse(self, s: str, as_key: bool) -> Any:
        """A string's value: ``~`` starts a tag (or escapes a ``~ ^ ``` at the start)."""
        if s[:1] != "~":
            return StringKey(s) if as_key else s
        tag, rep = s[1:2], s[2:]
        if not tag:
            raise _Error("a lone ~ is no transit string (the string ~ is written ~~)")
        if tag == ":":
            return Keyword(rep)
        if tag in "~^`":
            return StringKey(s[1:]) if as_key else s[1:]
        if tag == "#":
            return _Tag(rep)
        reader = _SCALARS.get(tag)
        if reader is None:
            return TaggedValue(tag, rep)
        return reader(rep)

    def map(self, items: list[Any], start: int, depth: int) -> dict[Any, Any]:
        if (len(items) - start) & 1:
            raise _Error("a map has a key without a value")
        out: dict[Any, Any] = {}
        n = 0
        for i in range(start, len(items), 2):
            k, v = items[i], items[i + 1]
            key = self.string(k, True) if type(k) is str else frozen(self.value(k, depth + 1))
            if type(key) is _Tag:
                raise _Error(f"a tag cannot be a map key: ~#{key}")
            t = type(v)
            if t is str:
                v = v if v[:1] not in "~^" else self.string(v, False)
            elif t is list or t is _Pairs:
                v = self.value(v, depth + 1)
            out[key] = v
            n += 1
        if len(out) != n:
            raise _Error(_DUPLICATE.format("map keys"))
        return out

    def tagged(self, tag: Any, rep: Any, depth: int) -> Any:
        if tag == "'":
            return self.value(rep, depth + 1)
        value = self.value(rep, depth + 1)
        if tag == "set":
            members = frozenset(map(frozen, _array(tag, value)))
            if len(members) != len(value):
                raise _Error(_DUPLICATE.format("set members"))
            return members
        if tag == "list":
            return tuple(_array(tag, value))
        if tag == "cmap":
            items = _array(tag, value)
            if len(items) & 1:
                raise _Error("a cmap has a key without a value")
            out = {frozen(items[i]): items[i + 1] for i in range(0, len(items), 2)}
            if len(out) * 2 != len(items):
                raise _Error(_DUPLICATE.format("map keys"))
            return out
        if tag == "ratio":
            numerator, denominator = _array(tag, value)
            if type(numerator) is not int or type(denominator) is not int:
                raise _Error(f"a ratio holds two integers, not {value!r}")
            ratio = Fraction(numerator, denominator)
            return ratio.numerator if ratio.denominator == 1 else ratio
        return TaggedValue(str(tag), frozen(value))


_DUPLICATE = 'duplicate {} (or ones Python takes as equal, such as :a and "a", or 1 and true)'


def _array(tag: str, value: Any) -> list[Any]:
    if type(value) is not list:
        raise _Error(f"a {tag} holds an array, not {value!r}")
    return value


def _integer(rep: str) -> int:
    if not rep.lstrip("-").isdigit() or not rep.isascii():
        raise _Error(f"{rep!r} is not an integer")
    return int(rep)


def _instant_ms(rep: str) -> dt.datetime:
    return _EPOCH + dt.timedelta(milliseconds=_integer(rep))


def _instant_iso(rep: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(rep.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _boolean(rep: str) -> bool:
    if rep not in ("t", "f"):
        raise _Error(f"~?{rep} is neither ~?t nor ~?f")
    return rep == "t"


def _null(rep: str) -> None:
    if rep:
        raise _Error(f"~_{rep} is not null")


def _special(rep: str) -> float:
    if rep not in _SPECIAL_FLOATS:
        raise _Error(f"~z{rep} is none of ~zNaN, ~zINF, ~z-INF")
    return _SPECIAL_FLOATS[rep]


def _float(rep: str) -> float:
    if rep in _SPECIAL_FLOATS or not rep.isascii() or "_" in rep:
        raise _Error(f"~d{rep} is not a double")
    return float(rep)


_SCALARS: dict[str, Any] = {
    "$": Symbol,
    "i": _integer,
    "n": _integer,
    "d": _float,
    "f": Decimal,
    "u": uuid.UUID,
    "m": _instant_ms,
    "t": _instant_iso,
    "?": _boolean,
    "_": _null,
    "z": _special,
    "c": Char,
    "b": lambda rep: base64.b64decode(rep, validate=True),
}
