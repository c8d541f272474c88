"""Reading Sente's MessagePack dialect: the extension type codes, and :func:`loads`.

The ``msgpack`` package's C parser reads the bytes, with this module's hooks for maps
(kept as pairs) and extension types; one walk over its result then applies Sente's
map-key cache in wire order and builds dicts and sets. The mapping is documented in
:mod:`flask_sente.msgpack`.
"""

from __future__ import annotations

import array
import sys
import uuid
from fractions import Fraction
from typing import Any

import msgpack
from msgpack import ExtType

from .errors import UnpackError
from .values import Char, ImmutableDict, Keyword, StringKey, Symbol

__all__ = ["KEY_CACHE_SIZE", "loads"]

KEYWORD, SYMBOL, CHAR, RATIO, SET = 0, 1, 2, 3, 4
INT_ARRAY, FLOAT_ARRAY, DOUBLE_ARRAY = 5, 6, 7
CACHED_KEY, UUID = 8, 9
TIMESTAMP = -1

#: How many distinct map keys one message numbers for the key cache.
KEY_CACHE_SIZE = 256

TYPED_ARRAYS = {"i": INT_ARRAY, "f": FLOAT_ARRAY, "d": DOUBLE_ARRAY}
_TYPECODES = {code: typecode for typecode, code in TYPED_ARRAYS.items()}
SWAP_BYTES = sys.byteorder == "little"


def loads(data: str | bytes) -> Any:
    """One MessagePack value; raises :class:`UnpackError` carrying ``data`` when it cannot.

    Zero bytes after the value are padding and ignored: Sente's ClojureScript client sends
    the whole backing buffer of its msgpack stream as an Ajax POST body, 1024 bytes or more
    of which the value fills the start (transcript finding F12). Any other byte after the
    value means a damaged or concatenated message, and is an error."""
    if isinstance(data, str):
        raise UnpackError(
            "msgpack is binary but a text message arrived: is the peer using a text packer, "
            "or sending text WebSocket frames?",
            data,
        )
    try:
        return _Reader().value(_parse_padded(data))
    except UnpackError as exc:
        raise UnpackError(str(exc), data) from None
    except RecursionError as exc:
        raise UnpackError("msgpack is nested too deeply", data) from exc
    except Exception as exc:  # the parser and the extension readers fail in many ways
        raise UnpackError(f"not valid msgpack: {exc!r}", data) from exc


class _Map(list[Any]):
    """A map's (key, value) pairs, in wire order, until the key cache can be applied."""

    __slots__ = ()


class _Set(list[Any]):
    """A set's members, in wire order, until the key cache can be applied."""

    __slots__ = ()


class _CachedKey:
    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


_CACHED_KEYS = tuple(_CachedKey(i) for i in range(KEY_CACHE_SIZE))
_PENDING = frozenset({list, _Map, _Set, _CachedKey, array.array})


def _parse_padded(data: bytes) -> Any:
    """:func:`_parse` of a message that may be followed by zero padding."""
    try:
        return _parse(data)
    except msgpack.ExtraData as extra:
        if any(extra.extra):
            raise UnpackError(
                f"{len(extra.extra)} byte(s) follow the msgpack value and are not zero "
                "padding: a damaged message, or two in one",
                data,
            ) from None
        return extra.unpacked


def _parse(data: bytes) -> Any:
    """The wire value, with maps, sets and cached keys still to be resolved by a _Reader."""
    return msgpack.unpackb(
        data,
        raw=False,
        strict_map_key=False,
        object_pairs_hook=_Map,
        ext_hook=_extension,
        timestamp=3,
    )


def _extension(code: int, data: bytes) -> Any:
    if code == KEYWORD:
        return Keyword(data.decode())
    if code == CACHED_KEY:
        if len(data) != 1:
            raise ValueError(f"a cached key reference holds 1 byte, not {len(data)}")
        return _CACHED_KEYS[data[0]]
    if code == UUID:
        return uuid.UUID(data.decode())
    if code == SET:
        members = _parse(data)
        if type(members) is not list:
            raise ValueError("a set must hold an array")
        return _Set(members)
    if code == SYMBOL:
        return Symbol(data.decode())
    if code == CHAR:
        return Char(data.decode()[0])
    if code == RATIO:
        unpacker = msgpack.Unpacker(raw=False)
        unpacker.feed(data)
        numerator, denominator = list(unpacker)
        if type(numerator) is not int or type(denominator) is not int:
            raise ValueError("a ratio must hold two ints")
        ratio = Fraction(numerator, denominator)
        return ratio.numerator if ratio.denominator == 1 else ratio
    if code in _TYPECODES:
        out = array.array(_TYPECODES[code])
        out.frombytes(data)
        if SWAP_BYTES:
            out.byteswap()
        return out
    if code >= 0:
        return ExtType(code, data)
    raise ValueError(f"unknown reserved extension type {code}")


class _Reader:
    """One unpack call: applies the key cache in wire order and builds dicts and sets."""

    __slots__ = ("keys",)

    def __init__(self) -> None:
        self.keys: list[Any] = []

    def value(self, x: Any, hashable: bool = False) -> Any:
        t = type(x)
        if t is list:
            if hashable:
                return tuple(self.value(v, True) for v in x)
            for i, v in enumerate(x):
                if type(v) in _PENDING:
                    x[i] = self.value(v)
            return x
        if t is _Map:
            return self.map(x, hashable)
        if t is _Set:
            return frozenset(self.value(v, True) for v in x)
        if t is _CachedKey:
            raise UnpackError("a cached key reference (ext 8) may only be a map key", b"")
        if t is array.array and hashable:
            return tuple(x)
        return x

    def map(self, pairs: _Map, hashable: bool) -> Any:
        keys = self.keys
        out = {}
        for k, v in pairs:
            t = type(k)
            if t is str or t is Keyword:
                if t is str:
                    k = StringKey(k)
                if len(keys) < KEY_CACHE_SIZE:
                    keys.append(k)
            elif t is _CachedKey:
                if k.index >= len(keys):
                    raise UnpackError(
                        f"cached key {k.index} is used before {len(keys)} keys were seen", b""
                    )
                k = keys[k.index]
            elif t in _PENDING:
                k = self.value(k, True)
            out[k] = self.value(v, hashable) if hashable or type(v) in _PENDING else v
        return ImmutableDict(out) if hashable else out
