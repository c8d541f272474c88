"""Drive one WebSocket session on the thread that accepted it.

For sockets the event loop cannot take (TLS), and for ``connection_mode="thread"`` outside
gevent. The thread waits on the socket and on a wake-up socket pair at once, so it both reads
frames and writes what other threads queued, and no two threads ever write to the socket (a
TLS socket cannot be written from two threads). Should serving the session raise, the
client gets a close frame (1011) and the log says whose connection it was.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import time

from .entries import OnMessage
from .websocket import INTERNAL_ERROR, WsSession, WsState

logger = logging.getLogger("flask_sente.transports.threaded")

WRITE_TIMEOUT_S = 10.0
_RECV_BYTES = 65536


def serve_on_thread(session: WsSession, sock: socket.socket, on_message: OnMessage) -> None:
    """Run ``session`` over ``sock`` until it closes; the socket is shut down at the end.
    ``on_message`` runs on this thread, which may run quick handlers itself."""
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)

    def wake() -> None:
        with contextlib.suppress(OSError):
            wake_w.send(b"\0")

    session.wake = wake
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    sock.settimeout(WRITE_TIMEOUT_S)
    try:
        while True:
            now = time.monotonic()
            session.tick(now)
            out = session.output(now)
            if out:
                sock.sendall(out)
            if session.state is WsState.CLOSED:
                break
            deadline = session.deadline()
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            for key, _ in selector.select(timeout):
                if key.fileobj is wake_r:
                    with contextlib.suppress(BlockingIOError, InterruptedError):
                        while wake_r.recv(4096):
                            pass
                    continue
                data = sock.recv(_RECV_BYTES)
                if not data:
                    session.peer_gone()
                    break
                for message in session.receive(data, time.monotonic()):
                    on_message(message, True)
    except OSError as exc:
        session.peer_gone(f"socket error: {exc}")
    except Exception as exc:
        fail(session, sock, exc)
    finally:
        session.wake = _nothing
        selector.close()
        wake_r.close()
        wake_w.close()
        end(sock)


def fail(session: WsSession, sock: socket.socket, exc: Exception) -> None:
    """Serving ``session`` raised: log it, send the client a close frame (1011), end it."""
    logger.error("serving %s failed; closing it", session.label, exc_info=exc)
    session.close(INTERNAL_ERROR, "internal server error")
    with contextlib.suppress(Exception):
        sock.sendall(session.output(time.monotonic()))
    session.peer_gone("internal server error")


def end(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def _nothing() -> None:
    return None
