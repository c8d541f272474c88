"""The recorded scenarios a-h, played by a client under test against a :class:`ReplayServer`.

The recording's driver made Sente's client connect (a), ask for an echo with a 5000 ms
callback (b), send without one (c), ask for pushes while the server also pushed out of band
(d), time out a 1000 ms callback (e), idle (f), get closed by the server and reconnect (g) and
disconnect (h). :func:`play` makes a :class:`Driver` (the Python client, or sente.js in a
browser) do the same, checks what the client made of the recorded answers, and
:func:`assert_wire` checks what it sent against what the real client sent, lane by lane.
"""

from __future__ import annotations

from typing import Any, Protocol

from flask_sente.protocol import HANDSHAKE, TIMEOUT
from tests.client.replay.script import Script
from tests.client.replay.server import ReplayServer, Seen

#: The callback timeouts of the recorded scenarios (the transcripts' README).
CALLBACK_MS = {"b": 5000, "e": 1000, "g": 5000}
#: Seconds to wait for what a client does on its own clock (a keepalive ping: <= 4 s).
WAIT = 15.0


class Driver(Protocol):
    """A client under test, driven as the recording's driver drove Sente's client."""

    def connect(self) -> None: ...
    def request(self, event: Any, timeout_ms: int) -> Any: ...
    def send(self, event: Any) -> bool: ...
    def events(self, event_id: str, n: int) -> list[Any]:
        """The data of the first ``n`` received events of that id (waiting for them)."""

    def states(self) -> list[dict[str, Any]]:
        """The new state of every ``chsk/state`` event so far."""

    def disconnect(self) -> None: ...


def reply_of(script: Script, scenario: str) -> Any:
    """What the server answered the client's last callback in ``scenario``."""
    for exchange in reversed(script.scenario_exchanges(scenario)):
        if exchange.lane in ("ws", "post") and exchange.answer:
            return script.value(exchange.answer[-1])[0]
    raise KeyError(scenario)


def pushed(script: Script, scenario: str) -> list[Any]:
    """The events the server pushed to the client in ``scenario``, in order: the batches
    ``[[ev ...] nil]`` among its answers and their consequences."""
    out: list[Any] = []
    for exchange in script.scenario_exchanges(scenario):
        for record in [*exchange.answer, *exchange.consequences]:
            if record.kind == "raw" or script.payload(record) is None:
                continue
            value, cb = script.value(record)
            if cb is None and isinstance(value, list) and all(isinstance(e, list) for e in value):
                out.extend(value)
    return out


def handshake_of(script: Script) -> list[Any]:
    """``[uid, None, handshake-data]`` of the recorded handshake."""
    exchange = script.scenario_exchanges("a")[0]
    return list(script.value(exchange.answer[-1])[0][1])


def play(script: Script, server: ReplayServer, driver: Driver, transport: str) -> None:
    """Scenarios a-h; ``transport`` is ``ws`` or ``ajax``."""
    uid, _, data = handshake_of(script)
    driver.connect()
    assert driver.events(str(HANDSHAKE), 1) == [[uid, None, data, True]]

    event, _ = script.sent_events("b")[0]
    assert driver.request(event, CALLBACK_MS["b"]) == reply_of(script, "b")

    posts = len(server.lane("post"))
    assert driver.send(script.sent_events("c")[0][0]) is True
    if transport == "ajax":  # each send is its own request: keep them in the recorded order
        server.wait_for(lambda: _answered(server.lane("post"), posts + 1))

    _play_pushes(script, server, driver, transport)

    event, _ = script.sent_events("e")[0]
    assert driver.request(event, CALLBACK_MS["e"]) == TIMEOUT
    if transport == "ajax":  # F7: the client gives up on the request, the server never answers
        no_reply = server.lane("post")[-1]
        server.wait_for(lambda: _closed_after(server, no_reply))
        assert no_reply.answered == []

    if transport == "ws":
        _idle_ws(script, server, driver)
    else:
        _idle_ajax(script, server)

    _play_close(script, server, driver, transport)

    driver.disconnect()
    if transport == "ws":
        server.wait_for(lambda: [s for s in server.lane("ws", "ws") if s.record.opcode == "close"])
    else:
        _assert_poll_aborted(server)


def _answered(seen: list[Seen], n: int) -> bool:
    """Whether the ``n``-th of these requests has been answered."""
    return len(seen) >= n and bool(seen[n - 1].answered)


def _closed_after(server: ReplayServer, seen: Seen) -> bool:
    later = server.seen[server.seen.index(seen) + 1 :]
    return any(s.lane == "fin" and s.conn == seen.conn for s in later)


def _play_pushes(script: Script, server: ReplayServer, driver: Driver, transport: str) -> None:
    """The client's push-3, then the driver's out-of-band pushes. On Ajax (F3) the client's
    own push-3 went to its client-id, so the driver's helper asks for the pushes (d2)."""
    posts = len(server.lane("post"))
    assert driver.send(script.sent_events("d")[0][0]) is True
    if transport == "ajax":
        server.wait_for(lambda: _answered(server.lane("post"), posts + 1))
    for name in ["d"] if transport == "ws" else ["d2", "d3"]:
        server.helper(name)
        events = pushed(script, name)
        for event_id in dict.fromkeys(str(e[0]) for e in events):
            want = [e[1] if len(e) > 1 else None for e in events if e[0] == event_id]
            assert driver.events(event_id, len(want)) == want


def _idle_ws(script: Script, server: ReplayServer, driver: Driver) -> None:
    """F8: the server's ping is answered with a pong; the client pings when idle."""
    pongs = len(_frames(server, script, "chsk/ws-pong"))
    server.ping()
    server.wait_for(lambda: len(_frames(server, script, "chsk/ws-pong")) > pongs, WAIT)
    assert driver.events("chsk/ws-ping", 1) == [None]
    pings = len(_frames(server, script, "chsk/ws-ping"))
    server.wait_for(lambda: len(_frames(server, script, "chsk/ws-ping")) > pings, WAIT)


def _frames(server: ReplayServer, script: Script, event_id: str) -> list[Seen]:
    out = []
    for seen in server.lane("ws", "ws"):
        if seen.record.opcode in ("text", "binary"):
            value = script.value(seen.record)
            if isinstance(value, list) and value and value[0] == [event_id]:
                out.append(seen)
    return out


def _idle_ajax(script: Script, server: ReplayServer) -> None:
    """F6: an idle poll times out and the next one follows, without ``handshake?``."""

    def timed_out() -> list[Seen]:
        return [s for s in server.lane("poll") if s.answered == [script.timeout]]

    first = server.wait_for(timed_out, WAIT)[0]
    server.wait_for(lambda: server.lane("poll")[-1] is not first)
    assert not script.is_handshake_poll(server.lane("poll")[-1].record)


def _play_close(script: Script, server: ReplayServer, driver: Driver, transport: str) -> None:
    """F9 / F11: closed by the server, the client reconnects at once (no backoff) with the
    same client-id and params, and gets the handshake again."""
    states_before = len(driver.states())
    posts = len(server.lane("post"))
    assert driver.send(script.sent_events("g")[0][0]) is True
    if transport == "ajax":  # F3 again: no effect; the driver's helper closes the poll
        server.wait_for(lambda: _answered(server.lane("post"), posts + 1))
        assert server.helper("g2")[0].startswith(b"HTTP/1.1 200 OK\r\n")
    uid, _, data = handshake_of(script)
    assert driver.events(str(HANDSHAKE), 2)[1] == [uid, None, data, False]
    states = driver.states()[states_before:]
    closed = next(s for s in states if not s["open?"])
    if transport == "ws":
        assert closed["last-close"]["reason"] == "clean"
        ws_close = closed["last-ws-close"]
        assert (ws_close["code"], ws_close["reason"], ws_close["clean?"]) == (1000, "", True)
    else:
        assert closed["last-close"]["reason"] == "unexpected"
    assert not [s for s in states if "udt-next-reconnect" in s], "a backoff before the retry"
    last = "g" if transport == "ws" else "g2"  # where the recorded echo after the reconnect is
    event = script.sent_events(last)[-1][0]
    assert driver.request(event, CALLBACK_MS["g"]) == reply_of(script, last)


def _assert_poll_aborted(server: ReplayServer) -> None:
    """F10: disconnecting aborts the pending poll (the client closes its connection) and
    sends nothing."""
    requests = len([s for s in server.seen if s.lane != "fin"])
    last_poll = server.lane("poll")[-1]
    server.wait_for(lambda: _closed_after(server, last_poll))
    assert len([s for s in server.seen if s.lane != "fin"]) == requests


def compress(keys: list[Any]) -> list[Any]:
    """Runs of equal keys as one: how many plain polls a client makes depends on timing."""
    return [k for i, k in enumerate(keys) if i == 0 or keys[i - 1] != k]


def assert_wire(script: Script, server: ReplayServer, transport: str) -> None:
    """What the client sent equals what the real client sent, message by message, in order
    on each lane (the client's keepalive pings, whose number depends on timing, apart)."""
    assert server.mismatches == [], server.describe()

    def is_ping(key: tuple[Any, ...]) -> bool:
        return key[0] == "ws" and b"chsk/ws-ping" in key[2] and b"{cb}" in key[2]

    lanes = ["ws"] if transport == "ws" else ["post", "poll"]
    for lane in lanes:
        want = [script.key(r) for r in script.client_records(lane)]
        seen = server.lane(lane)
        if lane == "ws":
            # one WebSocket at a time, each in TCP order; but the server reads each on its
            # own thread, so a close echo and the next upgrade may be logged either way
            first = {s.conn: i for i, s in reversed(list(enumerate(seen)))}
            seen = sorted(seen, key=lambda s: first[s.conn])
        got = [script.key(s.record) for s in seen]
        if lane == "poll":
            want, got = compress(want), compress(got)
        pings = [k for k in got if is_ping(k)]
        if lane == "ws":
            assert pings and all(p == next(w for w in want if is_ping(w)) for p in pings)
        want = [k for k in want if not is_ping(k)]
        got = [k for k in got if not is_ping(k)]
        assert got == want, f"the {lane} lane differs from {script.transcript.name}:\n" + (
            server.describe()
        )
    for seen in server.lane("ws", "ws"):
        assert (seen.record.fin, seen.record.masked) == (True, True), seen
