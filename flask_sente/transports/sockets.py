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
from typing import Any

logger = logging.getLogger("flask_sente.transports.sockets")

#: Where :mod:`flask_sente.testing` puts one end of an in-process socket pair.
TEST_SOCKET_KEY = "flask_sente.test_socket"
_SOCKET_KEYS = (
    ("gunicorn.socket", "gunicorn"),
    ("werkzeug.socket", "werkzeug"),
    (TEST_SOCKET_KEY, "test"),
)


def socket_from_environ(environ: dict[str, Any]) -> tuple[socket.socket | None, str]:
    """The client socket a WSGI server exposes, and which server it is."""
    for key, mode in reversed(_SOCKET_KEYS):
        sock = environ.get(key)
        if sock is not None:
            return sock, mode
    return None, "unknown"


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
