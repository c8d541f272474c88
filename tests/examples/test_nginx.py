"""``examples/nginx/flask_sente.conf`` in front of gunicorn: WebSocket upgrades and long-polls pass.

The site file runs as shipped, inside a minimal main configuration, with only its two
addresses changed: nginx listens on a free port of 127.0.0.1, and the upstream is the
gunicorn started here (``examples/gunicorn_gthread.conf.py``).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from flask_sente.client import Client
from tests.support import GUNICORN_READY, ROOT, ServerProcess, wait_until

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SITE = ROOT / "examples" / "nginx" / "flask_sente.conf"
MAIN = """\
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log notice;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/site.conf;
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def nginx_in_front_of(upstream: str, tmp: Path) -> Iterator[str]:
    if not Path(NGINX).exists():
        pytest.fail("nginx is missing: apt-get install nginx (.ci/run installs it)")
    port = free_port()
    site = SITE.read_text(encoding="utf-8")
    assert "server 127.0.0.1:8000;" in site and "listen 80;" in site
    site = site.replace("server 127.0.0.1:8000;", f"server {upstream};")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    (tmp / "site.conf").write_text(site, encoding="utf-8")
    (tmp / "nginx.conf").write_text(MAIN.format(tmp=tmp), encoding="utf-8")
    proc = subprocess.Popen(
        [NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until(lambda: accepts(port) or proc.poll() is not None, timeout=10)
        assert proc.poll() is None, (tmp / "error.log").read_text(encoding="utf-8")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[str]:
    gunicorn = ServerProcess(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "examples/gunicorn_gthread.conf.py",
            "--bind",
            "127.0.0.1:0",
            "examples.conformance:create_app()",
        ],
        ready=GUNICORN_READY,
        env={"SENTE_LP_TIMEOUT_MS": "1500"},
    )
    try:
        with nginx_in_front_of(gunicorn.url.removeprefix("http://"), tmp_path) as url:
            yield url
    finally:
        gunicorn.stop()


@pytest.mark.parametrize("transport", ["ws", "ajax"])
def test_both_transports_through_nginx(proxied: str, transport: str) -> None:
    uid = f"via-nginx-{transport}"
    with Client(proxied + "/chsk", type=transport, params={"uid": uid}) as chsk:
        assert chsk.state["type"] == transport
        assert chsk.request(["test/echo", {"n": 1}], timeout=5) == {"echo": {"n": 1}}
        pushed = requests.get(proxied + "/push", params={"uid": uid, "data": "x"}, timeout=5)
        assert pushed.text == "ok"
        msg = chsk.next_event(timeout=5)
        while msg is not None and msg.id != "test/oob-push":
            msg = chsk.next_event(timeout=5)
        assert msg is not None and msg.data == "x"
        assert uid in requests.get(proxied + "/uids", timeout=5).json()[transport]


def test_an_empty_long_poll_ends_with_chsk_timeout_through_nginx(proxied: str) -> None:
    params = {"client-id": "lp-via-nginx", "uid": "lp"}
    handshake = requests.get(proxied + "/chsk", params={**params, "handshake?": "1"}, timeout=5)
    assert handshake.json()[0][0] == "chsk/handshake"
    poll = requests.get(proxied + "/chsk", params=params, timeout=10)
    assert (poll.status_code, poll.json()) == (200, ["chsk/timeout", None])
