"""A small app for the failover test: pushes through ``/push``, and a file of every push it
could not deliver.

``SENTE_MESSAGE_QUEUE`` is the broker (a ``redis+sentinel://`` URL in the test).
``SENTE_UNDELIVERED_LOG``: each worker appends one JSON line per ``on_undelivered`` call,
``{"uid": ..., "events": [...], "why": ...}``, so a test can count what was reported lost
across the workers, even while the broker is away. The uid is the ``uid`` query parameter.
"""

from __future__ import annotations

import json
import os
from typing import Any

from flask import Flask, request

from flask_sente import Sente
from flask_sente.protocol import SKIP_CSRF_CHECK


def create_app() -> Flask:
    app = Flask(__name__)
    sente = Sente(
        app,
        message_queue=os.environ["SENTE_MESSAGE_QUEUE"],
        user_id_fn=lambda req: req.param("uid") or req.client_id,
        csrf_token_fn=lambda req: SKIP_CSRF_CHECK,
        allowed_origins="all",
        health_path="/health",
    )
    path = os.environ["SENTE_UNDELIVERED_LOG"]

    @sente.on_undelivered
    def record(uid: Any, events: list[Any], why: str) -> None:
        line = json.dumps({"uid": uid, "events": events, "why": why}) + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())  # one write: lines of two workers do not mix
        finally:
            os.close(fd)

    @app.get("/push")
    def push() -> str:
        sente.send(request.args["uid"], ["test/oob-push", request.args["data"]])
        return "ok"

    return app
