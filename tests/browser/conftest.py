"""Fixtures for tests that drive sente.js in a real browser.

Playwright for Python drives Debian's Chromium (``/usr/bin/chromium``); no browser is ever
downloaded. Servers run as subprocesses on 127.0.0.1 with a free port and announce
readiness on stdout. Every wait is a Playwright wait or a poll with a deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.browser.support import Server


@pytest.fixture
def start_server() -> Iterator[Callable[..., Server]]:
    """``start_server(script, *args)``: a started server, stopped after the test."""
    servers: list[Server] = []

    def start(script: str, *args: str) -> Server:
        server = Server(script, *args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
