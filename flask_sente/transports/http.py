"""Raw HTTP on a socket flask_sente took over: the one place that writes HTTP by hand.

A long-poll or POST handed to the event loop is answered long after the WSGI server let go
of it, so its answer is written here, as bytes: a status line, the headers Flask's
``after_request`` hooks set (given by the extension), and the body. A request held on its own
thread that must end without an answer (see :mod:`flask_sente.answers`) writes its bytes on
the WSGI server's socket instead.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable
from email.utils import formatdate
from http import HTTPStatus

TEXT = "text/html; charset=utf-8"
BINARY = "application/octet-stream"
#: Headers written from the answer itself, never copied from the hooks' response.
_OWN_HEADERS = frozenset(("content-length", "content-type", "connection", "date"))

#: The answer to a waiting Ajax request whose answer could not be made.
SERVER_ERROR = (
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 21\r\nConnection: close\r\n\r\ninternal server error"
)

Headers = Iterable[tuple[str, str]]
#: A plain answer: a status and a body (text, or bytes for a binary packer).
Answer = tuple[int, str | bytes]


def http_response(status: int, body: str | bytes, headers: Headers = ()) -> bytes:
    """A whole ``HTTP/1.1`` response; the connection closes after it (the WSGI server no
    longer parses what comes next on it)."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"]
    lines += [f"{k}: {v}" for k, v in headers if k.lower() not in _OWN_HEADERS]
    lines += [
        f"Date: {formatdate(usegmt=True)}",
        f"Content-Type: {BINARY if isinstance(body, bytes) else TEXT}",
        f"Content-Length: {len(data)}",
        "Connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


def write_and_end(sock: socket.socket, data: bytes) -> None:
    """Write ``data`` on a request's socket and shut it down: the request ends there,
    whatever the WSGI server would have written after it."""
    with contextlib.suppress(OSError):
        sock.sendall(data)
        sock.shutdown(socket.SHUT_RDWR)
