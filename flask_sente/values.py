"""Python types for the Clojure values Python has no type of its own for.

Every packer reads and writes these, and the protocol names its special ids with
:class:`Keyword`. This module imports nothing of flask_sente, so the protocol and the packers
can all share these types without importing one another.

* :class:`Keyword`, :class:`Symbol`, :class:`Char`: edn's and transit's keywords, symbols and
  characters.
* :class:`TaggedValue`: a transit value whose tag has no Python type (a URI, a link, a tag
  of the application's own), kept so that it is written back as it came.
* :class:`ImmutableDict`, :class:`ImmutableVector`: a map and a vector read where Python
  needs a hashable value (map keys, set members).
* :class:`StringKey`: a string map key as it was read, so that writing it back keeps it a
  string where ``keywordize_keys`` would make a plain ``str`` a keyword.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Char",
    "ImmutableDict",
    "ImmutableVector",
    "Keyword",
    "StringKey",
    "Symbol",
    "TaggedValue",
    "frozen",
    "is_keyword_name",
]


class Keyword(str):
    """An edn keyword such as ``:chsk/handshake``, written without the colon.

    It is a ``str``, so ``Keyword("chat/msg") == "chat/msg"`` and dictionaries keyed by
    plain strings find it; the edn packer writes it as a keyword and reads keywords as it.
    """

    __slots__ = ()

    @property
    def namespace(self) -> str | None:
        ns, sep, _ = self.partition("/")
        return ns if sep and ns else None

    @property
    def name(self) -> str:
        ns, sep, name = self.partition("/")
        return name if sep and ns else str(self)

    def __repr__(self) -> str:
        return f"Keyword({str(self)!r})"


@dataclass(frozen=True, slots=True)
class Symbol:
    """An edn symbol such as ``my.ns/f``. ``name`` is the whole text, namespace included."""

    name: str

    @property
    def namespace(self) -> str | None:
        ns, sep, _ = self.name.partition("/")
        return ns if sep and ns else None

    def __str__(self) -> str:
        return self.name


class Char(str):
    """An edn character such as ``\\a`` or ``\\newline``: a ``str`` of length 1."""

    __slots__ = ()

    def __new__(cls, content: str) -> Char:
        if len(content) != 1:
            raise ValueError(f"a Char holds exactly one character, not {content!r}")
        return super().__new__(cls, content)


class StringKey(str):
    """A map key that was read as a string: written back as a string, never as a keyword.

    ``keywordize_keys`` writes plain ``str`` keys such as ``"id"`` as keywords, because
    Python programs spell Clojure's keyword keys as strings. A string key that arrived from
    a peer must go back as the same string, so readers return it as this subclass.
    """

    __slots__ = ()


class ImmutableVector(tuple[Any, ...]):
    """A vector read as a map key or a set member, where a ``list`` cannot go.

    A ``tuple``, so it equals and hashes like one, but written back as a vector (``[1 2]``)
    where a plain tuple is written as a list (``(1 2)``).
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"ImmutableVector({list(self)!r})"


class ImmutableDict(Mapping[Any, Any]):
    """A read-only, hashable mapping: a map read as a map key or a set member."""

    __slots__ = ("_dict", "_hash")

    def __init__(self, items: Any = ()) -> None:
        self._dict: dict[Any, Any] = dict(items)
        self._hash: int | None = None

    def __getitem__(self, key: Any) -> Any:
        return self._dict[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ImmutableDict):
            return self._dict == other._dict
        return isinstance(other, Mapping) and self._dict == dict(other.items())

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._dict.items()))
        return self._hash

    def __repr__(self) -> str:
        return f"ImmutableDict({self._dict!r})"


@dataclass(frozen=True, slots=True)
class TaggedValue:
    """A tagged value with no Python type of its own, e.g. transit's ``~rhttp://x`` (a URI)
    or ``["~#point",[1,2]]``: written back with the same tag and representation."""

    tag: str
    rep: Any


_KEYWORD_PART = r"(?![+.\-]?\d)[A-Za-z0-9*+!_?<>=.\-]+"
_KEYWORD_NAME = re.compile(rf"{_KEYWORD_PART}(?:/{_KEYWORD_PART})?\Z")


def is_keyword_name(s: str) -> bool:
    """Whether ``s`` can be written as the keyword ``:s`` and read back as the same keyword
    by Clojure and by the readers of older flask_sente versions."""
    return bool(_KEYWORD_NAME.match(s))


def frozen(x: Any) -> Any:
    """``x`` as a map key or set member must be: hashable all the way down, vectors as
    :class:`ImmutableVector` and maps as :class:`ImmutableDict`. What readers return."""
    t = type(x)
    if t is list:
        return ImmutableVector(map(frozen, x))
    if t is dict:
        return ImmutableDict({k: frozen(v) for k, v in x.items()})
    if t is tuple:
        return tuple(map(frozen, x))
    return x
