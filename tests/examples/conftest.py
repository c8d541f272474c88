"""Fixtures for the tests of ``examples/``: each example runs as its own server process."""

from __future__ import annotations

from tests.browser.conftest import browser, new_page

__all__ = ["browser", "new_page"]
