"""The Python client refuses an event it cannot pack at the call, connected or not."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flask_sente import ConfigError, InvalidEvent, PackError
from flask_sente.client import Client
from tests.client.helpers import next_id
from tests.server.harness import running
from tests.support import wait_until

UNPACKABLE = object()


@pytest.mark.parametrize("transport", ["ws", "ajax"])
def test_send_and_request_refuse_an_unpackable_event_and_go_on(
    make_client: Callable[..., Client], transport: str
) -> None:
    with running() as server:
        client = make_client(server.chsk, type=transport, packer="json", csrf_token=None)
        client.connect()
        next_id(client, "chsk/handshake")
        with pytest.raises(PackError):
            client.send(["t/b", UNPACKABLE])
        with pytest.raises(PackError):
            client.request(["t/b", {"x": UNPACKABLE}], timeout=5)
        with pytest.raises(InvalidEvent):
            client.send("t/not-a-vector")
        replies: list = []
        assert client.send(["test/echo", 1], timeout_ms=5000, cb=replies.append)
        assert client.request(["test/echo", 2], timeout=5) == {"echo": 2}
        wait_until(lambda: replies, 5)
        assert replies == [{"echo": 1}]
        assert not [i for i in server.recorder.ids() if i.startswith("t/")]


def test_a_closed_client_refuses_too_rather_than_answering_closed(
    make_client: Callable[..., Client],
) -> None:
    client = make_client("http://127.0.0.1:9/chsk", packer="json", csrf_token=None)
    with pytest.raises(PackError):
        client.send(["t/b", UNPACKABLE])
    assert client.send(["t/a", 1]) is False  # a packable event: not open, as before
    with pytest.raises(ConfigError, match="timeout_ms"):
        client.send(["t/a", 1], cb=lambda reply: None)
