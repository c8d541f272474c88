"""Replaying the recorded real-Sente server to clients (``tests/fixtures/protocol/transcripts``).

:mod:`.script` indexes a transcript into what the server answered to each client message;
:mod:`.server` is a server on 127.0.0.1 that answers from it and logs what clients send;
:mod:`.scenarios` drives a client through the recorded scenarios a-h.
"""
