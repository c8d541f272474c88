"""Take docs/demo.png, the README's picture: two tabs of the chat demo talking.

    python examples/chat/screenshot.py [--out docs/demo.png]

The browser tests take it too (tests/browser/test_chat.py), so it shows the demo as it is.
Needs Playwright for Python and Chromium at /usr/bin/chromium (no browser download).
"""

from __future__ import annotations

import argparse
import base64
import tempfile
import threading
from pathlib import Path

from playwright.sync_api import Browser, BrowserType, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
TAB = {"width": 880, "height": 540}
# Message times change every minute: hidden, and with software raster (whose edges do not
# vary from run to run), the same conversation makes the same bytes.
STEADY = "time { visibility: hidden; }"
STEADY_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-partial-raster",
    "--disable-lcd-text",
    "--force-color-profile=srgb",
]

FRAMES = """<!doctype html>
<meta charset="utf-8">
<style>
  body { margin: 0; padding: 20px; background: #dfe3ec; font: 13px system-ui, sans-serif; }
  .tabs { display: inline-flex; gap: 20px; }
  .window { border-radius: 10px; overflow: hidden; background: #fff;
            box-shadow: 0 4px 16px rgba(20, 30, 60, 0.18); }
  .bar { display: flex; align-items: center; gap: 6px; padding: 8px 12px; background: #eceef3; }
  .bar i { width: 10px; height: 10px; border-radius: 50%; background: #c9ccd6; }
  .bar span { margin-left: 8px; color: #555c6e; }
  img { display: block; }
</style>
<div class="tabs" id="tabs">
  <div class="window"><div class="bar"><i></i><i></i><i></i><span>{left_title}</span></div>
    <img src="data:image/png;base64,{left}"></div>
  <div class="window"><div class="bar"><i></i><i></i><i></i><span>{right_title}</span></div>
    <img src="data:image/png;base64,{right}"></div>
</div>
"""


def _join(browser: Browser, url: str, name: str) -> Page:
    page: Page = browser.new_context(viewport=TAB).new_page()
    page.goto(url)
    page.fill("#user", name)
    page.click("#login button[type=submit]")
    expect(page.locator("body")).to_have_attribute("data-uid", name)
    expect(page.locator("#status")).to_have_attribute("data-open", "true")
    return page


def _say(page: Page, text: str, to: str = "") -> None:
    if to:
        expect(page.locator(f'#to option[value="{to}"]')).to_have_count(1)
    page.select_option("#to", to)
    page.fill("#text", text)
    page.click("#send")
    expect(page.locator("#text")).to_have_value("")  # the server acknowledged it


def take(chromium: BrowserType, url: str, out: Path) -> bool:
    """Two people talk on the chat at ``url``; a picture of both tabs goes to ``out``.

    Returns whether ``out`` changed: the same conversation makes the same bytes, so an
    unchanged demo leaves the file alone.
    """
    browser = chromium.launch(executable_path=CHROMIUM, headless=True, args=STEADY_ARGS)
    try:
        picture = _picture(browser, url)
    finally:
        browser.close()
    if out.exists() and out.read_bytes() == picture:
        return False
    out.write_bytes(picture)
    return True


def _picture(browser: Browser, url: str) -> bytes:
    alice = _join(browser, url, "alice")
    bob = _join(browser, url, "bob")
    expect(alice.locator("#online li")).to_have_count(2)
    expect(bob.locator("#online li")).to_have_count(2)
    _say(alice, "Morning Bob! Is the release review still at 11?")
    _say(bob, "Yes. I restarted the server a minute ago and nobody noticed.")
    _say(alice, "Neither did this tab :)")
    _say(bob, "Can you check the staging deploy first?", to="alice")
    for page in (alice, bob):
        expect(page.locator("#messages .msg")).to_have_count(4)
    bob.select_option("#to", "")
    bob.locator("#text").press_sequentially("See you th")
    expect(alice.locator("#typing")).to_have_text("bob is typing…")
    shots = {}
    for name, page in (("alice", alice), ("bob", bob)):
        page.add_style_tag(content=STEADY)
        shots[name] = base64.b64encode(page.screenshot(animations="disabled")).decode()
    frames = browser.new_context(viewport={"width": 1900, "height": 640}).new_page()
    frames.set_content(
        FRAMES.replace("{left}", shots["alice"])
        .replace("{right}", shots["bob"])
        .replace("{left_title}", "alice · flask_sente chat")
        .replace("{right_title}", "bob · flask_sente chat")
    )
    return frames.locator("#tabs").screenshot(animations="disabled")


def main() -> None:
    from app import create_app  # beside this file
    from werkzeug.serving import make_server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "demo.png"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as instance:
        server = make_server("127.0.0.1", 0, create_app(instance=instance), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        with sync_playwright() as p:
            changed = take(p.chromium, f"http://127.0.0.1:{server.server_port}/", Path(args.out))
        server.shutdown()
    print(f"{'wrote' if changed else 'unchanged:'} {args.out}")


if __name__ == "__main__":
    main()
