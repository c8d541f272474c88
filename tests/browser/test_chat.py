"""The chat demo (examples/chat) in a real browser: users, transports, failures."""

from __future__ import annotations

import importlib.util
import json
import struct
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser.support import Server
from tests.support import ROOT, require_module

sync_api = require_module("playwright.sync_api", "pip install -e '.[dev]'")
expect = sync_api.expect

CHAT = "examples/chat/app.py"
SCREENSHOT = ROOT / "examples" / "chat" / "screenshot.py"
README = ROOT / "README.md"


class ChatUser:
    """One person at the chat page, in a browser context of their own."""

    def __init__(self, page: Any, server: Server, name: str | None, *, ajax: bool = False) -> None:
        self.page = page
        self.name = name
        page.goto(server.url + ("/?transport=ajax" if ajax else "/"))
        expect(self.status).to_have_attribute("data-open", "true")
        if name:
            page.fill("#user", name)
            page.click("#login button[type=submit]")
            expect(page.locator("body")).to_have_attribute("data-uid", name)
            expect(self.status).to_have_attribute("data-open", "true")

    @property
    def status(self) -> Any:
        return self.page.locator("#status")

    def expect_transport(self, kind: str) -> None:
        expect(self.status).to_have_attribute("data-type", kind)

    def say(self, text: str, *, to: str | None = None) -> None:
        if to:
            expect(self.page.locator(f'#to option[value="{to}"]')).to_have_count(1)
            self.page.select_option("#to", to)
        self.page.fill("#text", text)
        self.page.click("#send")
        expect(self.page.locator("#text")).to_have_value("")  # the server acknowledged it

    def message(self, text: str) -> Any:
        return self.page.locator("#messages .msg .text", has_text=text)

    def online(self) -> list[str]:
        return self.page.locator("#online li").evaluate_all("lis => lis.map(l => l.dataset.uid)")


@pytest.fixture
def chat(
    start_server: Callable[..., Server], new_page: Callable[[], Any], tmp_path: Path
) -> Callable[..., tuple[Server, Callable[..., ChatUser]]]:
    """``chat(*args)``: a chat server and ``join(name, ajax=False)`` to open a page on it.

    The server keeps its session key in an instance folder of the test's own, as the demo
    keeps it in ``examples/chat/instance``; a restart reads the same key back.
    """

    def start(*args: str) -> tuple[Server, Callable[..., ChatUser]]:
        server = start_server(CHAT, "--instance", str(tmp_path / "instance"), *args)

        def join(name: str | None, *, ajax: bool = False) -> ChatUser:
            return ChatUser(new_page(), server, name, ajax=ajax)

        return server, join

    return start


def server_who(server: Server) -> dict[str, list[str]]:
    with urllib.request.urlopen(server.url + "/who", timeout=5) as resp:
        return json.load(resp)  # type: ignore[no-any-return]


def eventually(get: Callable[[], Any], expected: Any, page: Any, timeout_ms: int = 15_000) -> None:
    """Poll ``get()`` until it equals ``expected``, letting the page run between tries."""
    waited = 0
    while (value := get()) != expected:
        assert waited < timeout_ms, f"still {value!r}, not {expected!r}, after {timeout_ms} ms"
        page.wait_for_timeout(100)
        waited += 100


@pytest.mark.parametrize("transport", ["ws", "ajax"])
def test_two_users_chat_both_ways(chat: Any, transport: str) -> None:
    _, join = chat()
    alice = join("alice", ajax=transport == "ajax")
    bob = join("bob", ajax=transport == "ajax")
    alice.expect_transport(transport)
    bob.expect_transport(transport)

    alice.say("hello bob")
    expect(bob.message("hello bob")).to_be_visible()
    bob.say("hi alice, good to see you")
    expect(alice.message("hi alice, good to see you")).to_be_visible()
    expect(alice.message("hello bob")).to_have_count(1)
    assert alice.page.locator("#messages .msg.own").count() == 1


def test_page_falls_back_to_ajax_when_websocket_upgrades_are_refused(chat: Any) -> None:
    _, join = chat("--reject-ws")
    alice = join("alice")
    bob = join("bob")
    alice.expect_transport("ajax")
    bob.expect_transport("ajax")
    assert alice.page.evaluate("'last-ws-error' in chsk.state") is True

    bob.say("over long-poll")
    expect(alice.message("over long-poll")).to_be_visible()
    alice.say("and back")
    expect(bob.message("and back")).to_be_visible()


@pytest.mark.parametrize("transport", ["ws", "ajax"])
def test_two_tabs_keep_working_across_a_restart(chat: Any, transport: str) -> None:
    """The session key is kept in the instance folder: after a restart the server still
    knows both tabs' sessions. Offline, the page says so instead of pretending."""
    server, join = chat()
    alice = join("alice", ajax=transport == "ajax")
    bob = join("bob", ajax=transport == "ajax")
    alice.say("before the restart")
    expect(bob.message("before the restart")).to_be_visible()
    eventually(alice.online, ["alice", "bob"], alice.page)

    server.kill()
    for user in (alice, bob):
        expect(user.status).to_have_attribute("data-open", "false")
        expect(user.page.locator("#online")).to_have_attribute("data-stale", "true")
        expect(user.page.locator("#stale")).to_be_visible()
    alice.page.fill("#text", "sent while offline")
    alice.page.click("#send")
    expect(alice.page.locator("#notice")).to_have_text(
        "Not sent: you are offline. Your message is still in the box: send it again once connected."
    )
    expect(alice.page.locator("#text")).to_have_value("sent while offline")

    server.restart()
    for user in (alice, bob):
        expect(user.status).to_have_attribute("data-open", "true", timeout=30_000)
        expect(user.page.locator("#online")).to_have_attribute("data-stale", "false")
        expect(user.page.locator("#stale")).to_be_hidden()
        expect(user.page.locator("body")).to_have_attribute("data-uid", user.name)
        user.expect_transport(transport)
    expect(alice.page.locator("#notice")).to_have_text("")
    alice.page.click("#send")  # the kept text
    expect(alice.page.locator("#text")).to_have_value("")
    expect(bob.message("sent while offline")).to_be_visible()
    bob.say("after the restart")
    expect(alice.message("after the restart")).to_be_visible()
    eventually(alice.online, ["alice", "bob"], alice.page)


@pytest.mark.parametrize("transport", ["ws", "ajax"])
def test_a_lost_session_key_says_session_expired(chat: Any, transport: str, tmp_path: Path) -> None:
    """The instance folder lost its key (a fresh deploy, say): every old session is gone.
    The pages stop retrying, say so, and a reload starts a new session."""
    server, join = chat()
    alice = join("alice", ajax=transport == "ajax")
    bob = join("bob", ajax=transport == "ajax")

    server.kill()
    (tmp_path / "instance" / "secret_key").unlink()
    server.restart()

    for user in (alice, bob):
        expect(user.page.locator("#status-text")).to_have_text(
            "session expired: reload", timeout=30_000
        )
        expect(user.page.locator("#expired")).to_be_visible()
        expect(user.page.locator("#expired-reason")).to_have_text("Bad CSRF token")
        assert user.page.evaluate("chsk.state.refused.status") == 403
        assert user.page.evaluate("chsk.state['udt-next-reconnect']") is None

    # Retrying cannot help, so the page stopped: not even "back online" makes it try again.
    tries: list[str] = []
    alice.page.on("request", lambda r: tries.append(r.url) if "/chsk" in r.url else None)
    alice.page.evaluate("window.dispatchEvent(new Event('online'))")
    alice.page.fill("#text", "lost?")
    alice.page.click("#send")
    expect(alice.page.locator("#notice")).to_have_text(
        "Not sent: your session expired; reload the page."
    )
    assert tries == []

    alice.page.click("#reload")
    expect(alice.status).to_have_attribute("data-open", "true")
    expect(alice.page.locator("#expired")).to_be_hidden()
    expect(alice.page.locator("#login")).to_be_visible()  # a new session: log in again
    alice.page.fill("#user", "alice")
    alice.page.click("#login button[type=submit]")
    expect(alice.page.locator("body")).to_have_attribute("data-uid", "alice")
    expect(alice.status).to_have_attribute("data-open", "true")


def test_private_messages_reach_only_their_user(chat: Any) -> None:
    _, join = chat()
    alice, bob, carol = join("alice"), join("bob"), join("carol")
    alice.say("just for bob", to="bob")
    alice.page.select_option("#to", "")
    alice.say("for everyone")

    expect(carol.message("for everyone")).to_be_visible()
    expect(bob.message("for everyone")).to_be_visible()
    expect(bob.message("just for bob")).to_be_visible()
    expect(bob.page.locator("#messages .msg.private")).to_have_count(1)
    expect(alice.message("just for bob")).to_be_visible()  # the sender sees it too
    expect(carol.message("just for bob")).to_have_count(0)
    expect(carol.page.locator("#messages .msg.private")).to_have_count(0)


def test_who_is_online_in_the_page_matches_the_server(chat: Any) -> None:
    server, join = chat()
    alice = join("alice")
    bob = join("bob", ajax=True)
    eventually(alice.online, ["alice", "bob"], alice.page)
    eventually(bob.online, ["alice", "bob"], bob.page)
    assert server_who(server) == {"users": ["alice", "bob"], "ws": ["alice"], "ajax": ["bob"]}

    bob.page.context.close()  # bob leaves; his uid closes after the grace period
    eventually(lambda: server_who(server)["users"], ["alice"], alice.page)
    eventually(alice.online, ["alice"], alice.page)


def test_typing_indicator(chat: Any) -> None:
    _, join = chat()
    alice, bob = join("alice"), join("bob")
    alice.page.locator("#text").press_sequentially("hel")
    expect(bob.page.locator("#typing")).to_have_text("alice is typing…")
    alice.page.fill("#text", "hello")
    alice.page.click("#send")
    expect(bob.message("hello")).to_be_visible()
    expect(bob.page.locator("#typing")).to_have_text("")


def test_break_connection_button_reconnects(chat: Any) -> None:
    _, join = chat()
    alice, bob = join("alice"), join("bob")
    alice.page.evaluate(
        "() => { window.opens = 0; chsk.onState((s) => { if (s['opened?']) window.opens++; }); }"
    )
    alice.page.click("#break")
    alice.page.wait_for_function("window.opens >= 1")
    expect(alice.status).to_have_attribute("data-open", "true")
    bob.say("after the break")
    expect(alice.message("after the break")).to_be_visible()


def test_login_and_logout_reconnect_with_the_new_uid(chat: Any) -> None:
    _, join = chat()
    anon = join(None)
    assert anon.page.evaluate("chsk.state.uid") == "sente/nil-uid"
    expect(anon.page.locator("#composer")).to_be_hidden()
    anon.page.fill("#user", "dora")
    anon.page.click("#login button[type=submit]")
    anon.page.wait_for_function("chsk.state.uid === 'dora' && chsk.state['open?']")
    anon.page.click("#logout button")
    anon.page.wait_for_function("chsk.state.uid === 'sente/nil-uid' && chsk.state['open?']")
    expect(anon.page.locator("#login")).to_be_visible()


def test_force_ajax_button_switches_transport(chat: Any) -> None:
    _, join = chat()
    alice = join("alice")
    alice.expect_transport("ws")
    alice.page.click("#toggle-ajax")
    alice.expect_transport("ajax")
    expect(alice.page.locator("#toggle-ajax")).to_have_text("Use WebSocket")
    expect(alice.page.locator("body")).to_have_attribute("data-uid", "alice")


def test_the_readme_picture_is_taken_from_the_demo(chat: Any, browser: Any) -> None:
    """docs/demo.png, the README's picture, is two tabs of the demo talking: retaken here,
    so it shows the demo as it is (the same conversation leaves the file as it was)."""
    spec = importlib.util.spec_from_file_location("chat_screenshot", SCREENSHOT)
    assert spec is not None and spec.loader is not None
    screenshot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(screenshot)
    server, _ = chat()
    out = ROOT / "docs" / "demo.png"
    screenshot.take(browser.browser_type, server.url + "/", out)

    head = out.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    assert width > 2 * screenshot.TAB["width"] > height
    assert "![" in README.read_text() and "](docs/demo.png)" in README.read_text()
