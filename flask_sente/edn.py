"""edn as Clojure reads and prints it, with a documented Python mapping.

Reading uses ``edn_format``. Writing is done here, because ``edn_format.dumps`` does not
print what Clojure's ``pr-str`` prints (map separators, string escapes, doubles), and a
flask_sente server must be byte-for-byte indistinguishable from a Sente server.

=====================  ==============================  ==============================
edn                    Python (read)                   Python (written as that edn)
=====================  ==============================  ==============================
``nil true false``     ``None True False``
``42`` ``42N``         ``int``                         ``int`` (``N`` past 64 bits)
``1.5`` ``1.5M``       ``float`` / ``Decimal``
``1/3``                ``Fraction``
``"s"``                ``str``
``\\a``                ``Char`` (a ``str``)
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

Map keys and set members must be hashable, so there a vector is read as a ``tuple`` and a
map as a read-only ``Mapping``; Clojure compares ``[1 2]`` and ``(1 2)`` equal. Metadata
(``^{...} x``) is dropped, as ``pr-str`` drops it.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import threading
import uuid
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

import edn_format
import ply.lex
import ply.yacc
from edn_format import edn_lex, edn_parse
from edn_format.edn_lex import MetadataValue

from .errors import PackError, UnpackError
from .values import Char, ImmutableDict, Keyword, Symbol, is_keyword_name

__all__ = ["Char", "Keyword", "Symbol", "dumps", "is_keyword_name", "loads"]

_STRING_ESCAPES = str.maketrans(
    {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\f": "\\f", "\b": "\\b"}
)
_CHAR_NAMES = {
    "\n": "newline",
    " ": "space",
    "\t": "tab",
    "\b": "backspace",
    "\f": "formfeed",
    "\r": "return",
}
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def dumps(value: Any, *, keywordize_keys: bool = True) -> str:
    """Print ``value`` as Clojure's ``pr-str`` would print the equivalent Clojure data."""
    out: list[str] = []
    _write(value, out, keywordize_keys)
    return "".join(out)


def loads(text: str | bytes) -> Any:
    """Read one edn value; raises :class:`UnpackError` carrying ``text`` when it cannot."""
    if isinstance(text, bytes | bytearray):
        text = bytes(text)
        try:
            source = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnpackError(f"edn must be UTF-8 text: {exc}", text) from exc
    else:
        source = text
    try:
        return _from_edn_format(_parse(_fix_char_literals(source)))
    except RecursionError as exc:
        raise UnpackError("edn is nested too deeply", text) from exc
    except Exception as exc:  # edn_format fails in many ways on hostile input
        raise UnpackError(f"not valid edn: {exc}", text) from exc


class _Reader(threading.local):
    """edn_format's ply parser and lexer, built once per thread.

    ``edn_format.loads`` rebuilds both on every call, which costs three quarters of its time.
    """

    def __init__(self) -> None:
        self.parser = ply.yacc.yacc(
            module=edn_parse, debug=False, write_tables=False, errorlog=ply.yacc.NullLogger()
        )
        self.lexer = ply.lex.lex(module=edn_lex, reflags=re.UNICODE, errorlog=ply.lex.NullLogger())


_reader = _Reader()


def _parse(text: str) -> Any:
    values = _reader.parser.parse(text, lexer=_reader.lexer)
    return values[0] if values else None


# Character literals Clojure prints that edn_format's lexer cannot read: the long names
# \backspace and \formfeed, and characters that are neither printable ASCII nor word
# characters, such as \€ or a raw control character.
_ODD_CHAR = re.compile(r"\\(?:backspace|formfeed|[^!-~\w])")
_CHAR_TOKEN = re.compile(r'\\(backspace|formfeed|[^!-~\w])|\\.|"(?:[^"\\]|\\.)*"', re.DOTALL)
_CHAR_CODES = {"backspace": "\\u0008", "formfeed": "\\u000c"}


def _fix_char_literals(text: str) -> str:
    """Rewrite the character literals edn_format cannot read as ``\\uXXXX``, outside strings."""
    if "\\" not in text or not _ODD_CHAR.search(text):
        return text
    return _CHAR_TOKEN.sub(_char_code, text)


def _char_code(match: re.Match[str]) -> str:
    name = match.group(1)
    if name is None:
        return match.group(0)
    if name in _CHAR_CODES:
        return _CHAR_CODES[name]
    return f"\\u{ord(name):04x}" if ord(name) <= 0xFFFF else match.group(0)


def _write(x: Any, out: list[str], kw_keys: bool) -> None:
    if x is None:
        out.append("nil")
    elif x is True:
        out.append("true")
    elif x is False:
        out.append("false")
    elif isinstance(x, Keyword):
        out.append(":" + x)
    elif isinstance(x, Char):
        out.append("\\" + _CHAR_NAMES.get(x, x))
    elif isinstance(x, str):
        out.append('"' + x.translate(_STRING_ESCAPES) + '"')
    elif isinstance(x, int):
        out.append(str(x) if _LONG_MIN <= x <= _LONG_MAX else f"{x}N")
    elif isinstance(x, float):
        out.append(_double(x))
    elif isinstance(x, list):
        _write_seq(x, "[", "]", out, kw_keys)
    elif isinstance(x, tuple):
        _write_seq(x, "(", ")", out, kw_keys)
    elif isinstance(x, Mapping):
        out.append("{")
        first = True
        for k, v in x.items():
            if not first:
                out.append(", ")
            first = False
            if kw_keys and type(k) is str and is_keyword_name(k):
                out.append(":" + k)
            else:
                _write(k, out, kw_keys)
            out.append(" ")
            _write(v, out, kw_keys)
        out.append("}")
    elif isinstance(x, set | frozenset):
        _write_seq(x, "#{", "}", out, kw_keys)
    elif isinstance(x, Symbol):
        out.append(x.name)
    elif isinstance(x, uuid.UUID):
        out.append(f'#uuid "{x}"')
    elif isinstance(x, dt.datetime):
        out.append(f'#inst "{_inst(x)}"')
    elif isinstance(x, Decimal):
        out.append(f"{x}M")
    elif isinstance(x, Fraction):
        out.append(str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}")
    elif isinstance(x, bytes | bytearray):
        raise PackError("edn cannot carry bytes; use a binary packer (msgpack) for them")
    else:
        raise PackError(f"edn cannot write a {type(x).__name__}: {x!r}")


def _write_seq(xs: Any, open_: str, close: str, out: list[str], kw_keys: bool) -> None:
    out.append(open_)
    first = True
    for x in xs:
        if not first:
            out.append(" ")
        first = False
        _write(x, out, kw_keys)
    out.append(close)


def _double(x: float) -> str:
    """Java's ``Double.toString``: shortest digits, scientific outside [1e-3, 1e7)."""
    if math.isnan(x):
        return "##NaN"
    if math.isinf(x):
        return "##Inf" if x > 0 else "##-Inf"
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    sign = "-" if x < 0 else ""
    shortest = Decimal(repr(abs(x)))
    if 1e-3 <= abs(x) < 1e7:
        text = format(shortest, "f")
        return sign + (text if "." in text else text + ".0")
    digits = "".join(map(str, shortest.as_tuple().digits)).rstrip("0") or "0"
    exponent = shortest.adjusted()
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exponent}"


def _inst(d: dt.datetime) -> str:
    if d.tzinfo is not None:
        d = d.astimezone(dt.UTC).replace(tzinfo=None)
    return (
        f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
        f".{d.microsecond // 1000:03d}-00:00"
    )


def _from_edn_format(x: Any, hashable: bool = False) -> Any:
    """edn_format's value as the documented Python value; ``hashable`` for keys and set members."""
    if isinstance(x, edn_format.Keyword):
        return Keyword(x.name)
    if isinstance(x, edn_format.Char):
        return Char(x)
    if isinstance(x, edn_format.Symbol):
        return Symbol(x.name)
    if isinstance(x, str | int | float | Decimal | Fraction | uuid.UUID) or x is None:
        return x
    if isinstance(x, dt.datetime):
        return x.astimezone(dt.UTC)
    if isinstance(x, dt.date):
        return dt.datetime(x.year, x.month, x.day, tzinfo=dt.UTC)
    if isinstance(x, edn_format.ImmutableList | list):
        if hashable:
            return tuple(_from_edn_format(v, True) for v in x)
        return [_from_edn_format(v) for v in x]
    if isinstance(x, tuple):
        return tuple(_from_edn_format(v, hashable) for v in x)
    if isinstance(x, Mapping):
        items = {_from_edn_format(k, True): _from_edn_format(v, hashable) for k, v in x.items()}
        return ImmutableDict(items) if hashable else items
    if isinstance(x, frozenset | set):
        return frozenset(_from_edn_format(v, True) for v in x)
    if isinstance(x, MetadataValue):
        return _from_edn_format(x.value, hashable)
    return x
