"""Drive one WebSocket session on the thread that accepted it (gevent, or no take-over).

The thread waits on the socket and on a wake-up socket pair at once, so it both reads
frames and writes what other threads queued, and no two threads ever write to the socket.
Under gevent this thread is a greenlet and the wait is cooperative. Should serving the
session raise, the client gets a close frame (1011) and the log says whose connection it was.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import time

from .websocket import INTERNAL_ERROR, WsSession

logger = logging.getLogger("flask_sente.transports.threaded")

_WRITE_TIMEOUT_S = 10.0
_RECV_BYTES = 65536


def serve_on_thread(session: WsSession, sock: socket.socket) -> None:
    """Run ``session`` over ``sock`` until it closes; the socket is shut down at the end."""
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
    sock.settimeout(_WRITE_TIMEOUT_S)
    try:
        while True:
            now = time.monotonic()
            session.tick(now)
            out = session.output(now)
            if out:
                sock.sendall(out)
            if session.close_info is not None:
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
                reply = session.receive(data)
                if reply:
                    sock.sendall(reply)
    except OSError as exc:
        session.peer_gone(f"socket error: {exc}")
    except Exception as exc:
        logger.error("serving %s failed; closing it", session.label, exc_info=exc)
        session.close(INTERNAL_ERROR, "internal server error")
        with contextlib.suppress(Exception):
            sock.sendall(session.output(time.monotonic()))
        session.peer_gone("internal server error")
    finally:
        session.wake = lambda: None
        selector.close()
        wake_r.close()
        wake_w.close()
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
