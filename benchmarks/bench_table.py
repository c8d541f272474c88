"""The table ``bench_server.py`` prints: medians of the runs, ratios, and the targets.

Every figure is the median of its runs (each figure on its own). Ratios are flask_sente's
figure over Flask-SocketIO's in the same mode, and over the bare flask-sock echo server's
under gevent (the fastest Python stack measured). Above 1 is better for rates, below 1 for
latencies, CPU and memory.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

SENTE, SOCKETIO, BARE = "flask_sente", "Flask-SocketIO", "flask-sock"
FRAMEWORKS = (SENTE, SOCKETIO, BARE)
BARE_MODE = "gevent"
MODES = ("gthread", "gevent")


@dataclass(frozen=True)
class Target:
    """``flask_sente`` against a reference: ``"socketio"`` (the same mode), ``"bare"``
    (flask-sock under gevent) or ``"value"`` (the figure itself)."""

    against: str
    op: str
    bound: float
    modes: tuple[str, ...] = MODES

    def judge(self, ours: float, socketio: float | None, bare: float | None) -> str:
        reference = {"socketio": socketio, "bare": bare, "value": 1.0}[self.against]
        if not reference:
            return ""
        value = ours / reference
        met = value >= self.bound if self.op == ">=" else value <= self.bound
        unit = {"socketio": "x SIO", "bare": "x bare", "value": ""}[self.against]
        return f"{self.op}{self.bound:g}{unit} {'yes' if met else 'NO'}"


#: (label, scenario, figure, format, targets)
ROWS: list[tuple[str, str, str, str, list[Target]]] = [
    (
        "WS req/reply per s",
        "ws",
        "per_second",
        ",.0f",
        [Target("bare", ">=", 0.75), Target("socketio", ">=", 3, ("gevent",))],
    ),
    ("WS server CPU us per req/reply", "ws", "server_us_per_op", ".1f", []),
    ("WS p50 latency ms", "ws", "p50_ms", ".2f", []),
    ("WS p99 latency ms", "ws", "p99_ms", ".2f", []),
    ("push events per s", "push", "per_second", ",.0f", []),
    ("push p99 latency ms", "push", "p99_ms", ".0f", [Target("value", "<=", 50)]),
    ("push server CPU us per event", "push", "server_us_per_op", ".2f", []),
    ("Ajax req/reply per s", "ajax", "per_second", ",.0f", [Target("socketio", ">=", 2)]),
    ("Ajax server CPU us per req/reply", "ajax", "server_us_per_op", ".0f", []),
    ("Ajax p99 latency ms", "ajax", "p99_ms", ".1f", []),
    (
        "Ajax push events per s",
        "ajax_push",
        "per_second",
        ",.0f",
        [Target("socketio", ">=", 1.2, ("gevent",))],
    ),
    ("Ajax push p99 latency ms", "ajax_push", "p99_ms", ".0f", []),
]
CPU_LABELS = {"ws": "WS", "push": "push", "ajax": "Ajax", "ajax_push": "Ajax push"}
CPU_KEYS = ("loadgen_cpu_pct", "server_cpu_pct", "other_cpu_pct")


def median(runs: list[dict[str, Any]], scenario: str, figure: str) -> float | None:
    values = [r[scenario][figure] for r in runs if scenario in r and figure in r[scenario]]
    return statistics.median(values) if values else None


def ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return ""
    return f"{a / b:.2f}x" if a >= b else f"{a / b:.3f}x"


def _cell(value: float | None, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def table(results: dict[str, Any]) -> str:
    """``results[framework]["throughput"][mode]``: the runs; ``["memory"]``: its idle WS."""

    def runs(name: str, mode: str) -> list[dict[str, Any]]:
        return results.get(name, {}).get("throughput", {}).get(mode, [])

    rows: list[tuple[str, ...]] = []
    for mode in MODES:
        if not runs(SENTE, mode):
            continue
        for label, scenario, figure, fmt, targets in ROWS:
            ours = median(runs(SENTE, mode), scenario, figure)
            sio = median(runs(SOCKETIO, mode), scenario, figure)
            bare_here = median(runs(BARE, mode), scenario, figure)
            bare = median(runs(BARE, BARE_MODE), scenario, figure)
            if ours is None:
                continue
            judged = [t.judge(ours, sio, bare) for t in targets if mode in t.modes]
            rows.append(
                (
                    f"{mode}: {label}",
                    _cell(ours, fmt),
                    _cell(sio, fmt),
                    _cell(bare_here, fmt),
                    ratio(ours, sio),
                    ratio(ours, bare),
                    "; ".join(j for j in judged if j),
                )
            )
        for scenario, label in CPU_LABELS.items():
            cells = []
            for name in FRAMEWORKS:
                values = [median(runs(name, mode), scenario, key) for key in CPU_KEYS]
                cells.append("" if None in values else "/".join(f"{v:.0f}" for v in values))
            rows.append((f"{mode}: CPU % gen/server/others, {label}", *cells, "", "", ""))
    memory = {name: results.get(name, {}).get("memory") for name in FRAMEWORKS}
    if memory[SENTE]:
        per = {n: (m or {}).get("kb_per_conn") for n, m in memory.items()}
        rows.append(
            (
                "gevent: MB per 1,000 idle WS",
                *(_cell(None if v is None else v / 1.024, ".1f") for v in per.values()),
                ratio(per[SENTE], per[SOCKETIO]),
                ratio(per[SENTE], per[BARE]),
                "",
            )
        )
        if "max_target" in memory[SENTE]:
            held = [
                f"{m['max_alive']:,}/{m['max_target']:,}" if m and "max_target" in m else ""
                for m in memory.values()
            ]
            met = "yes" if memory[SENTE]["max_alive"] >= memory[SENTE]["max_target"] else "NO"
            rows.append(("gevent: idle WS held, 1 worker", *held, "", "", f"all {met}"))
    header = ("figure", SENTE, SOCKETIO, BARE, "vs SIO", "vs bare gevent", "target")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        padded = (
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])
