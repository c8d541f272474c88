"""A real Clojure reader agrees with the edn packer.

A few hundred seeded values are packed with :class:`EdnPacker` and sent, one per line, through
one JVM running ``clojure.edn/read-string`` (with the ``#uuid`` and ``#inst`` readers) and then
``pr-str``. Where Clojure's printing is deterministic the output must equal ours byte for byte;
elsewhere (hash maps of more than 8 entries, sets of more than one element, and doubles, which
JDK 17 sometimes prints with more digits than the shortest) our reader must read Clojure's
output back equal to the value.

Debian's ``clojure`` package provides ``/usr/bin/clojure``. Without it the test is skipped,
except under CI (``CI`` set), where it fails.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import random
import shutil
import struct
import subprocess
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from fractions import Fraction
from typing import Any, NamedTuple

import pytest

from flask_sente import protocol
from flask_sente.packers import EdnPacker
from flask_sente.values import Char, Keyword, Symbol

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
                       (catch Exception e (str "!ERROR " (.getMessage e)))))
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


# ---------------------------------------------------------------------------- the JVM


def _clojure_or_skip() -> str:
    clojure = shutil.which("clojure")
    if clojure is not None:
        return clojure
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail("clojure is not installed, but CI must run this test: apt-get install clojure")
    pytest.skip("clojure is not installed (Debian: apt-get install clojure)")


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Case, str, str]]:
    """Each case with our packed text and what Clojure printed after reading it."""
    clojure = _clojure_or_skip()
    script = tmp_path_factory.mktemp("clojure") / "read_print.clj"
    script.write_text(CLOJURE_SCRIPT, encoding="utf-8")
    texts = [case.packed or EDN.pack(case.value) for case in CASES]
    assert not any("\n" in text or "\r" in text for text in texts)
    result = subprocess.run(
        [clojure, str(script)],
        input="\n".join(texts) + "\n",
        capture_output=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    assert lines[-1] == ""
    assert len(lines) - 1 == len(texts), result.stderr
    return list(zip(CASES, texts, lines[:-1], strict=True))


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
