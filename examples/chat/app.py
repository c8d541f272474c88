"""A small chat on flask_sente: a room, private messages, who is online, typing.

Run it and open the printed URL in two browsers (or a normal and a private window):

    python examples/chat/app.py [--port N] [--reject-ws] [--instance DIR]

``--reject-ws`` refuses WebSocket upgrades (403), to watch the page fall back to Ajax.
The server keeps the chat in memory, but the key that signs session cookies is made once
and kept in the instance folder (``examples/chat/instance/secret_key``), so open pages
reconnect with their sessions intact after a restart. ``--secret-key`` (or
``CHAT_SECRET_KEY``) gives the key instead. With a new key every old session is gone: the
pages say "session expired: reload".
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, NamedTuple

from flask import Flask, Response, jsonify, redirect, render_template, request, session, url_for
from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout

from flask_sente import Sente
from flask_sente.protocol import NIL_UID

NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,24}$")
MAX_TEXT = 500
HISTORY = 50


def _logged_in(uid: Any) -> bool:
    return uid is not None and uid != NIL_UID


def _reject_websocket(req: Any) -> Response | None:
    if req.headers.get("upgrade", "").lower() == "websocket":
        return Response("WebSockets are switched off on this server (--reject-ws)", 403)
    return None


def instance_secret_key(instance: Path) -> str:
    """The session key kept in ``instance/secret_key``, made on first use.

    A random key per start would log every open page out at each restart. Two servers
    starting at once agree on one key: the file appears whole (a hard link) or not at all.
    """
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        draft = instance / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        draft.write_text(secrets.token_hex(32) + "\n", encoding="ascii")
        draft.chmod(0o600)
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
        draft.unlink()
    return path.read_text(encoding="ascii").strip()


class Chat(NamedTuple):
    app: Flask
    sente: Sente


def create_app(
    *, secret_key: str | None = None, reject_ws: bool = False, instance: str | None = None
) -> Flask:
    """The chat app; ``reject_ws`` answers every WebSocket upgrade with 403.

    Without ``secret_key`` the key comes from the instance folder (``instance``, by default
    ``examples/chat/instance`` wherever the server starts from), where it is made once and kept.
    """
    return create_chat(secret_key=secret_key, reject_ws=reject_ws, instance=instance).app


def create_chat(
    *, secret_key: str | None = None, reject_ws: bool = False, instance: str | None = None
) -> Chat:
    """The app and its :class:`Sente` (for ``sente.test_client()``); see :func:`create_app`."""
    folder = Path(instance) if instance else Path(__file__).parent / "instance"
    app = Flask(__name__, instance_path=str(folder.resolve()))
    app.secret_key = secret_key or instance_secret_key(Path(app.instance_path))
    sente = Sente(
        app,
        user_id_fn=lambda req: req.session.get("uid") or NIL_UID,  # visitors share the nil uid
        csrf_token_fn=lambda req: req.session.get("csrf"),
        reject_fn=_reject_websocket if reject_ws else None,
    )
    history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
    lock = threading.Lock()
    counter = iter(range(1, sys.maxsize))

    def presence() -> dict[str, Any]:
        uids = sente.connected_uids
        return {
            "users": sorted(str(u) for u in uids["any"] if _logged_in(u)),
            "ws": sorted(str(u) for u in uids["ws"] if _logged_in(u)),
            "ajax": sorted(str(u) for u in uids["ajax"] if _logged_in(u)),
        }

    def csrf_ok() -> bool:
        sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
        expected = session.get("csrf", "")
        return bool(expected) and secrets.compare_digest(sent, expected)

    # ---------------------------------------------------------------- pages

    @app.get("/")
    def index() -> str:
        session.setdefault("csrf", secrets.token_urlsafe(32))
        return render_template("index.html", uid=session.get("uid"), csrf=session["csrf"])

    @app.post("/login")
    def login() -> Any:
        name = request.form.get("user", "").strip()
        if not csrf_ok():
            return jsonify(ok=False, error="bad CSRF token: reload the page"), 403
        if not NAME_RE.match(name):
            return jsonify(ok=False, error="a name is 1-24 letters, digits, '_', '.' or '-'"), 400
        session["uid"] = name
        if request.headers.get("X-Requested-With"):
            return jsonify(ok=True, uid=name)
        return redirect(url_for("index"))

    @app.post("/logout")
    def logout() -> Any:
        if not csrf_ok():
            return jsonify(ok=False, error="bad CSRF token: reload the page"), 403
        session.pop("uid", None)
        if request.headers.get("X-Requested-With"):
            return jsonify(ok=True)
        return redirect(url_for("index"))

    @app.get("/who")
    def who() -> Any:
        """The server's view of who is connected, as JSON (handy for scripts and tests)."""
        return jsonify(presence())

    # --------------------------------------------------------------- events

    @sente.on("chsk/uidport-open")
    @sente.on("chsk/uidport-close")
    def on_presence(msg: Any) -> None:
        sente.broadcast(["chat/who", presence()])

    @sente.on("chat/who")
    def on_who(msg: Any) -> None:
        if msg.reply:
            msg.reply(presence())

    @sente.on("chat/history")
    def on_history(msg: Any) -> None:
        if msg.reply:
            with lock:
                msg.reply(list(history))

    @sente.on("chat/send")
    def on_send(msg: Any) -> None:
        data = msg.data if isinstance(msg.data, dict) else {}
        text = str(data.get("text", "")).strip()[:MAX_TEXT]
        to = data.get("to") or None
        if not _logged_in(msg.uid):
            error = "log in first"
        elif not text:
            error = "nothing to send"
        elif to is not None and (not isinstance(to, str) or not NAME_RE.match(to)):
            error = f"no such user: {to!r}"
        else:
            error = None
        if error:
            if msg.reply:
                msg.reply({"ok": False, "error": error})
            return
        with lock:
            line = {
                "id": next(counter),
                "from": str(msg.uid),
                "to": to,
                "text": text,
                "ts": int(time.time() * 1000),
            }
            if to is None:
                history.append(line)
        if to is None:
            sente.broadcast(["chat/msg", line])
        else:
            sente.send(to, ["chat/private", line])
            if to != msg.uid:
                sente.send(msg.uid, ["chat/private", line])
        if msg.reply:
            msg.reply({"ok": True, "id": line["id"]})

    @sente.on("chat/typing")
    def on_typing(msg: Any) -> None:
        if not _logged_in(msg.uid) or not isinstance(msg.data, dict):
            return
        to = msg.data.get("to") or None
        typing = bool(msg.data.get("typing"))
        event = ["chat/typing", {"from": str(msg.uid), "to": to, "typing": typing}]
        if to is None:
            sente.broadcast(event)
        elif isinstance(to, str):
            sente.send(to, event)

    return Chat(app, sente)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000, help="0 picks a free port")
    parser.add_argument(
        "--secret-key",
        default=os.environ.get("CHAT_SECRET_KEY"),
        help="session key (default: the one kept in the instance folder, made on first use)",
    )
    parser.add_argument(
        "--instance", metavar="DIR", help="instance folder (default: examples/chat/instance)"
    )
    parser.add_argument(
        "--reject-ws", action="store_true", help="refuse WebSocket upgrades (Ajax fallback)"
    )
    args = parser.parse_args(argv)
    app = create_app(secret_key=args.secret_key, reject_ws=args.reject_ws, instance=args.instance)
    server = make_server(args.host, args.port, app, threaded=True)
    print(f"chat demo listening on http://{args.host}:{server.server_port}/", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
