"""Sente's log levels on Python's :mod:`logging`: :func:`set_min_log_level`.

Sente logs through Trove, whose levels are ``trace``, ``debug``, ``info``, ``warn``,
``error``, ``fatal`` and ``report``. Python has no ``trace`` and no ``report``: here
``trace`` is level 5 (``TRACE``, below ``DEBUG``) and ``report`` is level 60 (``REPORT``,
above ``CRITICAL``), so a minimum of ``report`` silences every flask_sente logger.
Handlers stay the application's business; only the level of ``flask_sente`` changes.
"""

from __future__ import annotations

import logging

from .errors import ConfigError

TRACE = 5
REPORT = 60

LEVELS = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
    "critical": logging.CRITICAL,
    "report": REPORT,
}

logging.addLevelName(TRACE, "TRACE")
logging.addLevelName(REPORT, "REPORT")


def set_min_log_level(level: int | str) -> None:
    """Set the level of every ``flask_sente`` logger (Sente's ``set-min-log-level!``).

    ``level`` is a Python level number, or a name: Sente's (``"trace"``, ``"warn"``,
    ``"report"``..., with or without the keyword's colon) or Python's (``"WARNING"``).
    """
    if isinstance(level, str):
        name = level.removeprefix(":").lower()
        if name not in LEVELS:
            raise ConfigError(f"unknown log level {level!r}: use one of {sorted(LEVELS)}")
        level = LEVELS[name]
    logging.getLogger("flask_sente").setLevel(level)
