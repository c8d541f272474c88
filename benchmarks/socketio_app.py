"""The Flask-SocketIO side of the benchmark: the same two handlers as ``sente_app``.

``echo`` acknowledges with ``{"echo": data}``; ``push_n`` emits ``n`` events
``pushed [i, time.time()]`` to the sender's uid. As in flask_sente, a uid is a room every
connection of that user joins (the ``uid`` query parameter), so a push reaches all of
them. ``BENCH_ASYNC_MODE`` picks Flask-SocketIO's async mode (``threading`` under gunicorn
gthread, ``gevent`` under gunicorn gevent); ``BENCH_MESSAGE_QUEUE``, a Redis URL, gives it its
message queue for many workers (``bench_redis.py``)::

    BENCH_ASYNC_MODE=gevent gunicorn -k gevent 'benchmarks.socketio_app:create_app()'
"""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Flask, request
from flask_socketio import SocketIO, join_room


def create_app() -> Flask:
    app = Flask(__name__)
    socketio = SocketIO(
        app,
        async_mode=os.environ.get("BENCH_ASYNC_MODE", "threading"),
        message_queue=os.environ.get("BENCH_MESSAGE_QUEUE"),
    )

    @socketio.on("connect")
    def connect() -> None:
        join_room(request.args.get("uid") or request.sid)  # type: ignore[attr-defined]

    @socketio.on("echo")
    def echo(data: Any) -> Any:
        return {"echo": data}

    @socketio.on("push_n")
    def push_n(n: int) -> None:
        uid = request.args.get("uid") or request.sid  # type: ignore[attr-defined]
        for i in range(int(n)):
            socketio.emit("pushed", [i, time.time()], to=uid)

    return app
