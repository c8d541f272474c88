"""``examples/nginx/flask_sente.conf`` in front of gunicorn: WebSocket upgrades and long-polls pass.

The site file runs as shipped, inside a minimal main configuration, with only its addresses
changed: nginx listens on a free port of 127.0.0.1, and the upstream is what is started here:
one gunicorn (``examples/gunicorn_gthread.conf.py``), or two sharing one redis-server
(``SENTE_MESSAGE_QUEUE``; the ``redis_url`` fixture of ``tests/bus/conftest.py``), between
which nginx sends each request in turn.
"""

from __future__ import annotations

import contextlib
import json
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
def nginx_in_front_of(upstreams: list[str], tmp: Path) -> Iterator[str]:
    if not Path(NGINX).exists():
        pytest.fail("nginx is missing: apt-get install nginx (.ci/run installs it)")
    port = free_port()
    site = SITE.read_text(encoding="utf-8")
    shipped = "    server 127.0.0.1:8000;\n    server 127.0.0.1:8001;\n"
    assert shipped in site and "listen 80;" in site
    site = site.replace(shipped, "".join(f"    server {u};\n" for u in upstreams))
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


def gunicorn(env: dict[str, str]) -> ServerProcess:
    return ServerProcess(
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
        env={"SENTE_LP_TIMEOUT_MS": "1500", **env},
    )


def started(stack: contextlib.ExitStack, count: int, env: dict[str, str]) -> list[str]:
    """``count`` gunicorns, stopped with ``stack``; their host:port for the upstream."""
    upstreams = []
    for _ in range(count):
        server = gunicorn(env)
        stack.callback(server.stop)
        upstreams.append(server.url.removeprefix("http://"))
    return upstreams


@pytest.fixture(params=["one gunicorn", "two gunicorns, one Redis"])
def proxied(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with contextlib.ExitStack() as stack:
        env = {}
        if request.param != "one gunicorn":
            env["SENTE_MESSAGE_QUEUE"] = request.getfixturevalue("redis_url")
        upstreams = started(stack, 1 if request.param == "one gunicorn" else 2, env)
        yield stack.enter_context(nginx_in_front_of(upstreams, tmp_path))


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


def test_two_gunicorns_behind_nginx_take_turns_and_every_push_arrives_once_in_order(
    redis_url: str, tmp_path: Path
) -> None:
    env = {"SENTE_MESSAGE_QUEUE": redis_url}
    with contextlib.ExitStack() as stack:
        upstreams = started(stack, 2, env)
        with nginx_in_front_of(upstreams, tmp_path) as proxied:
            # round robin, no stickiness: consecutive requests reach both processes
            workers = {requests.get(proxied + "/health", timeout=5).json()["worker"] for _ in "ab"}
            assert len(workers) == 2
            with Client(proxied + "/chsk", type="ajax", params={"uid": "roamer"}) as chsk:
                for n in range(20):
                    requests.get(proxied + "/push", params={"uid": "roamer", "data": n}, timeout=5)
                got = []
                while len(got) < 20:
                    msg = chsk.next_event(timeout=10)
                    assert msg is not None, got
                    if msg.id == "test/oob-push":
                        got.append(json.loads(msg.data))
                assert got == list(range(20))
