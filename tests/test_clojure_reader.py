"""A real Clojure reader agrees with the edn packer.

A few hundred seeded values are packed with :class:`EdnPacker` and sent, one per line, through
one JVM running ``clojure.edn/read-string`` (with the ``#uuid`` and ``#inst`` readers) and then
``pr-str``. Where Clojure's printing is deterministic the output must equal ours byte for byte;
elsewhere (hash maps of more than 8 entries, sets of more than one element, and doubles, which
JDK 17 sometimes prints with more digits than the shortest) our reader must read Clojure's
output back equal to the value.

Debian's ``clojure`` package provides ``/usr/bin/clojure``. Without it the test is skipped,
except under CI, where it fails (:func:`tests.support.missing`).
"""

from __future__ import annotations

import datetime as dt
import math
import random
import re
import struct
import subprocess
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from fractions import Fraction
from typing import Any, NamedTuple

import pytest

from flask_sente import edn, protocol
from flask_sente.edn_reader import _TOKENS
from flask_sente.errors import UnpackError
from flask_sente.packers import EdnPacker
from flask_sente.values import Char, Keyword, Symbol
from tests.support import require_program

EDN = EdnPacker()
SEED = 20261128

CLOJURE_SCRIPT = """
(require '[clojure.edn :as edn])
(let [in (java.io.BufferedReader. (java.io.InputStreamReader. System/in "UTF-8"))
      out (java.io.PrintWriter. (java.io.OutputStreamWriter. System/out "UTF-8"))
      opts {:readers {'uuid #'clojure.uuid/default-uuid-reader
                      'inst #'clojure.instant/read-instant-date}}]
  (binding [*print-namespace-maps* false, *print-length* nil, *print-level* nil,
            *print-meta* false, *print-readably* true]
    (doseq [line (line-seq in)]
      (.write out (try (pr-str (edn/read-string opts line))
                       (catch Throwable e (str "!ERROR " (.getMessage e)))))
      (.write out "\\n")))
  (.flush out))
"""


class Case(NamedTuple):
    value: Any
    exact: bool  # Clojure prints it byte for byte as we do
    packed: str | None = None  # a whole message, when not EDN.pack(value)


# ---------------------------------------------------------------------------- values

_NAME_START = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ*!_?<>="
_NAME_REST = _NAME_START + "0123456789+-."
_SPECIAL_CHARS = '"\\\n\t\r\f\b'
_CONTROL_CHARS = "".join(map(chr, range(0x20))) + "\x7f"
_UNICODE = "éßЖ中€—“”😀𝄞\u2028\u00a0\ufeff"


class Values:
    """A seeded generator of the values the edn mapping documents."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def name(self) -> str:
        rng = self.rng
        return rng.choice(_NAME_START) + "".join(
            rng.choice(_NAME_REST) for _ in range(rng.randint(0, 8))
        )

    def qualified(self) -> str:
        return f"{self.name()}/{self.name()}" if self.rng.random() < 0.5 else self.name()

    def string(self) -> str:
        rng = self.rng
        pool = (
            "abc xyz 012",
            _SPECIAL_CHARS,
            _CONTROL_CHARS,
            _UNICODE,
            "".join(map(chr, range(0x20, 0x7F))),
        )
        return "".join(rng.choice(rng.choice(pool)) for _ in range(rng.randint(0, 16)))

    def integer(self) -> int:
        rng = self.rng
        return rng.choice(
            [
                rng.randint(-1000, 1000),
                rng.randint(-(2**63), 2**63 - 1),
                rng.choice([2**63 - 1, -(2**63), 2**63, -(2**63) - 1]),
                rng.randint(2**63, 2**200) * rng.choice([1, -1]),
            ]
        )

    def nice_float(self) -> float:
        rng = self.rng
        specials = [0.0, -0.0, 1.0, 0.1, 1.5, -2.5, 1e21, 1e-5, 1e7, 9999999.0, 0.001, 1e-3]
        specials += [1.0e-4, 1.7976931348623157e308, 2.2250738585072014e-308, math.inf, -math.inf]
        if rng.random() < 0.4:
            return rng.choice(specials)
        return round(rng.uniform(-1e6, 1e6), rng.randint(0, 6))

    def any_float(self) -> float:
        while True:
            x: float = struct.unpack("<d", self.rng.getrandbits(64).to_bytes(8, "little"))[0]
            if math.isfinite(x):
                return x

    def char(self) -> Char:
        rng = self.rng
        pool = rng.choice(["abcXYZ019", "!#%&*+-./:;<=>?@[]^_`{|}~'\"\\", " \n\t\b\f\r", "é€Ж中"])
        return Char(rng.choice(pool))

    def instant(self) -> dt.datetime:
        rng = self.rng
        start = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        millis = rng.randint(-(2**40), 2**42)
        return start + dt.timedelta(milliseconds=millis)

    def atom(self) -> Any:
        rng = self.rng
        kind = rng.randrange(14)
        makers: list[Callable[[], Any]] = [
            lambda: None,
            lambda: rng.random() < 0.5,
            self.integer,
            self.nice_float,
            self.string,
            self.string,
            lambda: Keyword(self.qualified()),
            lambda: Symbol(self.qualified()),
            self.char,
            lambda: uuid.UUID(int=rng.getrandbits(128), version=4),
            self.instant,
            lambda: Decimal(rng.randint(-(10**8), 10**8)).scaleb(-rng.randint(0, 6)),
            lambda: Fraction(rng.randint(-99, 99), rng.randint(2, 99)),
            lambda: Keyword(self.name()),
        ]
        return makers[kind]()

    def key(self) -> Any:
        """A map key: mostly what Clojure programs use (keywords, from plain strings too)."""
        rng = self.rng
        return rng.choice(
            [
                self.qualified,
                lambda: Keyword(self.qualified()),
                self.string,
                lambda: rng.randint(-50, 50),
                lambda: tuple(self.atom() for _ in range(rng.randint(0, 2))),
                self.atom,
            ]
        )()

    def value(self, depth: int = 0) -> Any:
        """A value whose printing Clojure fixes: maps of at most 8 entries, sets of at most one."""
        rng = self.rng
        if depth >= 3 or rng.random() < 0.35:
            return self.atom()
        size = rng.randint(0, 4)
        shape = rng.randrange(4)
        if shape == 0:
            return [self.value(depth + 1) for _ in range(size)]
        if shape == 1:
            return tuple(self.value(depth + 1) for _ in range(size))
        if shape == 2:
            return {self.key(): self.value(depth + 1) for _ in range(min(size * 2, 8))}
        return {self.atom() for _ in range(min(size, 1))}

    def unordered(self) -> Any:
        """A value whose printing order is Clojure's hash order, not ours."""
        rng = self.rng
        if rng.random() < 0.5:
            return {Keyword(f"k{n}"): self.value(2) for n in range(rng.randint(9, 20))}
        return {self.atom() for _ in range(rng.randint(2, 10))}


def _cases() -> Iterator[Case]:
    values = Values(SEED)
    for _ in range(300):
        yield Case(values.value(), exact=True)
    for _ in range(40):
        yield Case(values.unordered(), exact=False)
    for _ in range(60):
        yield Case(values.any_float(), exact=False)
    # Whole messages as the server and clients write them.
    rng = values.rng
    for _ in range(40):
        event = [Keyword(f"{values.name()}/{values.name()}"), values.value(1)]
        messages: list[tuple[Any, Any]] = [
            (protocol.handshake_event(values.string(), values.value(1)), None),
            (protocol.handshake_event(None), None),
            (protocol.push_batch([event, [Keyword("a/b")]]), None),
            (event, protocol.new_cb_uuid()),
            (event, protocol.AJAX_CB),
            (values.value(1), protocol.new_cb_uuid()),
            (protocol.WS_PING, None),
        ]
        value, cb = rng.choice(messages)
        yield Case([value, cb], exact=True, packed=str(protocol.pack(EDN, value, cb)))


CASES = list(_cases())


# ---------------------------------------------------------------------------- respelled


class Respeller:
    """The same edn in other spellings Clojure's reader takes: other number forms, string
    escapes (\\uXXXX, octal), \\uXXXX characters, commas and tabs for spaces, discarded
    forms and metadata before values."""

    _INT = re.compile(r"-?(0|[1-9][0-9]*)\Z")
    _FLOAT = re.compile(r"-?[0-9]+\.[0-9]+\Z")

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def respell(self, text: str) -> str:
        rng = self.rng
        out: list[str] = []
        end = 0
        for match in _TOKENS.finditer(text):
            gap = text[end : match.start(1)]
            if gap and rng.random() < 0.5:
                gap = rng.choice([" ", ",", " , ", "\t", ",,", "  "])
            out.append(gap)
            tok = match.group(1)
            if tok[0] not in ")]}" and rng.random() < 0.06:
                out.append(rng.choice(["#_ :x ", "#_[1 2] ", "#_#_ 1 2 "]))
            if (tok[0] in "[{(" or tok == "#{") and rng.random() < 0.05:
                out.append(rng.choice(["^:m ", "^{:a 1} ", "^tag "]))
            out.append(self.token(tok))
            end = match.end()
        out.append(text[end:])
        return "".join(out)

    def token(self, tok: str) -> str:
        rng = self.rng
        if self._INT.match(tok) and rng.random() < 0.6:
            n = int(tok)
            sign = "-" if n < 0 else rng.choice(["", "+"])
            forms = [f"{abs(n)}", f"0x{abs(n):X}", f"0X{abs(n):x}"]
            if n:
                forms += [f"0{abs(n):o}", f"2r{abs(n):b}", f"16r{abs(n):x}"]
            return sign + rng.choice(forms)
        if self._FLOAT.match(tok) and rng.random() < 0.5:
            return tok + rng.choice(["e0", "E0", "e+0", "E-0"])
        if tok.startswith('"') and len(tok) > 1:
            return self.string(edn.loads(tok))
        if tok.startswith("\\") and len(tok) == 2 and rng.random() < 0.5:
            code = ord(tok[1])
            return f"\\u{code:04X}" if rng.random() < 0.5 or code > 0o377 else f"\\o{code:o}"
        return tok

    def string(self, value: str) -> str:
        rng = self.rng
        out = []
        for ch in value:
            code = ord(ch)
            if ch in _STRING_ESCAPES:
                out.append(_STRING_ESCAPES[ch])
            elif code < 0x10000 and not 0xD800 <= code <= 0xDFFF and rng.random() < 0.15:
                out.append(f"\\u{code:04x}" if rng.random() < 0.5 else f"\\u{code:04X}")
            elif code < 0o400 and rng.random() < 0.1:
                out.append(f"\\{code:03o}")
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'


_STRING_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\t": "\\t",
    "\r": "\\r",
    "\b": "\\b",
    "\f": "\\f",
}


def _respelled() -> list[tuple[str, str]]:
    """(respelled text, what Clojure must print for it: our own printing of the value)."""
    respeller = Respeller(SEED)
    exact = [case.packed or EDN.pack(case.value) for case in CASES if case.exact]
    return [(respeller.respell(str(text)), str(text)) for text in exact[:200]]


RESPELLED = _respelled()

#: Clojure syntax beyond what our writer prints; each must read (and print) as in Clojure, or
#: fail in both.
SYNTAX = [
    "017",
    "[0x1F 0X1f 2r101 36rZZ -0x10 +5 -0]",  # not 5N: Clojure prints 5N back, we print 5
    "[1. 1e3 1.5e-3 1e3M 1.5M 2/4 -2/4 4/2 ##Inf ##-Inf ## Inf]",
    "[\\o101 \\u00e9 \\backspace \\formfeed \\€ \\( \\] \\space]",
    '["\\101\\7" "\\ud83d\\ude00" "a\\tb" "\\u00E9"]',
    "[:a/b/c a'b a#b :a#b clojure.core// / :-a -a +a .a :a.b/c*]",
    "#:a{:b 1, :_/c 2, :x/d 3, e 4}",
    "#:a {:b 1}",
    '[^:m [1] ^{:a 1} (2) ^m {3 4} ^"t" #{5}]',
    "[1 #_ 2 3 #_ #_ 4 5 6]",
    "#_ 1 2",
    "[1,2,,3\t4]",
    '[#inst "2020" #inst "2020-02" #inst "2020-02-03T04" #inst "2020-02-03T04:05:06.789123-05:30"]',
    '#uuid "5a2cbea3-e8c6-428b-b525-21239370dd55"',
    '{"a" 1, [1 2] 3, {:b 4} 5, #{6} 7}',
    "[1] [2]",
    "[1] ]",
    "09",
    "1/0",
    "::a",
    ":",
    "a:",
    ":a:",
    "#foo 1",
    "#{1 1}",
    "{:a 1 :a 2}",
    "{:a}",
    "[1",
    '"abc',
    "\\abc",
    '"\\q"',
    "#:a/b{}",
    "##Foo",
    "\\ud800",
    "1a",
    "1.5.5",
    "0x",
    "1e",
    '#inst "2020-13"',
    "#uuid 5",
    "]",
    "#",
    "#(1)",
    "#'a",
    "\\o400",
    '"\\400"',
    "[::a]",
    "{[1 2] 3 (1 2) 4}",
]


# ---------------------------------------------------------------------------- the JVM


@pytest.fixture(scope="module")
def clojure_output(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What Clojure printed for each text of CASES, RESPELLED and SYNTAX, in one JVM."""
    clojure = require_program("clojure", "Debian: apt-get install clojure")
    script = tmp_path_factory.mktemp("clojure") / "read_print.clj"
    script.write_text(CLOJURE_SCRIPT, encoding="utf-8")
    texts = [case.packed or EDN.pack(case.value) for case in CASES]
    texts += [respelled for respelled, _ in RESPELLED] + SYNTAX
    assert not any("\n" in text or "\r" in text for text in texts)
    result = subprocess.run(
        [clojure, str(script)],
        input="\n".join(texts) + "\n",
        capture_output=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    assert lines[-1] == ""
    assert len(lines) - 1 == len(texts), result.stderr
    return dict(zip(texts, lines[:-1], strict=True))


@pytest.fixture(scope="module")
def printed(clojure_output: dict[str, str]) -> list[tuple[Case, str, str]]:
    """Each case with our packed text and what Clojure printed after reading it."""
    texts = [str(case.packed or EDN.pack(case.value)) for case in CASES]
    return [(case, text, clojure_output[text]) for case, text in zip(CASES, texts, strict=True)]


def _report(failures: list[str]) -> str:
    return f"{len(failures)} mismatches, e.g.:\n" + "\n".join(failures[:5])


def test_the_cases_cover_the_mapping() -> None:
    seen: set[type] = set()

    def walk(x: Any) -> None:
        seen.add(type(x))
        if isinstance(x, dict):
            for k, v in x.items():
                walk(k)
                walk(v)
        elif isinstance(x, list | tuple | set | frozenset):
            for v in x:
                walk(v)

    for case in CASES:
        walk(case.value)
    expected = {type(None), bool, int, float, str, Keyword, Symbol, Char, list, tuple, dict, set}
    expected |= {uuid.UUID, dt.datetime, Decimal, Fraction}
    assert expected <= seen
    assert 400 <= len(CASES) <= 600


def test_clojure_reads_everything_we_write(printed: list[tuple[Case, str, str]]) -> None:
    failures = [f"{ours!r} -> {theirs!r}" for _, ours, theirs in printed if theirs.startswith("!")]
    assert not failures, _report(failures)


def test_clojure_prints_what_we_print(printed: list[tuple[Case, str, str]]) -> None:
    exact = [(ours, theirs) for case, ours, theirs in printed if case.exact]
    assert len(exact) >= 300
    failures = [f"ours   {ours!r}\ntheirs {theirs!r}" for ours, theirs in exact if ours != theirs]
    assert not failures, _report(failures)


def test_we_read_what_clojure_prints(printed: list[tuple[Case, str, str]]) -> None:
    failures = []
    for case, ours, theirs in printed:
        read = EDN.unpack(theirs)
        expected = EDN.unpack(ours) if case.packed else case.value
        if read != expected:
            failures.append(f"{ours!r} -> clojure {theirs!r} -> {read!r}")
    assert not failures, _report(failures)


def test_unordered_values_differ_only_in_order(printed: list[tuple[Case, str, str]]) -> None:
    """Not a tautology: at least some hash-ordered output really is in another order."""
    unordered = [(ours, theirs) for case, ours, theirs in printed if not case.exact]
    assert any(ours != theirs for ours, theirs in unordered)
    assert all(sorted(ours) == sorted(theirs) for ours, theirs in unordered[:40])


def test_clojure_reads_respelled_edn_as_we_do(clojure_output: dict[str, str]) -> None:
    """Clojure prints each respelled text as we printed the original; so do we, reading it."""
    assert sum(r != o for r, o in RESPELLED) >= 100  # most texts really are respelled
    failures = []
    for respelled, original in RESPELLED:
        theirs = clojure_output[respelled]
        ours = EDN.pack(EDN.unpack(respelled))
        if theirs != original or ours != original:
            failures.append(f"{respelled!r}\nclojure {theirs!r}\nours    {ours!r}")
    assert not failures, _report(failures)


def test_clojure_syntax_reads_as_in_clojure(clojure_output: dict[str, str]) -> None:
    """Where Clojure reads, we read the same (printed alike); where it refuses, we refuse."""
    failures = []
    for text in SYNTAX:
        theirs = clojure_output[text]
        try:
            ours = EDN.pack(edn.loads(text))
        except UnpackError as exc:
            ours = f"!ERROR {exc}"
        if theirs.startswith("!") != ours.startswith("!") or (
            not theirs.startswith("!") and theirs != ours
        ):
            failures.append(f"{text!r}\nclojure {theirs!r}\nours    {ours!r}")
    assert not failures, _report(failures)
