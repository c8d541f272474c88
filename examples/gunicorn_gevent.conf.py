"""gunicorn with the gevent worker, for a flask_sente app with many connections.

    pip install 'flask-sente[gevent]'
    gunicorn -c examples/gunicorn_gevent.conf.py 'yourapp:app'
    gunicorn -c examples/gunicorn_gevent.conf.py 'examples.conformance:create_app()'

The gevent worker monkey-patches the standard library before it imports the app, and
flask_sente runs on its greenlets: each WebSocket and waiting long-poll is a greenlet
(``connection_mode="auto"`` picks ``"thread"`` under gevent, where greenlets are cheap).
Do not set ``preload_app``: the app would then be imported before the patching.
"""

bind = "127.0.0.1:8000"

# Without a message queue, one worker per app: its clients' mailboxes and presence live in
# its memory, and a second worker would not see them. With one (SENTE_MESSAGE_QUEUE =
# "redis://..."), raise this to about the number of cores; reuse_port lets the kernel spread
# connections over the workers. No sticky sessions are needed.
workers = 1
reuse_port = False
worker_class = "gevent"
# Open WebSockets, waiting long-polls and ordinary requests, all together.
worker_connections = 10000

timeout = 30
# On shutdown the gevent worker waits this long for its open requests, and every open
# WebSocket and waiting long-poll is one; then it cuts them (clients see close code 1006 and
# reconnect to the next process). Keep it short.
graceful_timeout = 5
keepalive = 5
