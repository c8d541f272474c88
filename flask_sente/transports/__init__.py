"""Server-side transports: WebSocket (``websocket``) and Ajax long-polling (``longpoll``)."""
