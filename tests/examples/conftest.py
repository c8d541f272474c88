"""Fixtures for the tests of ``examples/``: each example runs as its own server process."""

from __future__ import annotations

from tests.browser.conftest import browser, new_page
from tests.bus.conftest import redis_server, redis_url

__all__ = ["browser", "new_page", "redis_server", "redis_url"]
