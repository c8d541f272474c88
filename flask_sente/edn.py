"""edn as Clojure reads and prints it, with a documented Python mapping.

Both directions are flask_sente's own, in pure Python: reading in
:mod:`flask_sente.edn_reader` (what ``clojure.edn/read-string`` reads), writing here,
exactly as Clojure's ``pr-str`` prints, since a flask_sente server must be byte-for-byte
indistinguishable from a Sente server.

=====================  ==============================  ==============================
edn                    Python (read)                   Python (written as that edn)
=====================  ==============================  ==============================
``nil true false``     ``None True False``
``42`` ``42N``         ``int``                         ``int`` (``N`` past 64 bits)
``1.5`` ``1.5M``       ``float`` / ``Decimal``
``1/3``                ``Fraction``
``"s"``                ``str``; keys ``StringKey``
``\\a``                 ``Char`` (a ``str``)
``:ns/name``           ``Keyword`` (a ``str``)         ``Keyword``; also ``str`` map keys
``sym``                ``Symbol``
``[...]``              ``list``                        ``list``
``(...)``              ``tuple``                       ``tuple``
``{...}``              ``dict``                        ``dict`` and other mappings
``#{...}``             ``frozenset``                   ``set`` / ``frozenset``
``#uuid "..."``        ``uuid.UUID``
``#inst "..."``        aware ``datetime`` in UTC       ``datetime`` (naive = UTC)
=====================  ==============================  ==============================

With ``keywordize_keys`` (the default), plain ``str`` map keys that are valid keyword
names are written as keywords, because Clojure programs key their maps by keywords.

A string map key is read as a :class:`~flask_sente.values.StringKey`, a ``str`` that
``keywordize_keys`` leaves alone, so a map read and written back keeps its string keys.

Map keys and set members must be hashable, so there a vector is read as an
``ImmutableVector`` (a ``tuple`` written back as a vector) and a map as an
``ImmutableDict``. Metadata (``^{...} x``) is dropped, as ``pr-str`` drops it. Tags other
than ``#inst`` and ``#uuid`` are read by the functions given to :func:`add_tag`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

from .edn_reader import MAX_DEPTH, read
from .edn_scalars import CHAR_NAMES, TAGS, is_name
from .errors import ConfigError, PackError, UnpackError
from .values import Char, ImmutableVector, Keyword, Symbol, is_keyword_name

__all__ = [
    "MAX_DEPTH",
    "Char",
    "Keyword",
    "Symbol",
    "add_tag",
    "dumps",
    "inst_text",
    "is_keyword_name",
    "java_double",
    "loads",
    "remove_tag",
]

_STRING_ESCAPES = str.maketrans(
    {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\f": "\\f", "\b": "\\b"}
)
_CHAR_NAMES = {char: name for name, char in CHAR_NAMES.items()}
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def dumps(value: Any, *, keywordize_keys: bool = True) -> str:
    """Print ``value`` as Clojure's ``pr-str`` would print the equivalent Clojure data."""
    return _value(value, keywordize_keys)


def loads(text: str | bytes) -> Any:
    """Read one edn value; raises :class:`UnpackError` carrying ``text`` when it cannot."""
    if type(text) is str:
        return read(text, text)
    if isinstance(text, bytes | bytearray):
        text = bytes(text)
        try:
            source = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnpackError(f"edn must be UTF-8 text: {exc}", text) from exc
    else:
        source = text
    return read(source, text)


def add_tag(tag: str, reader: Callable[[Any], Any]) -> None:
    """Read ``#tag value`` as ``reader(value)`` from now on, in every thread.

    ``value`` is the Python value of the form after the tag; whatever ``reader`` raises
    becomes an :class:`UnpackError`. ``#inst`` and ``#uuid`` cannot be replaced.
    """
    if tag in ("inst", "uuid") or not is_name(tag) or tag.startswith(":"):
        raise ConfigError(f"{tag!r} cannot be an edn tag: use a symbol other than inst and uuid")
    TAGS[tag] = reader


def remove_tag(tag: str) -> None:
    """Forget the reader :func:`add_tag` gave ``tag``; ``#tag`` is an error again."""
    del TAGS[tag]


def _value(x: Any, kw: bool) -> str:
    """``x`` as edn; ``kw``: write plain ``str`` map keys that are keyword names as keywords."""
    t = type(x)
    if t is str:
        return _string(x)
    if t is Keyword:
        return ":" + x
    if t is int:
        return repr(x) if _LONG_MIN <= x <= _LONG_MAX else f"{x}N"
    if t is dict:
        return _map(x, kw)
    if t is list:
        return _seq(x, "[", "]", kw)
    if x is None:
        return "nil"
    if x is True:
        return "true"
    if x is False:
        return "false"
    if t is float:
        return java_double(x)
    return _other(x, kw)


def _seq(xs: Any, open_: str, close: str, kw: bool) -> str:
    parts: list[str] = []
    append = parts.append
    for x in xs:  # the common scalars inline: this loop is most of the time spent
        t = type(x)
        if t is str:
            s = _encode_string(x)
            append(s if "\\u" not in s else _string(x))
        elif t is Keyword:
            append(":" + x)
        elif t is int and _LONG_MIN <= x <= _LONG_MAX:
            append(repr(x))
        elif t is dict:
            append(_map(x, kw))
        elif t is list:
            append(_seq(x, "[", "]", kw))
        else:
            append(_value(x, kw))
    return open_ + " ".join(parts) + close


def _map(m: Mapping[Any, Any], kw: bool) -> str:
    parts: list[str] = []
    append = parts.append
    str_keys = _keywordized_keys if kw else _string_keys
    for k, v in m.items():
        t = type(k)
        key = str_keys.get(k) if t is str else _keyword_keys.get(k) if t is Keyword else None
        if key is None:
            key = _key(k, kw)
        t = type(v)
        if t is str:
            s = _encode_string(v)
            append(key + (s if "\\u" not in s else _string(v)))
        elif t is int and _LONG_MIN <= v <= _LONG_MAX:
            append(key + repr(v))
        elif t is Keyword:
            append(key + ":" + v)
        elif t is float and (1e-3 <= v < 1e7 or -1e7 < v <= -1e-3):
            append(key + repr(v))
        elif v is True:
            append(key + "true")
        elif v is False:
            append(key + "false")
        elif v is None:
            append(key + "nil")
        elif t is list:
            append(key + _seq(v, "[", "]", kw))
        elif t is dict:
            append(key + _map(v, kw))
        else:
            append(key + _value(v, kw))
    return "{" + ", ".join(parts) + "}"


def _key(k: Any, kw: bool) -> str:
    """A map key as written, with the space before its value; str and Keyword keys cached."""
    t = type(k)
    if t is Keyword or (kw and t is str and is_keyword_name(k)):
        key = ":" + k + " "
    else:
        key = _value(k, kw) + " "
    cache = (
        _keyword_keys
        if t is Keyword
        else (_keywordized_keys if kw else _string_keys)
        if t is str
        else None
    )
    if cache is not None and len(cache) < _KEYS_LIMIT and len(k) <= _CACHED_LENGTH:
        cache[k] = key
    return key


# Map keys as written, by key. Keyword("a") == "a", so Keywords and plain strings (with
# keywordize_keys on, and off) each have their own cache.
_keyword_keys: dict[str, str] = {}
_keywordized_keys: dict[str, str] = {}
_string_keys: dict[str, str] = {}
_KEYS_LIMIT = 4096
_CACHED_LENGTH = 64  # longer keys are not kept: a peer must not fill memory with them


def _string(s: str) -> str:
    """``s`` as pr-str prints it: only ``" \\`` and five control characters escaped."""
    out = _encode_string(s)  # the json module's C escaper escapes those alike
    if "\\u" in out and _OTHER_CONTROLS.search(s):  # ...but others as \\u00XX
        return '"' + s.translate(_STRING_ESCAPES) + '"'
    return out


_encode_string: Callable[[str], str] = json.encoder.encode_basestring
_OTHER_CONTROLS = re.compile("[\\x00-\\x07\\x0b\\x0e-\\x1f]")


def _other(x: Any, kw: bool) -> str:
    """The types less common on the wire, subclasses included."""
    if isinstance(x, Keyword):
        return ":" + x
    if isinstance(x, Char):
        return "\\" + _CHAR_NAMES.get(x, x)
    if isinstance(x, str):
        return _string(x)
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return _value(int(x), kw)
    if isinstance(x, float):
        return java_double(float(x))
    if isinstance(x, list | ImmutableVector):
        return _seq(x, "[", "]", kw)
    if isinstance(x, tuple):
        return _seq(x, "(", ")", kw)
    if isinstance(x, Mapping):
        return _map(x, kw)
    if isinstance(x, set | frozenset):
        return _seq(x, "#{", "}", kw)
    if isinstance(x, Symbol):
        return x.name
    if isinstance(x, uuid.UUID):
        return f'#uuid "{x}"'
    if isinstance(x, dt.datetime):
        return f'#inst "{inst_text(x)}"'
    if isinstance(x, Decimal):
        return f"{x}M"
    if isinstance(x, Fraction):
        return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"
    if isinstance(x, bytes | bytearray):
        raise PackError("edn cannot carry bytes; use a binary packer (msgpack) for them")
    raise PackError(f"edn cannot write a {type(x).__name__}: {x!r}")


def java_double(x: float) -> str:
    """Java's ``Double.toString`` (as of Java 19: the shortest digits that read back the
    same), scientific outside [1e-3, 1e7); edn's ``##NaN``, ``##Inf`` and ``##-Inf``."""
    if 1e-3 <= x < 1e7 or -1e7 < x <= -1e-3:
        return repr(x)  # Python's shortest repr is fixed-point in this range too
    if math.isnan(x):
        return "##NaN"
    if math.isinf(x):
        return "##Inf" if x > 0 else "##-Inf"
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    sign = "-" if x < 0 else ""
    shortest = Decimal(repr(abs(x)))
    digits = "".join(map(str, shortest.as_tuple().digits)).rstrip("0") or "0"
    exponent = shortest.adjusted()
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exponent}"


def inst_text(d: dt.datetime) -> str:
    """``d`` as Clojure prints an instant: UTC (naive taken as UTC), milliseconds."""
    if d.tzinfo is not None:
        d = d.astimezone(dt.UTC).replace(tzinfo=None)
    return (
        f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
        f".{d.microsecond // 1000:03d}-00:00"
    )
