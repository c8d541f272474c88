"""Server-side transports: the WebSocket session (``websocket``, ``frames``), the Ajax
waits (``longpoll``), and where connections are held (``drivers``: the event loop in ``loop``
and ``entries``, a thread in ``threaded``, a greenlet in ``cooperative``)."""
