"""An in-process conformance app with a recorder, and raw wire-level clients for it."""

from __future__ import annotations

import contextlib
import json
import queue
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
import websocket

from examples.conformance import create_app
from flask_sente import EventMsg
from flask_sente.packers import get_packer
from flask_sente.protocol import pack, unpack
from tests.support import serve_in_thread

FAST = {
    "ms_allow_reconnect_before_close_ws": 300,
    "ms_allow_reconnect_before_close_ajax": 400,
    "lp_timeout_ms": 1000,
}


@dataclass
class Recorder:
    """Every event message the server's handlers saw, in order."""

    messages: queue.Queue[EventMsg] = field(default_factory=queue.Queue)
    seen: list[EventMsg] = field(default_factory=list)

    def __call__(self, msg: EventMsg) -> None:
        self.messages.put(msg)

    def wait_for(self, predicate: Callable[[EventMsg], bool], timeout: float = 5.0) -> EventMsg:
        deadline = time.monotonic() + timeout
        for msg in self.seen:
            if predicate(msg):
                return msg
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching event within {timeout} s; saw {self.ids()}")
            try:
                msg = self.messages.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(msg)
            if predicate(msg):
                return msg

    def drain(self, settle: float = 0.0) -> list[EventMsg]:
        """Everything received so far (waiting ``settle`` s for stragglers)."""
        deadline = time.monotonic() + settle
        while True:
            try:
                self.seen.append(self.messages.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                return list(self.seen)

    def ids(self) -> list[str]:
        self.drain()
        return [f"{m.id} {m.data!r}" for m in self.seen]

    def count(self, event_id: str, data: Any = None) -> int:
        self.drain()
        return sum(1 for m in self.seen if m.id == event_id and (data is None or m.data == data))


@dataclass
class Server:
    url: str
    app: Any
    recorder: Recorder
    packer: Any

    @property
    def chsk(self) -> str:
        return self.url + "/chsk"

    @property
    def ws_url(self) -> str:
        return "ws" + self.chsk[4:]

    @property
    def sente(self) -> Any:
        return self.app.extensions["sente_extension"]


@contextlib.contextmanager
def running(**options: Any) -> Iterator[Server]:
    """The conformance app served in a thread, with short grace and poll timings."""
    recorder = Recorder()
    merged = {**FAST, **options}
    app = create_app(on_event=recorder, **merged)
    with serve_in_thread(app) as url:
        yield Server(url, app, recorder, get_packer(merged.get("packer", "json")))


class WsPeer:
    """A raw WebSocket client speaking the wire format by hand."""

    def __init__(
        self,
        server: Server,
        *,
        client_id: str | None = None,
        uid: str | None = None,
        csrf: str | None = None,
        headers: list[str] | None = None,
        **params: str,
    ) -> None:
        self.packer = server.packer
        self.client_id = client_id or str(uuid.uuid4())
        query = dict(params)
        if uid is not None:
            query["uid"] = uid
        query["client-id"] = self.client_id
        if csrf is not None:
            query["csrf-token"] = csrf
        url = server.ws_url + "?" + "&".join(f"{k}={v}" for k, v in query.items())
        self.ws = websocket.create_connection(url, timeout=5, header=headers or [])

    def send(self, value: Any, cb: Any = None) -> None:
        self.ws.send(pack(self.packer, value, cb))

    def send_raw(self, data: str) -> None:
        self.ws.send(data)

    def recv(self, timeout: float = 5.0) -> tuple[Any, Any]:
        self.ws.settimeout(timeout)
        return unpack(self.packer, self.ws.recv())

    def recv_raw(self, timeout: float = 5.0) -> str:
        self.ws.settimeout(timeout)
        return str(self.ws.recv())

    def nothing_within(self, seconds: float) -> bool:
        self.ws.settimeout(seconds)
        try:
            self.ws.recv()
        except websocket.WebSocketTimeoutException:
            return True
        return False

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()


class AjaxPeer:
    """A raw Ajax client: handshake GET, long-poll GETs and form POSTs."""

    def __init__(
        self,
        server: Server,
        *,
        client_id: str | None = None,
        uid: str | None = None,
        csrf: str | None = None,
    ) -> None:
        self.server = server
        self.packer = server.packer
        self.client_id = client_id or str(uuid.uuid4())
        self.uid = uid
        self.http = requests.Session()
        if csrf is not None:
            self.http.headers["X-CSRF-Token"] = csrf

    def _params(self, **extra: Any) -> dict[str, Any]:
        params = {"udt": str(int(time.time() * 1000)), "client-id": self.client_id, **extra}
        if self.uid is not None:
            params["uid"] = self.uid
        return params

    def get(self, *, handshake: bool = False, timeout: float = 10.0) -> requests.Response:
        params = self._params(**({"handshake?": "1"} if handshake else {}))
        return self.http.get(self.server.chsk, params=params, timeout=timeout)

    def poll(self, timeout: float = 10.0) -> tuple[Any, Any]:
        response = self.get(timeout=timeout)
        assert response.status_code == 200, response.text
        return unpack(self.packer, response.text)

    def post(self, event: Any, cb: Any = None, timeout: float = 10.0) -> requests.Response:
        data = {
            "udt": str(int(time.time() * 1000)),
            "client-id": self.client_id,
            "ppstr": pack(self.packer, event, cb),
        }
        params = {"uid": self.uid} if self.uid is not None else None
        return self.http.post(self.server.chsk, data=data, params=params, timeout=timeout)

    def request(self, event: Any, timeout: float = 10.0) -> Any:
        response = self.post(event, "ajax", timeout=timeout)
        assert response.status_code == 200, response.text
        return unpack(self.packer, response.text)


def jsonish(x: Any) -> Any:
    """``x`` with Keywords and tuples turned into plain JSON values, for comparisons."""
    return json.loads(json.dumps(x))


class BinaryWsPeer(WsPeer):
    """A WsPeer for binary packers: sends binary frames and insists on binary frames back."""

    def send(self, value: Any, cb: Any = None) -> None:
        self.ws.send_binary(pack(self.packer, value, cb))

    def recv(self, timeout: float = 5.0) -> tuple[Any, Any]:
        return unpack(self.packer, self.recv_binary(timeout))

    def recv_binary(self, timeout: float = 5.0) -> bytes:
        self.ws.settimeout(timeout)
        opcode, data = self.ws.recv_data()
        assert opcode == websocket.ABNF.OPCODE_BINARY, f"a frame of opcode {opcode}: {data!r}"
        return bytes(data)


class BinaryAjaxPeer(AjaxPeer):
    """An AjaxPeer for binary packers, as Sente's client does it: the packed bytes are the
    POST body, with ``binary?=true`` in the query; answers are application/octet-stream."""

    def poll(self, timeout: float = 10.0) -> tuple[Any, Any]:
        return unpack(self.packer, binary_body(self.get(timeout=timeout)))

    def post(self, event: Any, cb: Any = None, timeout: float = 10.0) -> requests.Response:
        return self.http.post(
            self.server.chsk,
            params=self._params(**{"binary?": "true"}),
            data=pack(self.packer, event, cb),
            headers={"Content-Type": "application/octet-stream"},
            timeout=timeout,
        )

    def request(self, event: Any, timeout: float = 10.0) -> Any:
        return unpack(self.packer, binary_body(self.post(event, "ajax", timeout=timeout)))


def binary_body(response: requests.Response) -> bytes:
    """The body of a 200 answer that must be application/octet-stream."""
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/octet-stream", response.headers
    return response.content
