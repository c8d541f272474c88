"""A Flask server for a ClojureScript front end that uses real Sente (see README.md).

    python examples/clojurescript/app.py [--port 5000]

The only Sente-specific setting is ``packer="edn"``: Sente's clients speak edn, while
flask_sente's own clients default to json. Event ids arrive as keywords (``:example/echo``),
which compare equal to the strings the handlers are registered under.
"""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path

from flask import Flask, render_template_string, session

from flask_sente import EventMsg, Sente

# public/ holds the compiled ClojureScript (public/js/main.js), when you have built it.
app = Flask(__name__, static_folder=str(Path(__file__).parent / "public"), static_url_path="")
app.secret_key = secrets.token_hex(16)  # in production: a fixed secret from your config
sente = Sente(app, packer="edn", csrf_token_fn=lambda req: req.session.get("csrf"))

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>Sente client, Flask server</title>
<div id="sente-csrf-token" data-csrf-token="{{ session['csrf'] }}"></div>
<div id="app"></div>
<script src="/js/main.js"></script>
"""


@app.get("/")
def index() -> str:
    session.setdefault("uid", "user-" + secrets.token_hex(3))
    session.setdefault("csrf", secrets.token_urlsafe(24))
    return render_template_string(PAGE)


@sente.on("example/echo")
def echo(msg: EventMsg) -> None:
    """``(chsk-send! [:example/echo {:text "hi"}] 5000 cb)``: cb gets ``{:echo {:text "hi"}}``."""
    if msg.reply:
        msg.reply({"echo": msg.data})
    sente.send(msg.uid, ["example/pushed", {"to": msg.uid}])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="a Flask server for a Sente client")
    parser.add_argument("--port", type=int, default=5000)
    app.run(host="127.0.0.1", port=parser.parse_args().port, threaded=True)
