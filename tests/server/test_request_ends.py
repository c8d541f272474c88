"""Every way a long-poll or an Ajax POST ends, and what the client gets: never a ``200`` with
an empty body, which Sente's client cannot read (docs/protocol.md, "How a request ends").

The paths tested elsewhere are named there with their tests; this module has the rest.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests

from flask_sente import EventMsg
from flask_sente.errors import PackError
from flask_sente.protocol import pack
from tests.server.harness import AjaxPeer, Server, jsonish, running
from tests.server.wire import Wire
from tests.support import ROOT, wait_until

F11 = b"0\r\n\r\n"
DEADLINE_S = 5.0


def port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def poll_request(uid: str, client_id: str) -> bytes:
    return (
        f"GET /chsk?uid={uid}&client-id={client_id}&udt=1 HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n"
    ).encode()


def deadline() -> float:
    return time.monotonic() + DEADLINE_S


def pending_poll(server: Server, uid: str) -> Wire:
    """A raw long-poll of a client that handshook, once the server holds it."""
    AjaxPeer(server, client_id=f"{uid}-c", uid=uid).get(handshake=True)
    wire = Wire(port(server))
    wire.send(poll_request(uid, f"{uid}-c"))
    server.recorder.wait_for(lambda m: m.id == "chsk/uidport-open" and m.data == uid)
    return wire


def close_me(server: Server, uid: str) -> requests.Response:
    """The POST of the transcripts' probes: ``[[:test/close-me] nil]`` for ``uid``."""
    return requests.post(
        server.chsk,
        params={"uid": uid},
        data={"udt": "2", "client-id": "probe", "ppstr": pack(server.packer, ["test/close-me"])},
        timeout=DEADLINE_S,
    )


@pytest.fixture(params=["loop", "thread"])
def any_mode(request: pytest.FixtureRequest) -> Iterator[Server]:
    with running(packer="edn", connection_mode=request.param, lp_timeout_ms=10_000) as server:
        yield server


@pytest.fixture
def patient() -> Iterator[Server]:
    """A server whose held requests outlast any test step (lp_timeout_ms 10 s)."""
    with running(packer="edn", lp_timeout_ms=10_000) as server:
        yield server


# ---------------------------------------------------------------------------- long-polls


def test_chsk_close_fails_a_waiting_poll_with_http_kits_bare_terminator(any_mode: Server) -> None:
    """F11: the poll's connection gets exactly ``0\\r\\n\\r\\n`` and no response; the POST
    that closed it gets its normal answer. flask_sente then closes the connection."""
    wire = pending_poll(any_mode, "u-raw")
    answer = close_me(any_mode, "u-raw")
    assert (answer.status_code, answer.text) == (200, "[:chsk/dummy-cb-200 nil]")
    assert wire.read_bytes(len(F11), deadline())[0] == F11
    assert wire.read_eof(deadline())[0] == b""
    wire.close()


def test_chsk_close_fails_the_poll_of_an_http_client(any_mode: Server) -> None:
    peer = AjaxPeer(any_mode, client_id="req-c", uid="u-req")
    peer.get(handshake=True)
    outcome: list[Any] = []

    def poll() -> None:
        try:
            outcome.append(peer.get(timeout=DEADLINE_S))
        except requests.RequestException as exc:
            outcome.append(exc)

    poller = threading.Thread(target=poll)
    poller.start()
    any_mode.recorder.wait_for(lambda m: m.id == "chsk/uidport-open" and m.data == "u-req")
    assert close_me(any_mode, "u-req").status_code == 200
    poller.join(DEADLINE_S)
    assert isinstance(outcome[0], requests.ConnectionError), outcome


def test_chsk_close_fails_the_poll_of_curl(patient: Server) -> None:
    """What the transcripts' curl probe saw: no HTTP status, a failed transfer."""
    if shutil.which("curl") is None:
        pytest.fail("curl is not installed (.ci/run installs it with apt-get)")
    AjaxPeer(patient, client_id="cp1", uid="u-p").get(handshake=True)
    curl = subprocess.Popen(
        [
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
            f"{patient.chsk}?uid=u-p&client-id=cp1&udt=1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        patient.recorder.wait_for(lambda m: m.id == "chsk/uidport-open" and m.data == "u-p")
        assert close_me(patient, "u-p").status_code == 200
        out, err = curl.communicate(timeout=DEADLINE_S)
    finally:
        curl.kill()
    assert curl.returncode != 0 and out == "000", (curl.returncode, out, err)


def test_shutdown_fails_a_waiting_poll_as_chsk_close_does(any_mode: Server) -> None:
    wire = pending_poll(any_mode, "u-down")
    any_mode.app.extensions["sente"].close()
    assert wire.read_bytes(len(F11), deadline())[0] == F11
    assert wire.read_eof(deadline())[0] == b""
    wire.close()


def test_a_newer_poll_of_the_same_client_ends_the_older_with_chsk_timeout(
    patient: Server,
) -> None:
    older = pending_poll(patient, "u-twice")
    newer = Wire(port(patient))
    newer.send(poll_request("u-twice", "u-twice-c"))
    answer = older.read_http(deadline())
    assert (answer.start_line, answer.body) == ("HTTP/1.1 200 OK", b"[:chsk/timeout nil]")
    older.close()
    newer.close()


def test_a_poll_whose_client_left_is_dropped_without_an_answer() -> None:
    with running(lp_timeout_ms=30_000) as server:
        wire = pending_poll(server, "u-gone")
        loop = server.app.extensions["sente"].loop
        wait_until(lambda: loop.connections == 1, DEADLINE_S)
        wire.close()  # long before lp_timeout_ms
        wait_until(lambda: loop.connections == 0, DEADLINE_S)


def test_a_simulated_bad_connection_is_a_503() -> None:
    with running(simulated_bad_conn_rate=1.0) as server:
        peer = AjaxPeer(server, uid="u-bad")
        peer.get(handshake=True)
        response = peer.get()
        assert response.status_code == 503 and response.text


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_failing_user_id_fn_is_a_500(method: str) -> None:
    def user_id_fn(req: Any) -> Any:
        raise RuntimeError("no database")

    with running(user_id_fn=user_id_fn) as server:
        peer = AjaxPeer(server, uid="u-500")
        response = peer.get(handshake=True) if method == "GET" else peer.post(["test/echo", 1])
        assert response.status_code == 500


# ---------------------------------------------------------------------------- POSTs


@pytest.fixture
def slow_replies(patient: Server) -> Iterator[threading.Event]:
    """``test/slow`` replies an unpackable value once the test sets the event, then, told
    by the PackError, a value that packs."""
    release = threading.Event()

    @patient.sente.on("test/slow")
    def slow(msg: EventMsg) -> None:
        release.wait(DEADLINE_S)
        assert msg.reply is not None
        try:
            msg.reply(object())
        except PackError as exc:
            msg.reply({"refused": type(exc).__name__})

    yield release
    release.set()


def test_a_reply_the_packer_cannot_write_raises_in_the_handler_and_takes_nothing(
    patient: Server, slow_replies: threading.Event
) -> None:
    slow_replies.set()
    reply, _ = AjaxPeer(patient).request(["test/slow"])
    assert jsonish(reply) == {"refused": "PackError"}


def test_a_slow_unpackable_reply_takes_nothing_and_the_loop_lives_on(
    patient: Server, slow_replies: threading.Event
) -> None:
    peer = AjaxPeer(patient)
    loop = patient.app.extensions["sente"].loop
    result: list[requests.Response] = []
    poster = threading.Thread(target=lambda: result.append(peer.post(["test/slow"], "ajax")))
    poster.start()
    wait_until(lambda: loop.connections == 1, DEADLINE_S)  # held by the event loop
    slow_replies.set()
    poster.join(DEADLINE_S)
    assert result[0].status_code == 200 and "refused" in result[0].text
    assert peer.request(["test/echo", 1]) == ({"echo": 1}, None)


def test_a_handler_that_raises_leaves_the_post_to_chsk_timeout(edn_server: Server) -> None:
    """As in Sente: no reply comes, so the POST ends with ``chsk/timeout``."""

    @edn_server.sente.on("test/raise")
    def fail(msg: EventMsg) -> None:
        raise RuntimeError("handler failed")

    response = AjaxPeer(edn_server).post(["test/raise"], "ajax")
    assert (response.status_code, response.text) == (200, "[:chsk/timeout nil]")


def test_shutdown_answers_a_post_waiting_for_its_reply_with_a_503(patient: Server) -> None:
    peer = AjaxPeer(patient)
    loop = patient.app.extensions["sente"].loop
    result: list[requests.Response] = []
    poster = threading.Thread(target=lambda: result.append(peer.post(["test/no-reply"], "ajax")))
    poster.start()
    wait_until(lambda: loop.connections == 1, DEADLINE_S)
    patient.app.extensions["sente"].close()
    poster.join(DEADLINE_S)
    assert result[0].status_code == 503 and "shutting down" in result[0].text


def test_a_post_whose_client_left_is_answered_into_nothing_and_released(
    edn_server: Server,
) -> None:
    """A client's FIN cannot say whether it gave up or only stopped writing, so a POST
    waiting for its reply is answered when the reply (here ``chsk/timeout``) is ready."""
    loop = edn_server.app.extensions["sente"].loop
    body = "udt=1&client-id=gone&ppstr=" + quote("[[:test/no-reply] :ajax]")
    wire = Wire(port(edn_server))
    wire.send(
        (
            "POST /chsk HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}"
        ).encode()
    )
    wait_until(lambda: loop.connections == 1, DEADLINE_S)
    wire.close()
    wait_until(lambda: loop.connections == 0, DEADLINE_S)  # lp_timeout_ms is 1 s here


def test_the_real_clients_padded_msgpack_post_gets_its_reply() -> None:
    """F12: the packed value, then zero padding up to 1024 bytes."""
    with running(packer="msgpack") as server:
        package = bytes.fromhex("9292c70900746573742f6563686f82d40073a3782079d4006101d600616a6178")
        response = requests.post(
            server.chsk,
            params={"udt": "1", "client-id": "pad", "binary?": "true"},
            data=package + bytes(1024 - len(package)),
            headers={"Content-Type": "application/octet-stream"},
            timeout=DEADLINE_S,
        )
        assert response.status_code == 200
        assert response.content.hex() == "9281d6006563686f82d40073a3782079d4006101c0"
        damaged = requests.post(
            server.chsk,
            params={"udt": "1", "client-id": "pad", "binary?": "true"},
            data=package + b"\x00\x07",
            headers={"Content-Type": "application/octet-stream"},
            timeout=DEADLINE_S,
        )
        assert damaged.status_code == 400 and "bad package" in damaged.text


def test_a_poll_whose_client_does_not_read_its_answer_is_dropped_and_reported() -> None:
    """Past 8 MiB of unsent answer the loop drops the connection (a failed request) and the
    push is reported undelivered, instead of the server buffering without bound."""
    with running(lp_timeout_ms=30_000, max_message_size=64 * 1024 * 1024) as server:
        AjaxPeer(server, client_id="slow-c", uid="u-slow").get(handshake=True)
        reader = socket.create_connection(("127.0.0.1", port(server)))
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.sendall(poll_request("u-slow", "slow-c"))  # and never reads
        channel = server.app.extensions["sente"]
        wait_until(lambda: channel.loop.connections == 1, DEADLINE_S)
        server.sente.send("u-slow", ["test/big", "x" * (24 * 1024 * 1024)])
        wait_until(lambda: channel.loop.connections == 0, 3 * DEADLINE_S)
        wait_until(lambda: channel.undelivered >= 1, DEADLINE_S)
        reader.close()


def test_the_protocol_page_names_tests_that_exist() -> None:
    """docs/protocol.md's "How a request ends" gives a test for each path; each must exist."""
    page = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    section = page[page.index("## How a request ends") :]
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("test_*.py"))
    named = set(re.findall(r"\b(test_\w+?)(?:\*|\[\w+\])?`", section))
    named = {name for name in named if not name.endswith("_")} | {
        prefix for prefix in re.findall(r"\b(test_\w+_)\*", section)
    }
    assert len(named) > 20
    missing = [name for name in sorted(named) if f"def {name}" not in sources]
    assert missing == []
