"""Getting the client socket out of a WSGI request, and taking it over.

Taking over (``detach``) duplicates the socket's file descriptor for flask_sente, then
points the server's own descriptor at a dead socket pair. Whatever the WSGI server does
next (write a response, drain the request, shut down and close its socket) lands on the
dead pair and fails quietly, while the real connection lives on in flask_sente's event
loop. This works for any server that exposes its socket object (Werkzeug, gunicorn).
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("flask_sente.transports.sockets")

#: Where :mod:`flask_sente.testing` puts one end of an in-process socket pair.
TEST_SOCKET_KEY = "flask_sente.test_socket"


@dataclass(frozen=True, slots=True)
class WsgiServer:
    """What flask_sente needs to know of the WSGI server that runs a request."""

    name: str
    #: Its request threads may serve a connection to its end. The in-process test transport
    #: may not: it reads the socket only once the response came back.
    may_hold: bool = True
    #: It drops a request quietly, writing nothing, when the response stops iterating.
    stops_quietly: bool = False


_SERVERS = (
    (TEST_SOCKET_KEY, WsgiServer("test", may_hold=False)),
    ("werkzeug.socket", WsgiServer("werkzeug")),
    ("gunicorn.socket", WsgiServer("gunicorn", stops_quietly=True)),
)
UNKNOWN = WsgiServer("unknown")


def socket_from_environ(environ: dict[str, Any]) -> tuple[socket.socket | None, WsgiServer]:
    """The client socket a WSGI server exposes, and which server it is."""
    for key, server in _SERVERS:
        sock = environ.get(key)
        if sock is not None:
            return sock, server
    return None, UNKNOWN


def can_detach(sock: socket.socket) -> bool:
    """TLS state cannot be handed over with a descriptor; such sockets stay with their thread."""
    return not isinstance(sock, ssl.SSLSocket) and sock.fileno() >= 0


def detach(sock: socket.socket) -> socket.socket:
    """A socket of our own on the same connection; the server's descriptor goes dead."""
    ours = socket.socket(fileno=os.dup(sock.fileno()))
    dead, peer = socket.socketpair()
    try:
        os.dup2(dead.fileno(), sock.fileno())
    finally:
        dead.close()
        peer.close()
    ours.setblocking(False)
    return ours
