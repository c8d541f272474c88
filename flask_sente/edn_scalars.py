"""edn's scalar tokens as Python values, as Clojure's ``EdnReader`` reads them.

Numbers, strings, characters, keywords, symbols and the tags (``#inst``, ``#uuid``,
``##Inf`` and the application's own, in :data:`TAGS`): everything but the collections,
which :mod:`flask_sente.edn_reader` builds. Each function takes the text of one token and
raises :class:`EdnError` for what Clojure would refuse.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

from .values import Char, Keyword, Symbol

#: Readers for ``#tag value``, by tag name; ``#inst`` and ``#uuid`` are built in.
TAGS: dict[str, Callable[[Any], Any]] = {}

_INT = re.compile(
    r"([-+]?)(?:(0)|([1-9][0-9]*)|0[xX]([0-9A-Fa-f]+)|0([0-7]+)|([1-9][0-9]?)[rR]([0-9A-Za-z]+)"
    r"|0[0-9]+)N?\Z"
)
_FLOAT = re.compile(r"([-+]?[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)(M)?\Z")
_RATIO = re.compile(r"([-+]?[0-9]+)/([0-9]+)\Z")
_ESCAPE = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|([0-7]{1,3})|(.))", re.DOTALL)
_ESCAPES = {"t": "\t", "r": "\r", "n": "\n", "\\": "\\", '"': '"', "b": "\b", "f": "\f"}
#: The characters edn names (``\\newline``...): read here, written by :mod:`.edn`.
CHAR_NAMES = {
    "newline": "\n",
    "space": " ",
    "tab": "\t",
    "backspace": "\b",
    "formfeed": "\f",
    "return": "\r",
}
SYMBOLIC = {"Inf": float("inf"), "-Inf": float("-inf"), "NaN": float("nan")}
_INST = re.compile(
    r"(\d{4})(?:-(\d\d)(?:-(\d\d)(?:T(\d\d)(?::(\d\d)(?::(\d\d)(?:\.(\d+))?)?)?)?)?)?"
    r"(?:Z|([-+])(\d\d):(\d\d))?\Z"
)
_DIGITS = "0123456789"
# Keywords and symbols already read, by token: most messages repeat the same few.
_CACHE_LIMIT = 4096
_CACHED_LENGTH = 64  # longer names are not kept: a peer must not fill memory with them
KEYWORDS: dict[str, Keyword] = {}
SYMBOLS: dict[str, Symbol] = {}


class EdnError(ValueError):
    """What is wrong with the token being read; the reader adds where it is."""

    def __init__(self, message: str, *, at_end: bool = False) -> None:
        super().__init__(message)
        self.at_end = at_end


def is_name(s: str) -> bool:
    """Whether Clojure's EdnReader takes ``s`` (with its ``:`` for a keyword) as a symbol
    or keyword: its ``symbolPat`` and the checks after it, without backtracking."""
    if s.find("::", 1) != -1:
        return False
    body = s[1:] if s[:1] == ":" else s
    if not body:
        return False
    if body == "/":
        return True
    last = body.rfind("/")
    if last == -1:
        return body[0] not in _DIGITS and not body.endswith(":")
    if last == len(body) - 1:  # only ns + "/" as the name, e.g. clojure.core//
        ns, name = body[:-1], "/"
        if not ns.endswith("/"):
            return False
    else:
        ns, name = body[: last + 1], body[last + 1 :]
        if name[0] in _DIGITS:
            return False
    return ns[0] not in _DIGITS and ns[0] != "/" and not ns.endswith(":/") and name[-1] != ":"


def keyword(tok: str) -> Keyword:
    if tok.startswith("::"):
        raise EdnError(f"edn has no auto-resolved keywords such as {tok}")
    if not is_name(tok):
        raise EdnError(f"invalid keyword {tok}")
    kw = Keyword(tok[1:])
    if len(KEYWORDS) < _CACHE_LIMIT and len(tok) <= _CACHED_LENGTH:
        KEYWORDS[tok] = kw
    return kw


def symbol(tok: str) -> Symbol:
    sym = SYMBOLS.get(tok)
    if sym is None:
        if tok[0].isdigit():
            raise EdnError(f"invalid number {tok}")
        if not is_name(tok):
            raise EdnError(f"invalid token {tok}")
        sym = Symbol(tok)
        if len(SYMBOLS) < _CACHE_LIMIT and len(tok) <= _CACHED_LENGTH:
            SYMBOLS[tok] = sym
    return sym


def number(tok: str) -> Any:
    """An int (``42``, ``42N``, ``0x2A``, ``052``, ``8r52``), float, Decimal or Fraction."""
    m = _FLOAT.match(tok) if "." in tok else None  # the commonest here, and never an int
    if m:
        return Decimal(m.group(1)) if m.group(2) else float(m.group(1))
    m = _INT.match(tok)
    if m:
        sign, zero, decimal, hexadecimal, octal, radix, digits = m.groups()
        if zero:
            return 0
        if decimal:
            n = int(decimal)
        elif hexadecimal:
            n = int(hexadecimal, 16)
        elif octal:
            n = int(octal, 8)
        elif digits:
            n = int(digits, int(radix))
        else:
            raise EdnError(f"invalid number {tok} (only 0 may start with 0)")
        return -n if sign == "-" else n
    m = _FLOAT.match(tok)
    if m:
        return Decimal(m.group(1)) if m.group(2) else float(m.group(1))
    m = _RATIO.match(tok)
    if m:
        if not int(m.group(2)):
            raise EdnError(f"the ratio {tok} divides by zero")
        return Fraction(int(m.group(1)), int(m.group(2)))
    raise EdnError(f"invalid number {tok}")


def unescape(body: str) -> str:
    text = _ESCAPE.sub(_escaped, body)
    if _SURROGATE.search(text):  # \ud83d\ude00 is one character, as in Java; a lone
        # surrogate stays one, as Java and the json module keep it
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass")
    return text


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _escaped(m: re.Match[str]) -> str:
    hexadecimal, octal, other = m.groups()
    if hexadecimal:
        return chr(int(hexadecimal, 16))
    if octal:
        code = int(octal, 8)
        if code > 0o377:
            raise EdnError(f"octal escape \\{octal} is past \\377")
        return chr(code)
    if other in _ESCAPES:
        return _ESCAPES[other]
    if other == "u":
        raise EdnError("\\u must be followed by 4 hexadecimal digits")
    raise EdnError(f"unsupported escape character \\{other}")


_HEX4 = re.compile(r"u[0-9A-Fa-f]{4}\Z")
_OCTAL = re.compile(r"o[0-7]{1,3}\Z")


def char(body: str) -> Char:
    if len(body) == 1:
        return Char(body)
    if body in CHAR_NAMES:
        return Char(CHAR_NAMES[body])
    if _HEX4.match(body):
        code = int(body[1:], 16)
        if 0xD800 <= code <= 0xDFFF:
            raise EdnError(f"\\{body} is a surrogate, not a character")
        return Char(chr(code))
    if _OCTAL.match(body):
        code = int(body[1:], 8)
        if code > 0o377:
            raise EdnError(f"octal character \\{body} is past \\o377")
        return Char(chr(code))
    raise EdnError(f"unsupported character \\{body}")


def tag_reader(name: str) -> Callable[[Any], Any]:
    """The function that reads ``#name value``."""
    if name == "inst":
        return _inst
    if name == "uuid":
        return _uuid
    if name == "#":
        return _symbolic
    handler = TAGS.get(name)
    if handler is not None:
        return lambda value: _call_tag(name, handler, value)
    if name.startswith("#"):
        raise EdnError(f"unknown symbolic value #{name} (##Inf, ##-Inf and ##NaN are)")
    if not name:
        raise EdnError("# must be followed by {, _, :, # or a tag")
    if name.startswith(":"):
        raise EdnError(f"edn has no auto-resolved namespaced maps such as #{name}")
    if not is_name(name):
        raise EdnError(f"#{name} is not a tag: a tag is a symbol")
    raise EdnError(
        f"no reader for the tag #{name}: register one with flask_sente.edn.add_tag({name!r}, fn)"
    )


def _call_tag(name: str, handler: Callable[[Any], Any], value: Any) -> Any:
    try:
        return handler(value)
    except Exception as exc:  # the application's reader: any failure is bad input
        raise EdnError(f"the reader for #{name} failed on {value!r}: {exc!r}") from exc


def _symbolic(value: Any) -> float:
    if isinstance(value, Symbol) and value.name in SYMBOLIC:
        return SYMBOLIC[value.name]
    raise EdnError(f"unknown symbolic value ## {value!r}")


def _uuid(value: Any) -> uuid.UUID:
    if not isinstance(value, str):
        raise EdnError(f"#uuid takes a string, not {value!r}")
    return uuid.UUID(value)


def _inst(value: Any) -> dt.datetime:
    """Clojure's instant: ``yyyy[-MM[-dd[Thh[:mm[:ss[.f...]]]]]][Z|+hh:mm|-hh:mm]``."""
    m = _INST.match(value) if isinstance(value, str) else None
    if m is None:
        raise EdnError(f"#inst takes an RFC 3339 timestamp string, not {value!r}")
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = m.groups()
    offset = dt.timedelta(hours=int(off_h or 0), minutes=int(off_m or 0))
    zone = dt.timezone(-offset if sign == "-" else offset)
    moment = dt.datetime(
        int(year),
        int(month or 1),
        int(day or 1),
        int(hour or 0),
        int(minute or 0),
        int(second or 0),
        int((fraction or "0")[:6].ljust(6, "0")),
        tzinfo=zone,
    )
    return moment.astimezone(dt.UTC)
