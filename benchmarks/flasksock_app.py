"""The bare stack of the benchmark: a plain flask-sock echo server, no protocol of its own.

What the fastest Python WebSocket server on the same gunicorn worker does with nothing on
top: ``/ws`` sends every message back as it came (request/reply), and a message
``push <n>`` makes it send ``n`` messages ``[i, time.time()]`` (push). flask-sock runs the
route on the connection's own thread (a greenlet under gevent) over simple-websocket::

    gunicorn -k gevent 'benchmarks.flasksock_app:create_app()'
"""

from __future__ import annotations

import json
import time
from typing import Any

from flask import Flask
from flask_sock import Sock


def create_app() -> Flask:
    app = Flask(__name__)
    sock = Sock(app)

    @app.get("/")
    def index() -> str:
        return "bare flask-sock echo"

    @sock.route("/ws")
    def echo(ws: Any) -> None:
        while True:
            message = ws.receive()
            if isinstance(message, str) and message.startswith("push "):
                for i in range(int(message[5:])):
                    ws.send(json.dumps([i, time.time()]))
            else:
                ws.send(message)

    return app
