"""The README's demo command, run as a newcomer runs it: in a fresh copy of the repository,
with nothing installed, through ``bash``; it must serve the chat page."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.fresh import clean_env, copy_of_the_repository
from tests.support import ROOT

pytestmark = pytest.mark.slow  # a pip install from the package index

#: Seconds for the whole command: a virtual environment, a pip install, the server's start.
DEADLINE = 300.0
READY = re.compile(r"listening on (http://\S+)")


def demo_command() -> str:
    """The command in the README's fence right after its marker comment."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- the demo command[^\n]*-->\n```sh\n([^\n]+)\n```", readme)
    assert match, "the README's demo command (the sh fence after its marker) is missing"
    return match.group(1)


def test_the_demo_command_starts_the_chat(tmp_path: Path) -> None:
    command = demo_command()
    assert command.endswith("examples/chat/app.py"), command
    checkout = copy_of_the_repository(tmp_path / "flask_sente")
    proc = subprocess.Popen(
        ["bash", "-c", command + " --port 0"],  # the README's port may be taken here
        cwd=checkout,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        url = None
        deadline = time.monotonic() + DEADLINE
        while url is None:
            left = deadline - time.monotonic()
            assert left > 0 and proc.poll() is None, "no chat server:\n" + "".join(output)
            with contextlib.suppress(queue.Empty):
                found = READY.search(lines.get(timeout=min(left, 1.0)))
                url = found.group(1) if found else None
        with urllib.request.urlopen(url, timeout=10) as page:
            html = page.read().decode()
        assert "<title>flask_sente chat</title>" in html
        assert re.search(r'<meta name="csrf-token" content="[^"]+">', html)
        script = re.search(r'<script src="(/_sente/static/sente\.js[^"]*)">', html)
        assert script, html
        with urllib.request.urlopen(url.rstrip("/") + script.group(1), timeout=10) as js:
            assert js.read().startswith(b"/*! sente.js")
        # it ran from the new environment, and made its session key in the copy
        assert (checkout / ".venv" / "bin" / "python").exists()
        assert (checkout / "examples" / "chat" / "instance" / "secret_key").exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
