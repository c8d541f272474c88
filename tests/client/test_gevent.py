"""The client under gevent's monkey-patching (in a subprocess, so this process stays clean)."""

from __future__ import annotations

import subprocess
import sys

from tests.client.helpers import ROOT
from tests.support import require_module

require_module("gevent", "pip install -e '.[dev]'")

SCRIPT = """
from gevent import monkey
monkey.patch_all()
import threading
from flask_sente.client import Client
from tests.client.helpers import next_id
from tests.client.sente_server import CSRF, ScriptedSente

server = ScriptedSente(lp_timeout_ms=500).start()
for transport in ("ws", "ajax"):
    with Client(server.url, type=transport, packer="edn", csrf_token=CSRF) as client:
        assert client.request(["test/echo", 1], 5)
        client.send(["test/push-me", 2])
        next_id(client, "test/pushed")
        client.break_connection()
        assert client.state.wait_for(lambda s: "last-close" in s, 5)
        assert client.wait_open(5)
    left = [t.name for t in threading.enumerate() if t.name.startswith("flask_sente.client")]
    assert not left, left
    print(transport, "ok")
server.stop()
"""


def test_client_works_under_gevent() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ws", "ok", "ajax", "ok"]
