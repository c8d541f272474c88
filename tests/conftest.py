"""Fixtures shared by every test directory."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest


@pytest.fixture
def no_thread_leaks() -> Iterator[None]:
    """Fail when a test leaves threads behind (after a bounded grace)."""
    from tests.support import wait_until

    before = set(threading.enumerate())
    yield

    def settled() -> bool:
        return not [t for t in threading.enumerate() if t not in before and t.is_alive()]

    try:
        wait_until(settled, timeout=10)
    except AssertionError:
        leaked = [t.name for t in threading.enumerate() if t not in before]
        raise AssertionError(f"threads left behind: {leaked}") from None
