"""The ``sente-config`` directive: a table of every server option and its ``SENTE_*`` key.

Names and defaults come from :class:`flask_sente.config.Options` itself, so the table cannot
drift from the code. Each meaning is the longer one in ``MEANINGS`` below, else the one in
the option table of ``flask_sente/config.py``'s docstring, where whoever adds an option
describes it. An option described in neither, or a ``MEANINGS`` entry for an option that no
longer exists, is a build warning, and the docs build treats warnings as errors.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

import flask_sente.config
from flask_sente.config import Options

logger = logging.getLogger(__name__)

MEANINGS = {
    "path": "the channel-socket route (GET: WebSocket upgrade, Ajax handshake and long-poll; "
    "POST: Ajax send)",
    "packer": '``"json"``, ``"edn"`` (for real Sente clients) or a '
    ":class:`~flask_sente.packers.Packer` object; clients must use the same one",
    "user_id_fn": "``fn(req) -> uid``; None means anonymous (``sente/nil-uid``)",
    "csrf_token_fn": "``fn(req) -> token``, compared with the token the client sent; "
    '``"sente/skip-CSRF-check"`` skips the check, a callable return is a validator, and '
    "``csrf_token_fn=None`` disables CSRF checking (logged as a warning)",
    "handshake_data_fn": "``fn(req) -> data`` sent to the client in the handshake",
    "allowed_origins": '``"all"``, or a set such as ``{"https://example.com"}`` that the '
    "``Origin`` (else ``Referer``) header must belong to",
    "authorized_fn": "``fn(req)``: a falsy return rejects the request with "
    "``unauthorized_fn(req)``",
    "unauthorized_fn": "the response to a request ``authorized_fn`` refused (401)",
    "maybe_unauthorized_fn": "Sente's ``:?unauthorized-fn``: ``fn(req)``, checked after every "
    "other check; a non-None return is the response",
    "bad_csrf_fn": "the response to a request with a bad CSRF token (403)",
    "bad_origin_fn": "the response to a request from an origin not allowed (403)",
    "reject_fn": "``fn(req)``: a non-None return is the response, before every other check",
    "ws_kalive_ms": "a ping goes out after half of this without traffic; None disables",
    "ws_ping_timeout_ms": "a WebSocket silent this long after a ping is closed",
    "lp_timeout_ms": "a long-poll with nothing to deliver ends with ``chsk/timeout``; "
    "must be below 60000, the clients' Ajax timeout",
    "send_buf_ms_ws": "push batching window, WebSocket",
    "send_buf_ms_ajax": "push batching window, Ajax",
    "ms_allow_reconnect_before_close_ws": "close grace, WebSocket: how long a dropped "
    "client-id keeps its slot and outbox",
    "ms_allow_reconnect_before_close_ajax": "close grace, Ajax: how long a client-id may "
    "go between two polls",
    "recv_buf_or_n": "size of ``ch_recv``; when full the oldest message is dropped and logged",
    "max_message_size": "bytes; larger WebSocket messages close with 1009, larger POSTs get 413",
    "handler_workers": "threads running the decorator handlers",
    "write_legacy_pack_format": "``True`` writes Sente's v1 (``+``/``-``) format, for Sente "
    "1.17 and older peers; ``None`` follows ``flask_sente.protocol.WRITE_LEGACY_PACK_FORMAT``, "
    "read at each write",
    "simulated_bad_conn_rate": "share of connection activities to sabotage, in [0, 1] (testing)",
    "connection_mode": '``"loop"``: WebSockets and waiting long-polls leave their request '
    'thread for one event-loop thread; ``"thread"``: each keeps its request thread (or '
    'greenlet); ``"auto"``: ``"thread"`` under gevent, else ``"loop"``',
    "recovery_window_ms": "how long a client's mailbox outlives its connections: a "
    "flask_sente client back within it gets every push it missed, in order "
    "(:doc:`/reliability`)",
    "recovery_backlog": "events a mailbox keeps for an absent client; older ones are "
    "dropped and reported to ``on_undelivered``",
    "max_queued_messages": "a connection's send queue, in messages; past it, "
    "``slow_consumer`` decides",
    "max_queued_bytes": "a connection's send queue, in bytes; past it, ``slow_consumer`` decides",
    "slow_consumer": '``"disconnect"``: close a client that does not read fast enough (1008 '
    '``slow consumer``); ``"drop_oldest"``: drop its oldest queued messages and report them',
    "max_connections_per_uid": "at most this many connections per uid; more get a 429",
    "max_held_requests": "where connections do hold a request thread, at most this many at "
    "once; the next gets a 503. Set it a little below ``gunicorn --threads``",
}


def docstring_meanings(doc: str) -> dict[str, str]:
    """The meaning column of the option table in ``doc``, by option name.

    The table is an RST simple table (option, default, meaning); a row naming two options
    (``send_buf_ms_ws / send_buf_ms_ajax``) describes both.
    """
    lines = doc.splitlines()
    borders = [i for i, line in enumerate(lines) if re.fullmatch(r"=+( +=+)+", line)]
    if len(borders) < 3:
        return {}
    starts = [m.start() for m in re.finditer(r"=+", lines[borders[0]])]
    ends = [*starts[1:], None]
    meanings = {}
    for line in lines[borders[1] + 1 : borders[2]]:
        cells = [line[start:end].strip() for start, end in zip(starts, ends, strict=True)]
        for name in cells[0].split("/"):
            meanings[name.strip()] = cells[-1]
    return meanings


def _default(name: str, defaults: Options) -> str:
    value = getattr(defaults, name)
    if name == "packer":
        return f'``"{value.name}"``'
    if callable(value):
        return f":func:`~{value.__module__}.{value.__name__}`"
    return f"``{value!r}``"


class SenteConfigDirective(SphinxDirective):
    """``.. sente-config::`` renders the option table."""

    def run(self) -> list[nodes.Node]:
        fields = dataclasses.fields(Options)
        names = {f.name for f in fields}
        meanings = {**docstring_meanings(flask_sente.config.__doc__ or ""), **MEANINGS}
        for name in sorted(names - meanings.keys()):
            logger.warning(
                "sente-config: option %r is not described: add it to the option table in "
                "flask_sente/config.py's docstring",
                name,
            )
        for name in sorted(MEANINGS.keys() - names):
            logger.warning(
                "sente-config: %r is not an option any more: remove it from docs/_ext", name
            )
        defaults = Options.resolve({}, {})
        lines = [
            ".. list-table::",
            "   :header-rows: 1",
            "   :widths: 40 60",
            "",
            "   * - option, config key, default",
            "     - meaning",
        ]
        for field in fields:
            lines += [
                f"   * - ``{field.name}``",
                "",
                f"       ``SENTE_{field.name.upper()}``",
                "",
                f"       default: {_default(field.name, defaults)}",
                f"     - {meanings.get(field.name, '')}",
            ]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="sente-config"), 0, container)
        return container.children


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("sente-config", SenteConfigDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
