"""Sente's MessagePack dialect (``taoensso.msgpack``), on top of the ``msgpack`` package.

Standard MessagePack, plus the extension types and the map-key cache Sente's msgpack
packer uses, written byte for byte as Sente 1.22 writes them:

=========================  ====================================  ==========================
MessagePack                Python (read)                         Python (written as that)
=========================  ====================================  ==========================
nil, true, false           ``None True False``
int                        ``int``                               ``int`` (-2**63 .. 2**64-1)
float32, float64           ``float``                             ``float`` (float64);
                                                                 ``Decimal`` (as a float64)
str                        ``str``                               ``str``
bin                        ``bytes``                             ``bytes``, ``bytearray``,
                                                                 ``memoryview``
array                      ``list``                              ``list``, ``tuple``
map                        ``dict``                              ``dict``, any ``Mapping``
ext 0 keyword              ``Keyword``                           ``Keyword``; ``str`` map keys
ext 1 symbol               ``Symbol``                            ``Symbol``
ext 2 char                 ``Char``                              ``Char``
ext 3 ratio                ``Fraction`` (``int`` if whole)       ``Fraction``
ext 4 set                  ``frozenset``                         ``set``, ``frozenset``
ext 5/6/7 typed arrays     ``array.array``, ``'i' 'f' 'd'``      the same three typecodes
ext -1 timestamp           aware ``datetime`` in UTC             ``datetime`` (naive = UTC)
ext 9 uuid                 ``uuid.UUID``                         ``UUID``
ext 8                      the map-key cache (never a value)
other ext 0..127           ``msgpack.ExtType``                   ``ExtType``
=========================  ====================================  ==========================

* Ints use the smallest encoding, except that a positive int above ``0xffffffff`` is written
  as int64 (``d3``), as Sente writes it; only ints from 2**63 to 2**64-1 use uint64.
* With ``keywordize_keys`` (the default), plain ``str`` map keys that are valid keyword
  names are written as keywords, as with the edn packer.
* Within one message, the first 256 distinct keyword or string map keys are numbered in
  order of first appearance; each later occurrence of one is written ``d4 08 <index>``.
* A timestamp is always the 12-byte form (``c7 0c ff``, u32 nanoseconds, i64 seconds);
  the 4- and 8-byte forms are read too. Python keeps microseconds, so nanoseconds below
  that are dropped on reading.
* Typed arrays are big-endian, as Sente on the JVM writes them. (Sente's ClojureScript
  side writes them in the platform's order, usually little-endian.)

Map keys and set members must be hashable, so there an array is read as a ``tuple``, a map
as a read-only mapping and a typed array as a ``tuple``, as the edn packer does.

Reading (:mod:`flask_sente.msgpack_reader`) uses the ``msgpack`` package's C parser, then
one walk over its result applies the key cache and builds dicts and sets; a ``str`` map key
is read as a :class:`~flask_sente.values.StringKey`, so that it is written back as a string.
Writing is done here: the ``msgpack`` package writes large positive ints and timestamps
differently from Sente, and cannot apply the key cache.
"""

from __future__ import annotations

import array
import datetime as dt
import functools
import struct
import uuid
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

from msgpack import ExtType

from .errors import PackError
from .msgpack_reader import (
    CACHED_KEY,
    CHAR,
    KEY_CACHE_SIZE,
    KEYWORD,
    RATIO,
    SET,
    SWAP_BYTES,
    SYMBOL,
    TIMESTAMP,
    TYPED_ARRAYS,
    UUID,
    loads,
)
from .values import Char, Keyword, Symbol, is_keyword_name

__all__ = ["KEY_CACHE_SIZE", "dumps", "loads"]

_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_cached_keyword_name = functools.lru_cache(maxsize=4096)(is_keyword_name)
_CACHED_LENGTH = 64  # longer names are not kept: a peer must not fill memory with them


def _keyword_name(s: str) -> bool:
    return _cached_keyword_name(s) if len(s) <= _CACHED_LENGTH else is_keyword_name(s)


def dumps(value: Any, *, keywordize_keys: bool = True) -> bytes:
    """``value`` in Sente's MessagePack; raises :class:`PackError` for what it cannot write."""
    writer = _Writer(keywordize_keys)
    writer.value(value)
    return b"".join(writer.out)


# ---------------------------------------------------------------------------- writing

_POSITIVE_FIXINTS = tuple(bytes([n]) for n in range(128))
_NEGATIVE_FIXINTS = tuple(bytes([n & 0xFF]) for n in range(-32, 0))
_FIXSTRS = tuple(bytes([0xA0 | n]) for n in range(32))
_FIXARRAYS = tuple(bytes([0x90 | n]) for n in range(16))
_FIXMAPS = tuple(bytes([0x80 | n]) for n in range(16))
_FIXEXTS = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}
_CACHE_REFS = tuple(bytes([0xD4, CACHED_KEY, n]) for n in range(KEY_CACHE_SIZE))
_U8, _U16, _U32 = struct.Struct(">BB"), struct.Struct(">BH"), struct.Struct(">BI")
_I8, _I16, _I32 = struct.Struct(">Bb"), struct.Struct(">Bh"), struct.Struct(">Bi")
_S64, _Q64, _F64 = struct.Struct(">Bq"), struct.Struct(">BQ"), struct.Struct(">Bd")
_NANOS_SECONDS = struct.Struct(">Iq")


def _int(n: int) -> bytes:
    if 0 <= n < 128:
        return _POSITIVE_FIXINTS[n]
    if n < 0:
        if n >= -32:
            return _NEGATIVE_FIXINTS[n + 32]
        if n >= -0x80:
            return _I8.pack(0xD0, n)
        if n >= -0x8000:
            return _I16.pack(0xD1, n)
        if n >= -0x8000_0000:
            return _I32.pack(0xD2, n)
        if n >= _INT64_MIN:
            return _S64.pack(0xD3, n)
    elif n <= 0xFF:
        return _U8.pack(0xCC, n)
    elif n <= 0xFFFF:
        return _U16.pack(0xCD, n)
    elif n <= 0xFFFF_FFFF:
        return _U32.pack(0xCE, n)
    elif n <= _INT64_MAX:
        return _S64.pack(0xD3, n)  # int64, not uint64, as Sente writes it
    elif n <= _UINT64_MAX:
        return _Q64.pack(0xCF, n)
    raise PackError(f"msgpack cannot write {n}: ints must be within -2**63 .. 2**64-1")


def _sized(n: int, fixed: tuple[bytes, ...], code8: int | None, code16: int) -> bytes:
    """The header of a str (code8 0xd9), bin (0xc4) or array/map (no 8-bit form) of n items."""
    if n < len(fixed):
        return fixed[n]
    if code8 is not None and n <= 0xFF:
        return _U8.pack(code8, n)
    if n <= 0xFFFF:
        return _U16.pack(code16, n)
    return _U32.pack(code16 + 1, n)


def _str(s: str) -> bytes:
    data = s.encode()
    n = len(data)
    return (_FIXSTRS[n] if n < 32 else _sized(n, (), 0xD9, 0xDA)) + data


def _bin(data: bytes) -> bytes:
    return _sized(len(data), (), 0xC4, 0xC5) + data


def _ext(code: int, data: bytes) -> bytes:
    n = len(data)
    fixext = _FIXEXTS.get(n)
    if fixext is not None:
        head = bytes([fixext, code & 0xFF])
    elif n <= 0xFF:
        head = bytes([0xC7, n, code & 0xFF])
    elif n <= 0xFFFF:
        head = _U16.pack(0xC8, n) + bytes([code & 0xFF])
    else:
        head = _U32.pack(0xC9, n) + bytes([code & 0xFF])
    return head + data


def _keyword(name: str) -> bytes:
    return _cached_keyword(name) if len(name) <= _CACHED_LENGTH else _ext(KEYWORD, name.encode())


@functools.lru_cache(maxsize=4096)
def _cached_keyword(name: str) -> bytes:
    return _ext(KEYWORD, name.encode())


class _Writer:
    """One pack call: writes into ``out`` and numbers map keys for the key cache."""

    __slots__ = ("keyword_keys", "keywordize", "n_keys", "out", "string_keys")

    def __init__(self, keywordize: bool) -> None:
        self.keywordize = keywordize
        self.out: list[bytes] = []
        self.keyword_keys: dict[str, int] = {}
        self.string_keys: dict[str, int] = {}
        self.n_keys = 0

    def value(self, x: Any) -> None:
        t = type(x)
        if t is str:
            self.out.append(_str(x))
        elif t is int:
            self.out.append(_int(x))
        elif t is dict:
            self.map(x)
        elif t is list or t is tuple:
            self.seq(x)
        elif x is None:
            self.out.append(b"\xc0")
        elif t is bool:
            self.out.append(b"\xc3" if x else b"\xc2")
        elif t is float:
            self.out.append(_F64.pack(0xCB, x))
        elif t is Keyword:
            self.out.append(_keyword(x))
        elif t is bytes:
            self.out.append(_bin(x))
        elif t is ExtType:
            self.out.append(_ext(x.code, x.data))
        elif isinstance(x, list | tuple):
            self.seq(x)
        elif isinstance(x, Mapping):
            self.map(x)
        else:
            self.out.append(self.other(x))

    def seq(self, xs: Any) -> None:
        out = self.out
        out.append(_sized(len(xs), _FIXARRAYS, None, 0xDC))
        for x in xs:  # strings and ints inline: this loop is most of the time spent
            t = type(x)
            if t is str:
                out.append(_str(x))
            elif t is int:
                out.append(_int(x))
            else:
                self.value(x)

    def map(self, m: Mapping[Any, Any]) -> None:
        out = self.out
        out.append(_sized(len(m), _FIXMAPS, None, 0xDE))
        for k, v in m.items():
            self.key(k)
            t = type(v)
            if t is str:
                out.append(_str(v))
            elif t is int:
                out.append(_int(v))
            else:
                self.value(v)

    def key(self, k: Any) -> None:
        t = type(k)
        if t is str:
            keyword = self.keywordize and _keyword_name(k)
        elif isinstance(k, Keyword):
            keyword = True
        elif isinstance(k, str) and not isinstance(k, Char):
            keyword = False
        else:
            self.value(k)
            return
        table = self.keyword_keys if keyword else self.string_keys
        index = table.get(k)
        if index is not None:
            self.out.append(_CACHE_REFS[index])
            return
        if self.n_keys < KEY_CACHE_SIZE:
            table[k] = self.n_keys
            self.n_keys += 1
        self.out.append(_keyword(str(k)) if keyword else _str(k))

    def nested(self, *values: Any) -> bytes:
        """``values`` packed one after the other, for an extension's payload."""
        out, self.out = self.out, []
        try:
            for x in values:
                self.value(x)
            return b"".join(self.out)
        finally:
            self.out = out

    def other(self, x: Any) -> bytes:
        if isinstance(x, Keyword):
            return _keyword(str(x))
        if isinstance(x, Char):
            return _ext(CHAR, x.encode())
        if isinstance(x, str):
            return _str(x)
        if isinstance(x, float):
            return _F64.pack(0xCB, x)
        if isinstance(x, int):
            return _int(int(x))
        if isinstance(x, set | frozenset):
            return _ext(SET, self.nested(list(x)))
        if isinstance(x, Symbol):
            return _ext(SYMBOL, x.name.encode())
        if isinstance(x, uuid.UUID):
            return _ext(UUID, str(x).encode())
        if isinstance(x, dt.datetime):
            return _timestamp(x)
        if isinstance(x, Fraction):
            if x.denominator == 1:
                return _int(x.numerator)
            return _ext(RATIO, self.nested(x.numerator, x.denominator))
        if isinstance(x, Decimal):
            return _F64.pack(0xCB, float(x))
        if isinstance(x, bytearray | memoryview):
            return _bin(bytes(x))
        if isinstance(x, array.array):
            return _typed_array(x)
        raise PackError(f"msgpack cannot write a {type(x).__name__}: {x!r}")


def _timestamp(d: dt.datetime) -> bytes:
    delta = (d if d.tzinfo is not None else d.replace(tzinfo=dt.UTC)) - _EPOCH
    seconds = delta.days * 86400 + delta.seconds
    return _ext(TIMESTAMP, _NANOS_SECONDS.pack(delta.microseconds * 1000, seconds))


def _typed_array(a: array.array[Any]) -> bytes:
    code = TYPED_ARRAYS.get(a.typecode)
    if code is None:
        raise PackError(
            f"msgpack writes array.array('i'), ('f') and ('d') as Sente's int, float and "
            f"double arrays, not array({a.typecode!r}): convert it, or send a list"
        )
    if SWAP_BYTES:
        a = array.array(a.typecode, a)
        a.byteswap()
    return _ext(code, a.tobytes())
