"""Reading edn as Clojure's ``clojure.edn/read-string`` reads it, fast, in pure Python.

One compiled regular expression cuts the whole text into tokens in C (``findall``); one
loop then builds the values with an explicit stack, so there is no recursion and the
nesting depth is bounded (:data:`MAX_DEPTH`). The token rules are those of Clojure's
``EdnReader``: whitespace and commas separate tokens, ``" ; ^ ( ) [ ] { } \\`` end one,
and a token is then a number, a keyword, a symbol or a constant. Anything Clojure would
refuse, and anything Python cannot hold (keys equal in Python, such as ``:a`` and ``"a"``),
raises :class:`~flask_sente.errors.UnpackError` with the position; nothing else escapes.

The Python values are those of :mod:`flask_sente.edn`'s mapping.
"""

from __future__ import annotations

import re
from operator import length_hint
from typing import Any

from .edn_scalars import (
    KEYWORDS,
    SYMBOLIC,
    EdnError,
    char,
    is_name,
    keyword,
    number,
    symbol,
    tag_reader,
    unescape,
)
from .errors import UnpackError
from .values import Keyword, StringKey, Symbol, frozen

__all__ = ["MAX_DEPTH", "read"]

#: How deeply collections (and ``#_``, ``#tag`` and ``^meta`` prefixes) may nest.
MAX_DEPTH = 256

# Java's Character.isWhitespace, plus the comma: as characters, and as a regex class.
_WS_RANGES = [(0x09, 0x0D), (0x1C, 0x20), (0x2C, 0x2C), (0x1680, 0x1680), (0x2000, 0x2006)]
_WS_RANGES += [(0x2008, 0x200A), (0x2028, 0x2029), (0x205F, 0x205F), (0x3000, 0x3000)]
_WS_CHARS = "".join(chr(c) for first, last in _WS_RANGES for c in range(first, last + 1))
_WS = re.escape(_WS_CHARS)
_CONSTITUENT = rf'[^{_WS}";^()\[\]{{}}\\]'
# Each match is the whitespace before a token, and the token (group 1). Text must not end
# in whitespace: there, each position would scan the rest of it again.
_TOKENS = re.compile(
    rf"[{_WS}]*+("
    + "|".join(
        [
            rf'[^{_WS}";^()\[\]{{}}\\#]{_CONSTITUENT}*+',  # a number, keyword, symbol or constant
            r"[\[\](){}]",
            r'"[^"\\]*+(?:\\.[^"\\]*+)*+"',  # a string
            r"#[{_]",  # a set, a discard
            rf"#{_CONSTITUENT}*+",  # a tag, ##Inf, #:ns (a namespaced map)
            rf"\\.{_CONSTITUENT}*+",  # a character
            r";[^\n]*+",  # a comment
            r"\^",  # metadata
            rf"[^{_WS}]",  # anything else: an error, such as an unterminated string
        ]
    )
    + ")",
    re.DOTALL,
)

_VECTOR, _LIST, _SET, _MAP = 0, 1, 2, 3  # collections: each value is appended to them
_TOP, _TAG, _DISCARD, _META = 4, 5, 6, 7  # prefixes: the next value completes them
_CONSTANTS: dict[str, Any] = {"nil": None, "true": True, "false": False}
_NOTHING = object()


def read(text: str, package: str | bytes) -> Any:
    """The first value in ``text`` (None for none; what follows it is ignored, as Clojure's
    ``read-string`` ignores it); ``package`` goes into any UnpackError."""
    text = text.rstrip(_WS_CHARS)
    tokens = _TOKENS.findall(text)
    it = iter(tokens)
    top: list[Any] = []
    items: list[Any] = top
    kind: int = _TOP
    extra: Any = None
    stack: list[tuple[list[Any], int, Any]] = []
    keywords: dict[str, Any] = KEYWORDS
    v: Any
    try:
        for tok in it:
            c = tok[0]
            if c == ":":
                v = keywords.get(tok)
                if v is None:
                    v = keyword(tok)
            elif c == '"':
                if len(tok) == 1:
                    raise EdnError("a string is not closed")
                v = tok[1:-1]
                if "\\" in v:
                    v = unescape(v)
                if kind == _MAP and not len(items) & 1:
                    v = StringKey(v)
            elif "0" <= c <= "9":
                if tok.isdigit() and tok.isascii():
                    v = int(tok) if c != "0" or len(tok) == 1 else number(tok)  # 017 is octal
                elif tok.isascii() and "_" not in tok:
                    try:  # float() takes what floatPat takes (1.5, 1., 1e5), and M, N, x, /
                        v = float(tok)  # are not floats to it
                    except ValueError:
                        v = number(tok)
                else:
                    v = number(tok)
            elif c in "tfn":  # true, false, nil, or a symbol
                v = _CONSTANTS.get(tok, _NOTHING)
                if v is _NOTHING:
                    v = symbol(tok)
            elif c in "[({" or tok == "#{":
                if len(stack) >= MAX_DEPTH:
                    raise EdnError(f"collections nest more than {MAX_DEPTH} deep")
                stack.append((items, kind, extra))
                items, kind, extra = [], _OPENERS[c], None
                continue
            elif c in "]})":
                if kind == _MAP and c == "}" and extra is None and not len(items) & 1:
                    pairs = iter(items)
                    try:
                        v = dict(zip(pairs, pairs, strict=False))
                    except TypeError:  # a key to freeze
                        v = _close(items, kind, extra)
                    if len(v) * 2 != len(items):
                        raise EdnError(_DUPLICATE.format("map keys"))
                elif kind == _VECTOR and c == "]":
                    v = items
                elif _CLOSERS.get(kind) == c:
                    v = _close(items, kind, extra)
                else:
                    raise EdnError(f"unexpected {c}" + _expected(kind))
                items, kind, extra = stack.pop()
            elif c in "+-" and tok[1:2].isdigit():
                v = number(tok)
            elif c == "#":
                if tok[1:2] == "#" and tok[2:] in SYMBOLIC:
                    v = SYMBOLIC[tok[2:]]
                else:
                    if len(stack) >= MAX_DEPTH:
                        raise EdnError(f"collections nest more than {MAX_DEPTH} deep")
                    stack.append((items, kind, extra))
                    items = []
                    if tok == "#_":
                        kind, extra = _DISCARD, None
                    elif tok[1:2] == ":" and tok[1:3] != "::":
                        kind, extra = _MAP, _namespace(tok[2:])
                        if next(it, None) != "{":
                            raise EdnError(f"the namespaced map {tok} must be followed by {{")
                    else:
                        kind, extra = _TAG, tag_reader(tok[1:])
                    continue
            elif c == "\\":
                v = char(tok[1:])
            elif c == ";":
                continue
            elif c == "^":
                if len(stack) >= MAX_DEPTH:
                    raise EdnError(f"collections nest more than {MAX_DEPTH} deep")
                stack.append((items, kind, extra))
                items, kind, extra = [], _META, None
                continue
            else:
                v = _CONSTANTS.get(tok, _NOTHING)
                if v is _NOTHING:
                    v = symbol(tok)
            if kind < _TOP:
                items.append(v)
                continue
            # The value completes a prefix (#tag, #_, ^meta) or is the one top-level value.
            while True:
                if kind < _TOP:
                    if kind == _MAP and type(v) is str and not len(items) & 1:
                        v = StringKey(v)
                    items.append(v)
                    break
                if kind == _TOP:
                    items.append(v)
                    break
                if kind == _META and not items:
                    items.append(v)  # the metadata, dropped like pr-str drops it
                    break
                if kind == _DISCARD:
                    items, kind, extra = stack.pop()
                    break
                if kind == _TAG:
                    v = extra(v)
                items, kind, extra = stack.pop()
            if top:
                break  # the rest is not read, as Clojure's read-string does not read it
        if stack:
            raise EdnError("the text ends inside" + _expected(kind), at_end=True)
    except (EdnError, ValueError, TypeError, KeyError, IndexError, ArithmeticError) as exc:
        at_end = isinstance(exc, EdnError) and exc.at_end
        done = len(tokens) if at_end else len(tokens) - length_hint(it)
        raise UnpackError(_located(text, done, at_end, str(exc)), package) from None
    return top[0] if top else None


_OPENERS = {"[": _VECTOR, "(": _LIST, "{": _MAP, "#": _SET}
_CLOSERS = {_VECTOR: "]", _LIST: ")", _SET: "}", _MAP: "}"}


def _expected(kind: int) -> str:
    closer = _CLOSERS.get(kind)
    return f" (a {_NAMES[kind]} is open: {closer} expected)" if closer else ""


_NAMES = {_VECTOR: "vector", _LIST: "list", _SET: "set", _MAP: "map", _TAG: "tagged value"}
_NAMES.update({_DISCARD: "#_ discard", _META: "^ metadata", _TOP: "value"})


def _located(text: str, done: int, at_end: bool, message: str) -> str:
    position = len(text)
    if not at_end:
        for i, match in enumerate(_TOKENS.finditer(text)):
            if i == done - 1:
                position = match.start(1)
                break
    near = text[position : position + 40]
    return f"not valid edn at position {position} ({near!r}): {message}"


def _close(items: list[Any], kind: int, namespace: str | None) -> Any:
    """The list, set or map of the values read between its brackets."""
    if kind == _LIST:
        return tuple(items)
    if kind == _SET:
        try:
            members = frozenset(items)
        except TypeError:
            members = frozenset(map(frozen, items))
        if len(members) != len(items):
            raise EdnError(_DUPLICATE.format("set members"))
        return members
    if len(items) & 1:
        raise EdnError(f"a map needs an even number of forms, not {len(items)}")
    pairs = iter(items)
    try:
        out = dict(zip(pairs, pairs, strict=False))
    except TypeError:
        keys = iter(map(frozen, items[::2]))
        out = dict(zip(keys, items[1::2], strict=False))
    if len(out) * 2 != len(items):
        raise EdnError(_DUPLICATE.format("map keys"))
    return out if namespace is None else _with_namespace(out, namespace)


_DUPLICATE = 'duplicate {} (or ones Python takes as equal, such as :a and "a", or 1 and true)'


def _with_namespace(m: dict[Any, Any], namespace: str) -> dict[Any, Any]:
    """``#:ns{:a 1 :_/b 2 :x/c 3}`` is ``{:ns/a 1 :b 2 :x/c 3}`` (symbol keys alike)."""
    out: dict[Any, Any] = {}
    for k, v in m.items():
        if isinstance(k, Keyword | Symbol):
            name = str(k)
            ns, sep, rest = name.partition("/")
            if not (sep and ns):
                name = f"{namespace}/{name}"
            elif ns == "_":
                name = rest
            k = Keyword(name) if isinstance(k, Keyword) else Symbol(name)
        out[k] = v
    if len(out) != len(m):
        raise EdnError(_DUPLICATE.format("map keys"))
    return out


def _namespace(name: str) -> str:
    if not name or "/" in name or not is_name(name):
        raise EdnError(f"#:{name} does not name a namespace")
    return name
