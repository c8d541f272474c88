"""The flask_sente side of the benchmark: the conformance app plus one push trigger.

``test/echo`` (from the conformance app) answers request/reply over both transports;
``bench/push-n`` pushes ``n`` events ``["bench/pushed", [i, time.time()]]`` to the sender's
uid, each stamped when it was sent so the client can time it. For gunicorn::

    gunicorn -k gevent 'benchmarks.sente_app:create_app()'
"""

from __future__ import annotations

import time

from flask import Flask

from examples.conformance import create_app as create_conformance_app
from flask_sente import EventMsg, Sente


def create_app() -> Flask:
    app = create_conformance_app()
    sente: Sente = app.extensions["sente_extension"]

    @sente.on("bench/push-n")
    def push_n(msg: EventMsg) -> None:
        for i in range(int(msg.data)):
            sente.send(msg.uid, ["bench/pushed", [i, time.time()]])

    return app
