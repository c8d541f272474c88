"""Fixtures for the client tests: scripted Sente servers, clients that always disconnect."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from flask_sente.client import Client
from tests.client.helpers import assert_no_client_threads
from tests.client.sente_server import CSRF, ScriptedSente


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedSente]]:
    """Start scripted Sente 1.22 servers; all are stopped after the test."""
    servers: list[ScriptedSente] = []

    def start(**kwargs: Any) -> ScriptedSente:
        server = ScriptedSente(**kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def sente(scripted: Callable[..., ScriptedSente]) -> ScriptedSente:
    return scripted()


@pytest.fixture
def make_client() -> Iterator[Callable[..., Client]]:
    """Build clients (edn and the captured CSRF token by default); each is disconnected after."""
    clients: list[Client] = []

    def make(url: str, **kwargs: Any) -> Client:
        kwargs.setdefault("packer", "edn")
        kwargs.setdefault("csrf_token", CSRF)
        client = Client(url, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.disconnect()
    assert_no_client_threads()
