"""set_min_log_level: Sente's level names on Python logging."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from flask_sente import set_min_log_level
from flask_sente.errors import ConfigError
from flask_sente.logs import REPORT, TRACE

LIBRARY = logging.getLogger("flask_sente")


@pytest.fixture(autouse=True)
def _restore_level() -> Iterator[None]:
    before = LIBRARY.level
    yield
    LIBRARY.setLevel(before)


@pytest.mark.parametrize(
    ("name", "level"),
    [
        ("trace", TRACE),
        ("debug", logging.DEBUG),
        ("info", logging.INFO),
        ("warn", logging.WARNING),
        (":warn", logging.WARNING),
        ("error", logging.ERROR),
        ("fatal", logging.CRITICAL),
        ("report", REPORT),
        ("WARNING", logging.WARNING),
        (logging.ERROR, logging.ERROR),
    ],
)
def test_sente_and_python_level_names(name: str | int, level: int) -> None:
    set_min_log_level(name)
    assert LIBRARY.level == level


def test_trace_lets_everything_through_and_report_silences_the_library(caplog) -> None:
    caplog.set_level(1)  # the root takes everything; the library's own level decides
    child = logging.getLogger("flask_sente.server")
    set_min_log_level("trace")
    child.log(TRACE, "a trace line")
    set_min_log_level("report")
    child.critical("not shown at report")
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("flask_sente")]
    assert lines == ["a trace line"]
    assert logging.getLevelName(TRACE) == "TRACE"


def test_an_unknown_level_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown log level 'loud'.*report.*trace"):
        set_min_log_level("loud")
