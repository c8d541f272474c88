"""The quickstart: one page and one Flask server talking over a channel socket.

    python examples/quickstart.py [--port 5000]

Open the printed URL: the page connects, asks the server for a greeting (a request with a
reply), and shows the events the server pushes to it afterwards.
"""

from __future__ import annotations

import argparse
import secrets

from flask import Flask, render_template_string, session

from flask_sente import EventMsg, Sente

app = Flask(__name__)
app.secret_key = secrets.token_hex(16)  # in production: a fixed secret from your config

# The page gets a CSRF token in a <meta> tag; the channel socket must present the same one.
sente = Sente(app, csrf_token_fn=lambda req: req.session.get("csrf"))

PAGE = """<!doctype html>
<meta charset="utf-8">
<meta name="csrf-token" content="{{ session['csrf'] }}">
<title>flask_sente quickstart</title>
<p>greeting: <b id="greeting">connecting...</b></p>
<p>pushed: <span id="pushed"></span></p>
<script src="{{ sente_js_url() }}"></script>
<script>
  const chsk = Sente.connect("/chsk");
  chsk.on("chsk/handshake", async () => {
    const reply = await chsk.request(["demo/hello", {name: "browser"}], {timeoutMs: 5000});
    document.getElementById("greeting").textContent = reply.greeting;
  });
  chsk.on("demo/tick", (msg) => {
    document.getElementById("pushed").textContent += " " + msg.data;
  });
</script>
"""


@app.get("/")
def index() -> str:
    session.setdefault("uid", "user-" + secrets.token_hex(3))  # who this browser is
    session.setdefault("csrf", secrets.token_urlsafe(24))
    return render_template_string(PAGE)


@sente.on("demo/hello")
def hello(msg: EventMsg) -> None:
    if msg.reply:  # None when the client asked for no reply
        msg.reply({"greeting": f"hello {msg.data['name']}, you are {msg.uid}"})
    for n in (1, 2, 3):
        sente.send(msg.uid, ["demo/tick", n])  # reaches every tab of this uid


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the flask_sente quickstart")
    parser.add_argument("--port", type=int, default=5000)
    app.run(host="127.0.0.1", port=parser.parse_args().port, threaded=True)
