"""The conformance app: a Flask server answering like the Sente server of the captured traffic.

Used by this project's protocol tests and by any outside conformance client::

    python examples/conformance.py --port 8090 [--packer json|edn|transit|msgpack|gzip+...]
        [--csrf-token T] [--allowed-origin O ...] [--lp-timeout-ms N] [--ws-kalive-ms N]
        [--ws-ping-timeout-ms N]

or under gunicorn, with the same options from the environment (SENTE_PACKER,
SENTE_CSRF_TOKEN, SENTE_ALLOWED_ORIGINS comma-separated, SENTE_LP_TIMEOUT_MS,
SENTE_WS_KALIVE_MS, SENTE_WS_PING_TIMEOUT_MS, SENTE_MESSAGE_QUEUE)::

    gunicorn 'examples.conformance:create_app()'

The uid is the ``uid`` query parameter, else the client-id; the handshake data is
``{"hello": "world", "n": 1}``. ``--port 0`` picks a free port; the first line printed says
where it listens.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request

from flask_sente import EventMsg, Sente
from flask_sente.packers import PACKER_NAMES
from flask_sente.protocol import SKIP_CSRF_CHECK


def create_app(
    *,
    packer: str | None = None,
    csrf_token: str | None = None,
    allowed_origins: list[str] | None = None,
    lp_timeout_ms: int | None = None,
    ws_kalive_ms: int | None = None,
    ws_ping_timeout_ms: int | None = None,
    message_queue: str | None = None,
    on_event: Callable[[EventMsg], None] | None = None,
    **extra: Any,
) -> Flask:
    """The conformance app; ``on_event`` sees every event message first (for tests)."""
    env = os.environ
    packer = packer or env.get("SENTE_PACKER", "json")
    csrf_token = csrf_token or env.get("SENTE_CSRF_TOKEN") or None
    if allowed_origins is None and env.get("SENTE_ALLOWED_ORIGINS"):
        allowed_origins = [o.strip() for o in env["SENTE_ALLOWED_ORIGINS"].split(",") if o.strip()]
    if lp_timeout_ms is None and env.get("SENTE_LP_TIMEOUT_MS"):
        lp_timeout_ms = int(env["SENTE_LP_TIMEOUT_MS"])
    if ws_kalive_ms is None and env.get("SENTE_WS_KALIVE_MS"):
        ws_kalive_ms = int(env["SENTE_WS_KALIVE_MS"])
    if ws_ping_timeout_ms is None and env.get("SENTE_WS_PING_TIMEOUT_MS"):
        ws_ping_timeout_ms = int(env["SENTE_WS_PING_TIMEOUT_MS"])
    message_queue = message_queue or env.get("SENTE_MESSAGE_QUEUE") or None

    app = Flask(__name__)
    app.secret_key = "conformance-app-not-secret"
    options: dict[str, Any] = {
        "packer": packer,
        "user_id_fn": lambda req: req.param("uid") or req.client_id,
        "csrf_token_fn": (lambda req: csrf_token) if csrf_token else (lambda req: SKIP_CSRF_CHECK),
        "handshake_data_fn": lambda req: {"hello": "world", "n": 1},
        "allowed_origins": set(allowed_origins) if allowed_origins else "all",
    }
    if lp_timeout_ms is not None:
        options["lp_timeout_ms"] = lp_timeout_ms
    if ws_kalive_ms is not None:
        options["ws_kalive_ms"] = ws_kalive_ms
    if ws_ping_timeout_ms is not None:
        options["ws_ping_timeout_ms"] = ws_ping_timeout_ms
    if message_queue:
        options["message_queue"] = message_queue
        options["health_path"] = "/health"
    options.update(extra)
    sente = Sente(app, **options)

    def handle(event_id: str) -> Callable[[Callable[[EventMsg], None]], Any]:
        def register(fn: Callable[[EventMsg], None]) -> Any:
            def run(msg: EventMsg) -> None:
                if on_event is not None:
                    on_event(msg)
                fn(msg)

            return sente.on(event_id)(run)

        return register

    record = _uidport_recorder(message_queue)

    @sente.on_default
    def other(msg: EventMsg) -> None:
        if on_event is not None:
            on_event(msg)
        if record is not None and msg.id in ("chsk/uidport-open", "chsk/uidport-close"):
            record(msg.id, msg.data)

    @handle("test/echo")
    def echo(msg: EventMsg) -> None:
        if msg.reply:
            msg.reply({"echo": msg.data})

    @handle("test/reply-str")
    def reply_str(msg: EventMsg) -> None:
        if msg.reply:
            msg.reply("a-string-reply")

    @handle("test/push-me")
    def push_me(msg: EventMsg) -> None:
        sente.send(msg.uid, ["test/pushed", {"got": msg.data}])

    @handle("test/push-3")
    def push_3(msg: EventMsg) -> None:
        for i in range(3):
            sente.send(msg.uid, ["test/pushed", i])

    @handle("test/push-flush")
    def push_flush(msg: EventMsg) -> None:
        sente.send(msg.uid, ["test/pushed-flushed", msg.data], flush=True)

    @handle("test/close-me")
    def close_me(msg: EventMsg) -> None:
        sente.send(msg.uid, ["chsk/close"])

    @handle("test/no-reply")
    def no_reply(msg: EventMsg) -> None:
        pass

    @app.get("/push")
    def push() -> Response:
        sente.send(request.args["uid"], ["test/oob-push", request.args.get("data")])
        return Response("ok", content_type="text/plain")

    app.extensions["sente_extension"] = sente

    @app.get("/uids")
    def uids() -> Any:
        connected = sente.connected_uids
        return {kind: sorted(map(str, uids)) for kind, uids in connected.items()}

    return app


def _uidport_recorder(message_queue: str | None) -> Callable[[str, Any], None] | None:
    """With a message queue, every uidport event of every worker goes to one Redis list
    (``conformance:uidport``), so a test can count them across the cluster."""
    if not message_queue:
        return None
    import redis

    client = redis.Redis.from_url(message_queue)

    def record(event_id: str, uid: Any) -> None:
        client.rpush("conformance:uidport", json.dumps([event_id, uid]))

    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument(
        "--packer",
        choices=PACKER_NAMES,
        default="json",
    )
    parser.add_argument("--csrf-token")
    parser.add_argument("--allowed-origin", action="append", dest="allowed_origins")
    parser.add_argument("--lp-timeout-ms", type=int)
    parser.add_argument("--ws-kalive-ms", type=int)
    parser.add_argument("--ws-ping-timeout-ms", type=int)
    parser.add_argument("--message-queue", help="redis://... to share one cluster")
    args = parser.parse_args(argv)
    app = create_app(
        packer=args.packer,
        csrf_token=args.csrf_token,
        allowed_origins=args.allowed_origins,
        lp_timeout_ms=args.lp_timeout_ms,
        ws_kalive_ms=args.ws_kalive_ms,
        ws_ping_timeout_ms=args.ws_ping_timeout_ms,
        message_queue=args.message_queue,
    )
    from werkzeug.serving import make_server

    server = make_server(args.host, args.port, app, threaded=True)
    print(
        f"flask_sente conformance app listening on http://{args.host}:{server.server_port}",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sys.stdout.flush()


if __name__ == "__main__":
    main()
