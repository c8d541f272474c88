"""Code examples in the docs are plain fenced blocks, copied from files that are tested.

A page must read well where people first meet it, on a forge, where Sphinx directives such
as ``{literalinclude}`` show as directives and not as code. So each example is an ordinary
fence, marked by the comment above it with the file (from the repository's root) and the
line it starts at; the comment is invisible on a forge and in the built site::

    <!-- snippet: examples/quickstart.py from "import argparse" -->
    ```python
    import argparse
    ...
    ```

The fence holds the file from the first line containing the ``from`` text (the whole file
without one) to its end. ``tests/test_docs.py`` fails when a fence differs from its file;
``python docs/_ext/snippets.py`` rewrites every fence from its file.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

_MARKER = re.compile(r'^<!-- snippet: (?P<path>\S+)(?: from "(?P<start>[^"]+)")? -->$')
_FENCE_OPEN = re.compile(r"^(?P<fence>```+)[^`]*$")


@dataclass(frozen=True)
class Snippet:
    """One marked fence of a page."""

    page: Path
    path: str
    start: str | None
    body: str
    span: tuple[int, int]  # of the body in the page's text

    def expected(self) -> str:
        """The part of the file the fence must hold."""
        lines = (ROOT / self.path).read_text(encoding="utf-8").rstrip("\n").split("\n")
        if self.start is not None:
            first = next((i for i, line in enumerate(lines) if self.start in line), None)
            if first is None:
                raise LookupError(f'{self.page.name}: no line of {self.path} has "{self.start}"')
            lines = lines[first:]
        return "\n".join(lines)


def snippets(page: Path) -> Iterator[Snippet]:
    """The marked fences of ``page``; a marker not followed by a fence is an error."""
    text = page.read_text(encoding="utf-8")
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    for i, line in enumerate(lines):
        marker = _MARKER.match(line)
        if not marker:
            continue
        opening = _FENCE_OPEN.match(lines[i + 1]) if i + 1 < len(lines) else None
        if not opening:
            raise ValueError(f"{page.name}, line {i + 1}: a snippet marker must precede a fence")
        fence = opening["fence"]
        end = next((j for j in range(i + 2, len(lines)) if lines[j] == fence), None)
        if end is None:
            raise ValueError(f"{page.name}, line {i + 2}: the fence is never closed")
        body_start = offsets[i + 2]
        body_end = max(body_start, offsets[end] - 1)  # without the newline before the fence
        yield Snippet(
            page, marker["path"], marker["start"], text[body_start:body_end], (body_start, body_end)
        )


def pages() -> list[Path]:
    """Every Markdown page of the docs, and the README."""
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def rewrite(page: Path) -> bool:
    """Copy every marked fence of ``page`` afresh from its file; True when it changed."""
    text = page.read_text(encoding="utf-8")
    new = text
    for snippet in sorted(snippets(page), key=lambda s: s.span, reverse=True):
        start, end = snippet.span
        body = snippet.expected()
        if start == end:  # an empty fence: the body needs a line of its own
            body += "\n"
        new = new[:start] + body + new[end:]
    if new != text:
        page.write_text(new, encoding="utf-8")
    return new != text


def main() -> int:
    changed = [page for page in pages() if rewrite(page)]
    for page in changed:
        print(f"rewrote {page.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
