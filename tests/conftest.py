"""Fixtures shared by every test directory."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support import RedisServer, require_module, require_program, under_ci


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


# ---------------------------------------------------------------------------- CI


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if under_ci() and skipped:
        terminalreporter.write_line(
            f"CI: {len(skipped)} test(s) skipped, and under CI every test must run; "
            "the run fails (install what they need: .ci/run does)",
            red=True,
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI a skipped test fails the run: a missing dependency must not pass unseen."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if under_ci() and skipped and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# ---------------------------------------------------------------------------- Redis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    redis_server.client().flushall()
    yield redis_server.url


# ---------------------------------------------------------------------------- browser

CHROMIUM = os.environ.get("SENTE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 15_000


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    sync_api = require_module("playwright.sync_api", "pip install -e '.[dev]'")
    chromium = require_program(CHROMIUM, "apt-get install chromium, or set SENTE_CHROMIUM")
    sync_api.expect.set_options(timeout=WAIT_MS)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[[], Any]]:
    """``new_page()``: a page in a fresh browser context (its own cookies); page errors fail."""
    contexts: list[Any] = []
    errors: list[str] = []

    def make() -> Any:
        context = browser.new_context()
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"errors in the page: {errors}"
