"""Every error flask_sente raises, under one root.

Each error also inherits the builtin that matches its meaning, so callers can catch
either the flask_sente class or the builtin they already know::

    SenteError
     +-- InvalidEvent        (also ValueError)  an event is not [id] or [id, data]
     +-- InvalidUid          (also ValueError)  a push addressed to no uid (None)
     +-- PackError           (also ValueError)  a value cannot be packed by a packer
     +-- UnpackError         (also ValueError)  a package cannot be read; carries the raw package
     +-- ConfigError         (also ValueError)  an option, argument or SENTE_* key has a bad value
     +-- UsageError          (also RuntimeError)  a call made where it cannot work
     +-- ChannelClosed       (also ConnectionError)  the channel socket is not open
     +-- BrokerUnavailable   (also ConnectionError)  the message broker (Redis) is unreachable
     +-- ReplyError          the peer's side failed to produce a reply (chsk/error)
     +-- ReplyTimeout        (also TimeoutError)  no reply within the timeout (chsk/timeout)
"""

from __future__ import annotations

from typing import Any


class SenteError(Exception):
    """The root of every flask_sente error."""


class InvalidEvent(SenteError, ValueError):
    """An event is not ``[id]`` or ``[id, data]`` with a namespaced id.

    ``problem`` describes what is wrong, in the spirit of Sente's validation map,
    e.g. ``{"wrong-type": {"expected": "vector", "actual": "str"}}``.
    """

    def __init__(self, event: Any, problem: dict[str, Any]) -> None:
        self.event = event
        self.problem = problem
        super().__init__(f"invalid event {event!r}: {problem}")


class InvalidUid(SenteError, ValueError):
    """A push addressed to a uid that no connection can have (None).

    Sente refuses a nil uid too; ``"sente/all-users-without-uid"`` reaches the clients
    without one.
    """


class PackError(SenteError, ValueError):
    """A value cannot be written by the chosen packer."""


class UnpackError(SenteError, ValueError):
    """A package (wire string or bytes) cannot be read.

    ``package`` is the raw input, so a server can report it as ``chsk/bad-package``.
    """

    def __init__(self, message: str, package: str | bytes) -> None:
        self.package = package
        super().__init__(message)


class ConfigError(SenteError, ValueError):
    """An option, an argument or a ``SENTE_*`` configuration key has a value that cannot work.

    The message names the option, the value given and what was expected.
    """


class UsageError(SenteError, RuntimeError):
    """A call made where it cannot work: on an app ``Sente`` was not initialised on, without
    an app when there are several, or on an event message not attached to a client."""


class ChannelClosed(SenteError, ConnectionError):
    """The channel socket is not open (the ``chsk/closed`` callback value)."""


class BrokerUnavailable(SenteError, ConnectionError):
    """The message broker (Redis) cannot be reached; it is retried with backoff."""


class ReplyError(SenteError):
    """The request failed before a reply could arrive (the ``chsk/error`` callback value)."""


class ReplyTimeout(SenteError, TimeoutError):
    """No reply arrived within the timeout (the ``chsk/timeout`` callback value)."""
