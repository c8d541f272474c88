"""Server options: keyword arguments, then ``SENTE_*`` config keys, then Sente's defaults.

Each option is read once, when ``init_app`` runs, and checked there, so a bad value fails
at start-up with a :class:`~flask_sente.errors.ConfigError` that names the option (or its
``SENTE_*`` key), the value and what was expected, rather than on the first connection. An
unknown keyword is refused; an unknown ``SENTE_*`` key in ``app.config`` is logged as a
warning naming the nearest known key (a typo such as ``SENTE_PAKCER`` is otherwise silently
ignored).

==========================================  ======================  =========================
option (``SENTE_`` + upper-case for config)  default                 meaning
==========================================  ======================  =========================
path                                        ``"/chsk"``             the channel-socket route
packer                                      ``"json"``              a name or a Packer
allowed_origins                             ``"all"``               or a set of origins
ws_kalive_ms                                25000                   ping after half of this idle
ws_ping_timeout_ms                          10000                   close when no reply to a ping
lp_timeout_ms                               20000                   long-poll length; < 60000
send_buf_ms_ws / send_buf_ms_ajax           30 / 100                push batching windows
ms_allow_reconnect_before_close_ws          2500                    close grace for WebSockets
ms_allow_reconnect_before_close_ajax        5000                    close grace for Ajax
recv_buf_or_n                               1000                    receive queue (drops oldest)
max_message_size                            1048576                 bytes; larger: 1009 / 413
handler_workers                             8                       threads running handlers
write_legacy_pack_format                    None                    write Sente's v1 format
simulated_bad_conn_rate                     0.0                     share of sabotaged activities
connection_mode                             ``"auto"``              see below
max_held_requests                           None                    see below
direct_ajax                                 True                    see below
recovery_window_ms                          30000                   mailboxes outlive connections
recovery_backlog                            1000                    events kept per client
max_queued_messages / max_queued_bytes      1000 / 8388608          per-connection send queue
slow_consumer                               ``"disconnect"``        or ``"drop_oldest"``
max_connections_per_uid                     None                    more get a 429
message_queue                               None                    ``"redis://..."``: many workers
channel                                     ``"flask_sente"``       Redis key prefix; one per app
health_path                                 None                    e.g. ``"/sente/health"``: JSON
==========================================  ======================  =========================

``connection_mode``: ``"loop"`` hands each WebSocket and waiting long-poll to one event-loop
thread, so they hold no request thread; ``"thread"`` keeps each on its request thread (or
greenlet). ``"auto"`` picks ``"thread"`` under gevent, where greenlets are cheap, else ``"loop"``.
``max_held_requests``: where a connection does hold its request thread (``"thread"`` mode, TLS
sockets, servers that do not expose their sockets), at most this many are held at once; the
next gets a 503 and a log line instead of waiting for a thread that never frees. Set it a little
below your server's thread count (``gunicorn --threads``).
``direct_ajax``: when nothing of the app would see Flask's dispatch of the channel-socket route
(no ``before_request`` / ``after_request`` / ``teardown_request`` hook, no request-signal
receiver, Flask's own cookie session), Ajax requests are answered without it, which halves
their cost (:mod:`flask_sente.direct`). The callables below then run in an app context but
not a request context: they read the request from their ``RequestSnapshot`` (``req.session``,
``req.header(...)``), not from ``flask.request`` / ``flask.session``. Set it to False for
callables that do.

Callables (``user_id_fn``, ``csrf_token_fn``, ``handshake_data_fn``, ``authorized_fn``,
``unauthorized_fn``, ``maybe_unauthorized_fn``, ``bad_csrf_fn``, ``bad_origin_fn``,
``reject_fn``) are keyword arguments only. Each receives a
:class:`~flask_sente.events.RequestSnapshot`. ``maybe_unauthorized_fn`` is Sente's
``:?unauthorized-fn`` (the ``?`` reads "maybe"): checked after every other check, a
non-None return rejects the request with that answer.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from .errors import ConfigError
from .events import RequestSnapshot
from .packers import Packer, get_packer
from .typecheck import check_types

logger = logging.getLogger("flask_sente.config")

_FLASK_WTF_SESSION_KEY = "csrf_token"


def default_user_id_fn(req: RequestSnapshot) -> Any:
    """The session's ``uid``, as Sente's default reads ``(get-in req [:session :uid])``."""
    return req.session.get("uid")


def default_csrf_token_fn(req: RequestSnapshot) -> Any:
    """The session's Flask-WTF token, checked with Flask-WTF when it is installed.

    Flask-WTF puts a raw token in the session and hands pages a signed form of it, so with
    Flask-WTF installed the reference is a validator rather than a string to compare.
    Without a token in the session the reference is None, and the check fails (as Sente's).
    """
    token = req.session.get(_FLASK_WTF_SESSION_KEY)
    if token is None:
        return None
    try:
        from flask_wtf.csrf import ValidationError, validate_csrf
    except ImportError:
        return token

    def validator(client_token: str) -> bool:
        try:
            validate_csrf(client_token)
        except ValidationError:
            return False
        return True

    return validator


def default_handshake_data_fn(req: RequestSnapshot) -> Any:
    return None


def default_bad_csrf_fn(req: RequestSnapshot) -> Any:
    return "Bad CSRF token", 403


def default_bad_origin_fn(req: RequestSnapshot) -> Any:
    return "Unauthorized origin", 403


def default_unauthorized_fn(req: RequestSnapshot) -> Any:
    return "Unauthorized request", 401


_DEFAULT = object()

_Fn = Callable[[RequestSnapshot], Any]


@dataclass(frozen=True, kw_only=True)
class Options:
    """Every server option, resolved and checked."""

    path: str = "/chsk"
    packer: Packer
    user_id_fn: _Fn = default_user_id_fn
    csrf_token_fn: _Fn | None = default_csrf_token_fn
    handshake_data_fn: _Fn = default_handshake_data_fn
    allowed_origins: str | frozenset[str] = "all"
    authorized_fn: _Fn | None = None
    unauthorized_fn: _Fn = default_unauthorized_fn
    maybe_unauthorized_fn: _Fn | None = None
    bad_csrf_fn: _Fn = default_bad_csrf_fn
    bad_origin_fn: _Fn = default_bad_origin_fn
    reject_fn: _Fn | None = None
    ws_kalive_ms: int | None = 25000
    ws_ping_timeout_ms: int | None = 10000
    lp_timeout_ms: int = 20000
    send_buf_ms_ws: int = 30
    send_buf_ms_ajax: int = 100
    ms_allow_reconnect_before_close_ws: int = 2500
    ms_allow_reconnect_before_close_ajax: int = 5000
    recv_buf_or_n: int = 1000
    max_message_size: int = 1024 * 1024
    handler_workers: int = 8
    #: None: :data:`flask_sente.protocol.WRITE_LEGACY_PACK_FORMAT`, read at each write, as
    #: Sente reads its ``*write-legacy-pack-format?*``.
    write_legacy_pack_format: bool | None = None
    simulated_bad_conn_rate: float = 0.0
    connection_mode: str = "auto"
    max_held_requests: int | None = None
    direct_ajax: bool = True
    recovery_window_ms: int = 30000
    recovery_backlog: int = 1000
    max_queued_messages: int = 1000
    max_queued_bytes: int = 8 * 1024 * 1024
    slow_consumer: str = "disconnect"
    max_connections_per_uid: int | None = None
    message_queue: str | None = None
    channel: str = "flask_sente"
    health_path: str | None = None

    @classmethod
    def resolve(cls, explicit: Mapping[str, Any], config: Mapping[str, Any]) -> Options:
        """Keyword options win over ``SENTE_*`` config keys, which win over defaults."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(explicit) - names)
        if unknown:
            named = ", ".join(f"{name!r}{_nearest(name, names)}" for name in unknown)
            raise ConfigError(f"unknown Sente option {named}; known options: {sorted(names)}")
        _warn_unknown_keys(config, names)
        values: dict[str, Any] = {}
        from_config: set[str] = set()
        for name in names:
            key = config_key(name)
            if name in explicit:
                values[name] = explicit[name]
            elif key in config:
                values[name] = config[key]
                from_config.add(name)
        check_types(
            cls,
            values,
            label=lambda name: config_key(name) if name in from_config else name,
            skip=["packer"],  # a name or a Packer: get_packer says which it is not
        )
        csrf_explicit = "csrf_token_fn" in explicit
        values["packer"] = get_packer(values.get("packer", "json"))
        options = cls(**values)
        options._check()
        if csrf_explicit and options.csrf_token_fn is None:
            logger.warning(
                "csrf_token_fn=None: CSRF checking is DISABLED for %s; any site can drive "
                "this channel socket with your users' cookies",
                options.path,
            )
        return options

    def _check(self) -> None:
        if not self.path.startswith("/"):
            raise ConfigError(f"path must start with '/': got {self.path!r}")
        if not 0 < self.lp_timeout_ms < 60000:
            raise ConfigError(
                f"lp_timeout_ms must be > 0 and < 60000 (clients time out Ajax at 60 s): "
                f"got {self.lp_timeout_ms}"
            )
        for name in (
            "send_buf_ms_ws",
            "send_buf_ms_ajax",
            "ms_allow_reconnect_before_close_ws",
            "ms_allow_reconnect_before_close_ajax",
            "recv_buf_or_n",
            "max_message_size",
            "handler_workers",
            "recovery_window_ms",
            "recovery_backlog",
            "max_queued_messages",
            "max_queued_bytes",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer: got {value!r}")
        for name in (
            "ws_kalive_ms",
            "ws_ping_timeout_ms",
            "max_held_requests",
            "max_connections_per_uid",
        ):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ConfigError(f"{name} must be a positive integer or None: got {value!r}")
        if self.write_legacy_pack_format and self.packer.binary:
            raise ConfigError(
                "write_legacy_pack_format needs a text packer (json, edn): Sente's v1 format "
                "is text only"
            )
        if not 0.0 <= self.simulated_bad_conn_rate <= 1.0:
            raise ConfigError(
                f"simulated_bad_conn_rate must be within [0, 1]: got {self.simulated_bad_conn_rate}"
            )
        if self.slow_consumer not in ("disconnect", "drop_oldest"):
            raise ConfigError(
                f'slow_consumer must be "disconnect" or "drop_oldest": got {self.slow_consumer!r}'
            )
        if self.connection_mode not in ("auto", "loop", "thread"):
            raise ConfigError(
                f'connection_mode must be "auto", "loop" or "thread": got {self.connection_mode!r}'
            )
        if self.allowed_origins != "all":
            if isinstance(self.allowed_origins, str):
                raise ConfigError(
                    f'allowed_origins must be "all" or a set of origins such as '
                    f'{{"https://example.com"}}: got {self.allowed_origins!r}'
                )
            object.__setattr__(self, "allowed_origins", frozenset(self.allowed_origins))

    @property
    def ws_kalive_s(self) -> float | None:
        """Sente halves ``ws_kalive_ms`` internally (its v1.21 change, #455)."""
        return None if self.ws_kalive_ms is None else self.ws_kalive_ms / 2000.0


def config_key(name: str) -> str:
    """The ``app.config`` key of an option: ``lp_timeout_ms`` -> ``SENTE_LP_TIMEOUT_MS``."""
    return "SENTE_" + name.upper()


def _nearest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _warn_unknown_keys(config: Mapping[str, Any], names: Iterable[str]) -> None:
    """Log each ``SENTE_*`` key of ``config`` that is no option, with the nearest one."""
    known = {config_key(name) for name in names}
    for key in config:
        if isinstance(key, str) and key.startswith("SENTE_") and key not in known:
            # compared without the prefix, which every key shares
            close = difflib.get_close_matches(key[6:].lower(), sorted(names), n=1)
            logger.warning(
                "app.config[%r] is not a flask_sente option and is ignored; %s",
                key,
                f"did you mean {config_key(close[0])}?"
                if close
                else "the options are listed in flask_sente.config",
            )
