"""Bar charts of the benchmark figures published in docs/, for the documentation.

    python benchmarks/plot.py            # needs matplotlib: pip install -e '.[docs]'

It reads the figures from the Markdown tables of the docs, so a chart always shows what the
page beside it says: ``docs/packers.md`` (pack+unpack per second, per packer and event
size) and, when it exists, ``docs/benchmarks.md`` (flask_sente beside Flask-SocketIO; the
throughput rows, "... per s"). It writes ``docs/benchmark-packers.png`` and
``docs/benchmark-server.png``. Run it again after updating a table.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from pathlib import Path

import matplotlib.pyplot as plt

DOCS = Path(__file__).resolve().parents[1] / "docs"
COLORS = ("#2f6f9f", "#d98b2b", "#6a9f58", "#9b5fa0")


def markdown_tables(text: str) -> Iterator[list[list[str]]]:
    """Each Markdown table in ``text``, as rows of cells (header first, rule left out)."""
    table: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not all(set(cell) <= set("-: ") for cell in cells):
                table.append(cells)
        elif table:
            yield table
            table = []


def find_table(text: str, *header: str) -> list[dict[str, str]]:
    """The rows, keyed by column, of the first table whose header starts with ``header``."""
    for head, *rows in markdown_tables(text):
        if tuple(head[: len(header)]) == header:
            return [dict(zip(head, row, strict=True)) for row in rows]
    raise LookupError(f"no table with the header {header} found")


def number(cell: str) -> float:
    """A table's figure; an empty cell (a scenario a framework does not run) is NaN."""
    cell = cell.replace(",", "").rstrip("x").strip()
    return float(cell) if cell else math.nan


def bar_chart(
    groups: list[str],
    series: dict[str, list[float]],
    *,
    title: str,
    xlabel: str,
    out: Path,
    log: bool = False,
) -> None:
    """Horizontal bars: one group of bars per label, one bar per series, values written on."""
    height = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(groups) * len(series) + 1.2), dpi=100)
    for i, (name, values) in enumerate(series.items()):
        positions = [g + i * height for g in range(len(groups))]
        bars = ax.barh(positions, values, height, label=name, color=COLORS[i % len(COLORS)])
        labels = ["" if math.isnan(v) else f"{v:,.0f}" for v in values]
        ax.bar_label(bars, labels=labels, padding=3, fontsize=8)
    ax.set_yticks([g + height * (len(series) - 1) / 2 for g in range(len(groups))], groups)
    ax.invert_yaxis()
    if log:
        ax.set_xscale("log")
    ax.set_xlim(right=ax.get_xlim()[1] * (4 if log else 1.15))
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    if len(series) > 1:
        ax.legend(fontsize=8, frameon=False, loc="lower right")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    print(f"wrote {out.relative_to(DOCS.parent)}")


def plot_packers() -> None:
    rows = find_table((DOCS / "packers.md").read_text(encoding="utf-8"), "packer", "event")
    events = list(dict.fromkeys(row["event"] for row in rows))
    packers = list(dict.fromkeys(row["packer"] for row in rows))
    rate = {(row["packer"], row["event"]): number(row["pack+unpack / s"]) for row in rows}
    bar_chart(
        [f"{event} event" for event in events],
        {packer: [rate[packer, event] for event in events] for packer in packers},
        title="Packers: one message packed and unpacked (docs/packers.md)",
        xlabel="pack+unpack per second, one thread (log scale)",
        out=DOCS / "benchmark-packers.png",
        log=True,
    )


def plot_server() -> None:
    source = DOCS / "benchmarks.md"
    if not source.exists():
        print(f"skipped the server chart: {source.relative_to(DOCS.parent)} does not exist")
        return
    rows = find_table(source.read_text(encoding="utf-8"), "figure", "flask_sente")
    rates = [row for row in rows if row["figure"].endswith("per s")]
    names = ("flask_sente", "Flask-SocketIO", "flask-sock")
    frameworks = [column for column in rows[0] if column in names]
    bar_chart(
        [row["figure"] for row in rates],
        {name: [number(row[name]) for row in rates] for name in frameworks},
        title=(
            "flask_sente, Flask-SocketIO and a bare flask-sock echo server,\n"
            "one gunicorn worker (docs/benchmarks.md)"
        ),
        xlabel="per second, more is better (log scale)",
        out=DOCS / "benchmark-server.png",
        log=True,
    )


def main() -> int:
    plot_packers()
    plot_server()
    return 0


if __name__ == "__main__":
    sys.exit(main())
