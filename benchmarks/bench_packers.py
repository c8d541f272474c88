"""Pack+unpack per second for each packer, single core (run by hand, not a test).

    python benchmarks/bench_packers.py [--seconds 1.0] [--repeat 5] [--quick]

Measures ``protocol.pack`` then ``protocol.unpack`` of a whole message (event plus a callback
id), for a typical event (~200 bytes) and a 64 KiB one, with the json, edn, transit and
msgpack packers, then wrapped in gzip; then the raw libraries on the same data: the
standard-library ``json`` against ``orjson`` (if installed), which is how the json packer's
backend was chosen, the ``msgpack`` package's own C ``packb``/``unpackb``, the floor under
flask_sente's msgpack dialect, and transit-python (if installed), the library the transit
packer was compared with. Rates are per second of this process's CPU time, the median of
``--repeat`` runs; "x json" is the packer's pack+unpack rate over json's for the same event.
Prints Markdown tables; the figures go in ``docs/packers.md``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgpack

from flask_sente import protocol
from flask_sente.packers import (
    EdnPacker,
    GzipPacker,
    JsonPacker,
    MsgpackPacker,
    Packer,
    TransitPacker,
)
from flask_sente.values import Keyword

try:
    import orjson
except ImportError:  # pragma: no cover - optional
    orjson = None

try:  # transit-python, for the comparison in docs/packers.md
    from transit.reader import Reader as TransitReader
    from transit.writer import Writer as TransitWriter
except ImportError:  # pragma: no cover - optional
    TransitReader = TransitWriter = None


def typical_event() -> list[Any]:
    """A chat message as an application sends it: about 200 bytes on the wire."""
    return [
        Keyword("chat/msg"),
        {
            "room": "general",
            "from": "alice",
            "text": "Hello everyone, the build is green again; shipping today.",
            "at": 1700000000123,
            "id": "0f8e4c2a-7d1b-4c3e-9a5f-1b2c3d4e5f60",
            "tags": ["release", "ci"],
            "edited": False,
        },
    ]


def large_event(target: int = 64 * 1024) -> list[Any]:
    """A batch-like event of many small records, about ``target`` bytes packed."""
    rows: list[dict[str, Any]] = []
    event = [Keyword("table/rows"), {"rows": rows}]
    packer = JsonPacker()
    n = 0
    while len(packer.pack(event)) < target:
        rows.append(
            {"id": n, "name": f"user-{n}", "score": n * 1.25, "active": n % 3 == 0, "t": [n, "x"]}
        )
        n += 1
    return event


def rate(fn: Callable[[], object], seconds: float, repeat: int) -> float:
    """Calls per second of ``fn``: the median of ``repeat`` runs of about ``seconds`` each.

    Seconds of this process's CPU time, so that other work on the machine (test suites,
    builds) slows the wall clock without skewing the figures as much.
    """
    calls = 1
    while True:  # calibrate a batch of about a tenth of the run
        start = time.process_time()
        for _ in range(calls):
            fn()
        elapsed = time.process_time() - start
        if elapsed >= seconds / 10:
            break
        calls *= 2
    batches = max(1, round(seconds / elapsed))
    rates = []
    for _ in range(repeat):
        start = time.process_time()
        for _ in range(batches):
            for _ in range(calls):
                fn()
        rates.append(batches * calls / (time.process_time() - start))
    return statistics.median(rates)


def round_trip(packer: Packer, event: list[Any]) -> Callable[[], object]:
    def run() -> object:
        return protocol.unpack(packer, protocol.pack(packer, event, "3f2e1d"))

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each run")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (median kept)")
    parser.add_argument("--quick", action="store_true", help="short runs, to smoke-test")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.repeat = 0.1, 3

    events = {"typical": typical_event(), "64 KiB": large_event()}
    packers: dict[str, Packer] = {
        "json": JsonPacker(),
        "edn": EdnPacker(),
        "transit": TransitPacker(),
        "msgpack": MsgpackPacker(),
    }
    wrapped: dict[str, Packer] = {
        "gzip+json": GzipPacker(JsonPacker()),
        "gzip+transit": GzipPacker(TransitPacker()),
        "gzip+msgpack": GzipPacker(MsgpackPacker()),
    }

    print(f"Python {platform.python_version()} on {platform.machine()}, {_cpu()}, one thread")
    print(f"median of {args.repeat} runs of {args.seconds} s of CPU time each\n")
    json_rates = packer_table("packer", packers, events, args, {})
    print("\nWrapped in gzip (Sente's threshold: packages under 1024 bytes go uncompressed):\n")
    packer_table("wrapped", wrapped, events, args, json_rates)

    print("\nRaw libraries, dumps+loads of the same [event cb] message:\n")
    print("| library | event | dumps+loads / s |")
    print("|---|---|---:|")
    for label, event in events.items():
        message = [event, "3f2e1d"]
        stdlib = rate(
            lambda m=message: json.loads(json.dumps(m, separators=(",", ":"), ensure_ascii=False)),
            args.seconds,
            args.repeat,
        )
        print(f"| json (stdlib) | {label} | {stdlib:,.0f} |")
        if orjson is not None:
            fast = rate(lambda m=message: orjson.loads(orjson.dumps(m)), args.seconds, args.repeat)
            print(f"| orjson {orjson.__version__} | {label} | {fast:,.0f} |")
        plain = rate(lambda m=message: msgpack.unpackb(msgpack.packb(m)), args.seconds, args.repeat)
        version = ".".join(map(str, msgpack.version))
        print(f"| msgpack {version} (plain MessagePack) | {label} | {plain:,.0f} |")
        if TransitReader is not None:
            text = str(TransitPacker().pack(message))
            value = TransitReader("json").read(io.StringIO(text))  # in its own types

            def transit_python(v: Any = value) -> object:
                out = io.StringIO()
                TransitWriter(out, "json").write(v)
                return TransitReader("json").read(io.StringIO(out.getvalue()))

            speed = rate(transit_python, args.seconds, args.repeat)
            print(f"| transit-python (its own types) | {label} | {speed:,.0f} |")


def packer_table(
    first: str,
    packers: dict[str, Packer],
    events: dict[str, Any],
    args: argparse.Namespace,
    json_rates: dict[str, float],
) -> dict[str, float]:
    """One row per packer and event; returns json's pack+unpack rates by event."""
    print(f"| {first} | event | wire bytes | pack+unpack / s | x json | pack / s | unpack / s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, packer in packers.items():
        for label, event in events.items():
            wire = protocol.pack(packer, event, "3f2e1d")
            assert protocol.unpack(packer, wire) == (event, "3f2e1d")
            size = len(wire.encode() if isinstance(wire, str) else wire)
            both = rate(round_trip(packer, event), args.seconds, args.repeat)
            if name == "json":
                json_rates[label] = both
            ratio = both / json_rates[label] if label in json_rates else float("nan")
            pack = rate(lambda p=packer, e=event: protocol.pack(p, e, "3f2e1d"), args.seconds, 1)
            unpack = rate(lambda p=packer, w=wire: protocol.unpack(p, w), args.seconds, 1)
            print(
                f"| {name} | {label} | {size:,} | {both:,.0f} | {ratio:.2f} | {pack:,.0f} "
                f"| {unpack:,.0f} |"
            )
    return json_rates


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} CPUs)"
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
