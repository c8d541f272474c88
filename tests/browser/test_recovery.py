"""sente.js push recovery in a real browser: the report, the filter, and recovery against
the conformance app through broken connections on both transports."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.browser.support import Server
from tests.browser.test_sente_js import CONFORMANCE, RECORDER, connect, wait_open
from tests.support import require_module

require_module("playwright.sync_api", "pip install -e '.[dev]'")

UID = "b1"


@pytest.fixture(scope="module")
def conformance() -> Iterator[Server]:
    server = Server(CONFORMANCE, "--lp-timeout-ms", "1000")
    yield server
    server.stop()


@pytest.fixture
def page(conformance: Server, new_page: Callable[[], Any]) -> Any:
    """A page of the conformance app with sente.js, the recorder and the fault helpers."""
    page = new_page()
    page.goto(conformance.url + "/no-such-page")
    page.add_script_tag(url="/_sente/static/sente.js")
    page.evaluate(RECORDER)
    page.evaluate(FAULTS)
    return page


# Fake sockets (the frames come from the test) and a fetch that loses poll answers.
FAULTS = """() => {
  window.urls = [];
  window.socks = [];
  window.fakeWs = (url) => {
    const sock = { url, sent: [], send(x) { this.sent.push(x); }, close() {} };
    window.urls.push(url);
    window.socks.push(sock);
    return sock;
  };
  window.frame = (value) => {
    const sock = window.socks[window.socks.length - 1];
    sock.onmessage({ data: JSON.stringify(value) });
  };
  window.dropSocket = () => {
    const sock = window.socks[window.socks.length - 1];
    sock.onclose({ code: 1006, reason: "", wasClean: false });
  };
  window.loseNextAnswer = false;
  const fetch = window.fetch.bind(window);
  window.fetch = async (url, init) => {
    const response = await fetch(url, init);
    if (window.loseNextAnswer && String(url).includes("/chsk?")) {
      if ((await response.clone().text()).includes("test/oob-push")) {
        window.loseNextAnswer = false;
        throw new TypeError("the answer was lost in transit");
      }
    }
    return response;
  };
}"""

HANDSHAKE = [["chsk/handshake", [UID, None, None]], None]


def _batch(values: list[Any], seq: str | None) -> list[Any]:
    events = [["test/n", v] for v in values]
    return [events, None] if seq is None else [events, None, seq]


def _delivered(page: Any) -> list[Any]:
    return page.evaluate("rec.events.filter((e) => e[0] === 'test/n').map((e) => e[1])")


def test_repeats_are_dropped_and_new_epochs_adopted(page: Any) -> None:
    page.evaluate(
        "() => record({type: 'ws', clientId: 'b1', wsKaliveMs: 0, wsConstructor: fakeWs})"
    )
    assert page.evaluate("c.lastSeq") == "-"
    page.evaluate("(f) => frame(f)", HANDSHAKE)
    frames = [
        _batch(["a1", "a2"], "ep1:2"),
        _batch(["a1", "a2", "a3"], "ep1:3"),
        _batch(["a2"], "ep1:2"),
        _batch(["a4"], "ep1:4"),
        _batch(["plain"], None),
        _batch(["b1"], "ep2:1"),
        _batch(["b1", "b2"], "ep2:2"),
    ]
    for f in frames:
        page.evaluate("(f) => frame(f)", f)
    page.wait_for_function("rec.events.filter((e) => e[0] === 'test/n').length >= 7")
    assert _delivered(page) == ["a1", "a2", "a3", "a4", "plain", "b1", "b2"]
    assert page.evaluate("c.lastSeq") == "ep2:2"
    page.evaluate("dropSocket()")  # the first retry is immediate
    page.wait_for_function("urls.length === 2")
    urls = page.evaluate("urls")
    assert urls[0].endswith(f"/chsk?client-id={UID}&fs-last-seq=-")
    assert urls[1].endswith(f"/chsk?client-id={UID}&fs-last-seq=ep2%3A2")


def test_recover_false_reports_nothing_and_keeps_every_event(page: Any) -> None:
    page.evaluate(
        "() => record({type: 'ws', clientId: 'b1', wsKaliveMs: 0, wsConstructor: fakeWs,"
        " recover: false})"
    )
    page.evaluate("(f) => frame(f)", HANDSHAKE)
    for _ in range(2):
        page.evaluate("(f) => frame(f)", _batch(["x"], "ep1:1"))
    page.wait_for_function("rec.events.filter((e) => e[0] === 'test/n').length >= 2")
    assert _delivered(page) == ["x", "x"]
    assert page.evaluate("c.lastSeq") is None
    assert page.evaluate("urls")[0].endswith(f"/chsk?client-id={UID}")


def test_recover_false_speaks_sentes_wire(page: Any) -> None:
    requests: list[Any] = []
    page.on("request", lambda r: requests.append(r) if "/chsk?" in r.url else None)
    connect(page, type="ajax", clientId="sente-wire", recover=False)
    wait_open(page)
    page.evaluate("c.send(['test/push-me', 1])")
    page.wait_for_function("rec.events.some((e) => e[0] === 'test/pushed')")
    assert requests and not [r for r in requests if "fs-last-seq" in r.url]
    assert re.fullmatch(r".*/chsk\?udt=\d+&client-id=sente-wire&handshake%3F=1", requests[0].url)


# Pushes 0..count-1 through /push, calling doBreak() before push i in `breaks` once every
# earlier push arrived, then "end"; returns the data of every test/oob-push received.
STREAM = """async ({ uid, count, breaks }) => {
  const got = () => rec.events.filter((e) => e[0] === "test/oob-push");
  const until = async (pred, ms) => {
    const t0 = Date.now();
    while (!pred()) {
      if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms: ${pred}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  for (let i = 0; i < count; i++) {
    if (breaks.includes(i)) {
      await until(() => got().length >= i, 15000);
      doBreak();
    }
    await fetch(`/push?uid=${uid}&data=${i}`);
  }
  await fetch(`/push?uid=${uid}&data=end`);
  await until(() => got().some((e) => e[1] === "end"), 20000);
  return got().map((e) => e[1]);
}"""

BREAKS = {
    "ws-close": ("ws", "() => c.breakConnection()"),
    "ws-server-close": ("ws", "() => c.send(['test/close-me'])"),
    "ws-silent": ("ws", "() => c.breakConnection({closeWs: false})"),
    "ajax-abort": ("ajax", "() => c.breakConnection()"),
    "ajax-server-close": ("ajax", "() => c.send(['test/close-me'])"),
    "ajax-answer-lost": ("ajax", "() => { loseNextAnswer = true; }"),
}


@pytest.mark.parametrize("how", list(BREAKS))
def test_a_hundred_pushes_through_three_breaks_arrive_once_in_order(page: Any, how: str) -> None:
    kind, brk = BREAKS[how]
    uid = f"stream-{how}"
    connect(page, type=kind, clientId=uid, wsKaliveMs=400, wsPingTimeoutMs=300)
    wait_open(page)
    page.evaluate(f"() => {{ window.doBreak = {brk}; }}")
    got = page.evaluate(STREAM, {"uid": uid, "count": 100, "breaks": [20, 50, 80]})
    assert got == [str(i) for i in range(100)] + ["end"]
    assert page.evaluate("rec.handshakes") >= 2
    assert re.fullmatch(r"[0-9a-f]+:101", page.evaluate("c.lastSeq"))
