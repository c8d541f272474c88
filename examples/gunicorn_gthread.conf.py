"""gunicorn with the gthread worker, for a flask_sente app.

    gunicorn -c examples/gunicorn_gthread.conf.py 'yourapp:app'
    gunicorn -c examples/gunicorn_gthread.conf.py 'examples.conformance:create_app()'

WebSockets and waiting long-polls leave their request thread for flask_sente's event loop
(``connection_mode="loop"``, the default outside gevent), so ``threads`` sizes the ordinary
requests, Ajax sends waiting for a reply, and the handshakes; not the open connections.
Where gunicorn itself terminates TLS (``certfile``), connections cannot leave their thread:
then give ``threads`` one per connection, and set ``SENTE_MAX_HELD_REQUESTS`` a little below
it so the next connection gets a 503 instead of waiting for a thread that never frees.
"""

bind = "127.0.0.1:8000"

# Without a message queue, one worker per app: its clients' mailboxes and presence live in
# its memory, and a second worker would not see them. With one (SENTE_MESSAGE_QUEUE =
# "redis://..."), raise this to about the number of cores; reuse_port lets the kernel spread
# connections over the workers. No sticky sessions are needed.
workers = 1
reuse_port = False
worker_class = "gthread"
threads = 32

# gthread workers heartbeat from their main loop, so long-lived connections do not trip
# this; it only catches a worker that is truly stuck.
timeout = 30
# On shutdown flask_sente closes every WebSocket (close code 1001) and answers waiting
# long-polls; clients reconnect to the next process.
graceful_timeout = 10
# Idle keep-alive of plain HTTP connections; Sente's Ajax client polls again at once.
keepalive = 5
