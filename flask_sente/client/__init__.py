"""The blocking Python client for Sente-protocol channel sockets (no Flask import).

::

    from flask_sente.client import Client

    with Client("http://127.0.0.1:5000/chsk") as client:
        print(client.request(["test/echo", {"a": 1}], timeout=5))
        for msg in client:
            print(msg.id, msg.data)

See ``docs/client.md``. :func:`make_channel_socket_client` returns Sente's handles for
code ported from ClojureScript. :func:`csrf_from_page` loads a page for its CSRF token and
session cookies, for apps that tie one to the other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from .backoff import DEFAULT_MAX_MS, exp_backoff, sente_exp_backoff
from .client import Client
from .messages import ChRecv, ClientEventMsg, is_client_event_msg
from .page import PageCredentials, csrf_from_page
from .state import ClientState

__all__ = [
    "DEFAULT_MAX_MS",
    "ChRecv",
    "ChannelSocketClient",
    "Client",
    "ClientEventMsg",
    "ClientState",
    "PageCredentials",
    "csrf_from_page",
    "exp_backoff",
    "is_client_event_msg",
    "make_channel_socket_client",
    "sente_exp_backoff",
]


class ChannelSocketClient(NamedTuple):
    """Sente's ``{:ch-recv :send-fn :state :chsk}``."""

    ch_recv: ChRecv
    send_fn: Callable[..., bool]
    state: ClientState
    chsk: Client


def make_channel_socket_client(
    url: str, csrf_token: str | Callable[[], str | None] | None = None, **opts: Any
) -> ChannelSocketClient:
    """Sente's ``make-channel-socket-client!``: build a :class:`Client` and start connecting."""
    chsk = Client(url, csrf_token=csrf_token, **opts)
    chsk.connect()
    return ChannelSocketClient(chsk.ch_recv, chsk.send, chsk.state, chsk)
