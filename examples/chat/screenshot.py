"""Take docs/demo.png: three people chatting, seen by one of them.

    python examples/chat/screenshot.py [--out docs/demo.png]

Needs Playwright for Python and Chromium at /usr/bin/chromium (no browser download).
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from app import create_app
from playwright.sync_api import Page, expect, sync_playwright
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "demo.png"))
    args = parser.parse_args()

    server = make_server("127.0.0.1", 0, create_app(), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"]
        )
        pages = {}
        for name in ["alice", "bob", "carol"]:
            page = browser.new_context(viewport={"width": 1100, "height": 640}).new_page()
            page.goto(url + ("?transport=ajax" if name == "carol" else ""))
            page.fill("#user", name)
            page.click("#login button[type=submit]")
            expect(page.locator("body")).to_have_attribute("data-uid", name)
            pages[name] = page
        alice, bob, carol = pages["alice"], pages["bob"], pages["carol"]
        expect(alice.locator("#online li")).to_have_count(3)

        def say(page: Page, text: str, to: str = "") -> None:
            page.select_option("#to", to)
            page.fill("#text", text)
            page.click("#send")
            expect(page.locator("#text")).to_have_value("")

        say(bob, "Morning all! Anyone up for the release review at 11?")
        say(alice, "Yes, I'll bring the changelog.")
        say(carol, "On the long-poll fallback today, and it still feels instant.")
        say(bob, "Can you check the staging deploy before the review?", to="alice")
        say(alice, "On it.", to="bob")
        carol.locator("#text").press_sequentially("Looks good to")
        expect(alice.locator("#typing")).to_have_text("carol is typing…")
        alice.select_option("#to", "")
        alice.fill("#text", "Great, see you at 11")
        expect(alice.locator("#messages .msg")).to_have_count(5)
        alice.screenshot(path=args.out)
        browser.close()
    server.shutdown()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
