"""flask_sente: channel sockets for Flask, speaking Sente's wire protocol."""

from __future__ import annotations

__version__ = "0.1.0"

#: The Sente version whose wire protocol this library speaks.
sente_version = (1, 22, 0)

from typing import TYPE_CHECKING  # noqa: E402

from .errors import (  # noqa: E402
    BrokerUnavailable,
    ChannelClosed,
    ConfigError,
    InvalidEvent,
    InvalidUid,
    PackError,
    ReplyError,
    ReplyTimeout,
    SenteError,
    UnpackError,
    UsageError,
)
from .events import EventMsg, RequestSnapshot, is_event_msg, is_server_event_msg  # noqa: E402
from .logs import set_min_log_level  # noqa: E402
from .packers import (  # noqa: E402
    EdnPacker,
    GzipPacker,
    JsonPacker,
    MsgpackPacker,
    Packer,
    TransitPacker,
    get_packer,
)
from .protocol import (  # noqa: E402
    Keyword,
    as_event,
    assert_event,
    cb_error,
    cb_success,
    is_event,
    validate_event,
)
from .security import allow_origin  # noqa: E402

if TYPE_CHECKING:
    from .emitter import Emitter
    from .extension import Sente


def __getattr__(name: str) -> object:
    # Sente imports Flask; loading it lazily keeps ``import flask_sente.client`` Flask-free.
    if name == "Sente":
        from .extension import Sente

        return Sente
    if name == "Emitter":  # needs the redis package
        from .emitter import Emitter

        return Emitter
    raise AttributeError(f"module 'flask_sente' has no attribute {name!r}")


__all__ = [
    "BrokerUnavailable",
    "ChannelClosed",
    "ConfigError",
    "EdnPacker",
    "Emitter",
    "EventMsg",
    "GzipPacker",
    "InvalidEvent",
    "InvalidUid",
    "JsonPacker",
    "Keyword",
    "MsgpackPacker",
    "PackError",
    "Packer",
    "ReplyError",
    "ReplyTimeout",
    "RequestSnapshot",
    "Sente",
    "SenteError",
    "TransitPacker",
    "UnpackError",
    "UsageError",
    "__version__",
    "allow_origin",
    "as_event",
    "assert_event",
    "cb_error",
    "cb_success",
    "get_packer",
    "is_event",
    "is_event_msg",
    "is_server_event_msg",
    "sente_version",
    "set_min_log_level",
    "validate_event",
]
