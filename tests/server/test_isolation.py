"""Isolation and the checks on every entry point, with real sessions and real sockets.

- 200 uids at once, on both transports, several tabs for some: every push reaches every
  connection of its uid and no other (pushes from many server threads and from clients).
- CSRF, origins (cross-site WebSocket hijacking), ``authorized_fn`` and ``reject_fn`` on each
  of the four entry points: WebSocket upgrade, handshake GET, long-poll GET, POST. The
  checks' order and defaults on the plain GET are in ``test_security.py``.
- uids come from the session only: a client cannot pick another's, and a WebSocket keeps
  the session of its upgrade request.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import secrets
import selectors
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import websocket
from flask import Flask, request, session

from flask_sente import EventMsg, Sente
from flask_sente.protocol import unpack
from tests.server.harness import Recorder, Server, running
from tests.support import require_module, serve_in_thread, wait_until

SITE = "http://site.test"
EVIL = "http://evil.test"
ENTRIES = ["ws", "handshake", "poll", "post"]


# ---------------------------------------------------------------------------- 200 uids


@dataclasses.dataclass(eq=False)
class Tab:
    """One connection of a uid; ``tags`` are the tagged pushes it received, in order."""

    uid: str
    index: int
    kind: str
    client_id: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))
    tags: list[tuple[str, str, int]] = dataclasses.field(default_factory=list)
    fenced: threading.Event = dataclasses.field(default_factory=threading.Event)
    ws: websocket.WebSocket | None = None

    def take(self, value: Any) -> None:
        """Record the tagged events of a push batch (anything else is ignored)."""
        if not (isinstance(value, list) and value and all(isinstance(e, list) for e in value)):
            return
        for event in value:
            if event[0] == "iso/tagged":
                self.tags.append(("server", event[1]["to"], event[1]["n"]))
            elif event[0] == "test/pushed":
                got = event[1]["got"]
                self.tags.append(("client", got["to"], got["tab"]))
            elif event[0] == "iso/fence" and event[1] == self.uid:
                self.fenced.set()


def plan(n_uids: int) -> list[Tab]:
    """Mostly one tab per uid; some have two or three, some mixing both transports."""
    tabs = []
    for i in range(n_uids):
        count = 3 if i % 10 == 0 else 2 if i % 4 == 0 else 1
        for k in range(count):
            kind = "ajax" if (i + k) % 3 == 0 else "ws"
            tabs.append(Tab(uid=f"iso-{i:03d}", index=k, kind=kind))
    return tabs


def ws_reader(tabs: list[Tab], packer: Any, stop: threading.Event) -> None:
    """Read every WebSocket tab on one thread."""
    selector = selectors.DefaultSelector()
    for tab in tabs:
        assert tab.ws is not None
        selector.register(tab.ws.sock, selectors.EVENT_READ, tab)
    try:
        while not stop.is_set():
            for key, _ in selector.select(0.1):
                tab = key.data
                try:
                    text = tab.ws.recv()
                except (websocket.WebSocketException, OSError):
                    selector.unregister(key.fileobj)
                    continue
                if text:
                    tab.take(unpack(packer, text)[0])
    finally:
        selector.close()


def ajax_poller(server: Server, tab: Tab, stop: threading.Event, polling: threading.Event) -> None:
    http = requests.Session()
    try:
        while not stop.is_set():
            polling.set()
            response = http.get(
                server.chsk, params={"client-id": tab.client_id, "uid": tab.uid}, timeout=15
            )
            assert response.status_code == 200, response.text
            tab.take(unpack(server.packer, response.text)[0])
    finally:
        http.close()


def test_200_uids_receive_exactly_their_own_pushes(no_thread_leaks):
    options = {
        "lp_timeout_ms": 2000,
        "ws_kalive_ms": 600_000,
        # a poll that comes back late must not lose its slot: this test is about routing
        "ms_allow_reconnect_before_close_ws": 30_000,
        "ms_allow_reconnect_before_close_ajax": 30_000,
    }
    tabs = plan(200)
    ws_tabs = [t for t in tabs if t.kind == "ws"]
    ajax_tabs = [t for t in tabs if t.kind == "ajax"]
    uids = sorted({t.uid for t in tabs})
    assert len(uids) == 200 and ws_tabs and ajax_tabs
    assert any({t.kind for t in tabs if t.uid == uid} == {"ws", "ajax"} for uid in uids)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    with running(**options) as server:
        try:
            for tab in ws_tabs:
                tab.ws = websocket.create_connection(
                    f"{server.ws_url}?client-id={tab.client_id}&uid={tab.uid}", timeout=10
                )
                assert unpack(server.packer, tab.ws.recv())[0][0] == "chsk/handshake"
            for tab in ajax_tabs:
                params = {"client-id": tab.client_id, "uid": tab.uid, "handshake?": "1"}
                assert requests.get(server.chsk, params=params, timeout=10).status_code == 200
            threads.append(threading.Thread(target=ws_reader, args=(ws_tabs, server.packer, stop)))
            polling = [threading.Event() for _ in ajax_tabs]
            threads += [
                threading.Thread(target=ajax_poller, args=(server, tab, stop, ready))
                for tab, ready in zip(ajax_tabs, polling, strict=True)
            ]
            for thread in threads:
                thread.start()
            for ready in polling:
                assert ready.wait(10)
            wait_until(lambda: len(server.sente.connected_uids["any"]) == 200, 10)

            errors: list[BaseException] = []
            start = threading.Barrier(12)

            def guarded(fn: Callable[[], None]) -> Callable[[], None]:
                def run() -> None:
                    try:
                        start.wait(10)
                        fn()
                    except BaseException as exc:
                        errors.append(exc)

                return run

            def server_pushes(worker: int) -> None:
                for n in range(5):
                    for uid in uids[worker::8]:
                        server.sente.send(uid, ["iso/tagged", {"to": uid, "n": n}])

            def client_pushes(worker: int) -> None:
                http = requests.Session()
                for tab in tabs[worker::4]:
                    package = json.dumps(
                        [["test/push-me", {"to": tab.uid, "tab": tab.index}], None]
                    )
                    if tab.ws is not None:
                        tab.ws.send(package)
                    else:
                        form = {"client-id": tab.client_id, "uid": tab.uid, "ppstr": package}
                        assert http.post(server.chsk, data=form, timeout=10).status_code == 200
                http.close()

            pushers = [
                *(threading.Thread(target=guarded(lambda w=w: server_pushes(w))) for w in range(8)),
                *(threading.Thread(target=guarded(lambda w=w: client_pushes(w))) for w in range(4)),
            ]
            for thread in pushers:
                thread.start()
            for thread in pushers:
                thread.join(60)
            assert not errors, errors[:3]
            # client pushes go through handlers: wait until each was pushed before fencing
            wait_until(lambda: server.recorder.count("test/push-me") >= len(tabs), 20)
            # pushes to one connection arrive in call order: once a uid's fence is in,
            # everything sent to that uid before it is in too
            for uid in uids:
                server.sente.send(uid, ["iso/fence", uid])
            for tab in tabs:
                assert tab.fenced.wait(20), f"{tab.kind} tab {tab.index} of {tab.uid}: no fence"
        finally:
            stop.set()
            for thread in threads:
                thread.join(15)
            for tab in ws_tabs:
                if tab.ws is not None:
                    tab.ws.close()

    by_uid: dict[str, list[Tab]] = {}
    for tab in tabs:
        by_uid.setdefault(tab.uid, []).append(tab)
    for uid, own_tabs in by_uid.items():
        expected = {("server", uid, n) for n in range(5)}
        expected |= {("client", uid, tab.index) for tab in own_tabs}
        for tab in own_tabs:
            foreign = [tag for tag in tab.tags if tag[1] != uid]
            assert not foreign, f"{tab.kind} tab of {uid} received pushes for {foreign[:5]}"
            twice = [tag for tag, n in Counter(tab.tags).items() if n > 1]
            assert not twice, f"{tab.kind} tab of {uid} received twice: {twice[:5]}"
            missing = expected - set(tab.tags)
            assert not missing, f"{tab.kind} tab {tab.index} of {uid} is missing {missing}"


# ---------------------------------------------------------------------------- a real site


class Site:
    """A Flask app with a login route, served on 127.0.0.1, and its event log."""

    def __init__(self, app: Flask, url: str, recorder: Recorder) -> None:
        self.app = app
        self.url = url
        self.chsk = url + "/chsk"
        self.ws_url = "ws" + self.chsk[4:]
        self.recorder = recorder

    def login(self, uid: str) -> User:
        http = requests.Session()
        response = http.post(self.url + "/login", data={"uid": uid}, timeout=5)
        assert response.status_code == 200, response.text
        return User(self, uid, http, response.json()["csrf"])

    def anonymous(self) -> User:
        return User(self, None, requests.Session(), None)

    def attempt(
        self,
        entry: str,
        user: User,
        *,
        token: Any = "own",
        origin: str | None = SITE,
        referer: str | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        after_handshake: Callable[[], Any] | None = None,
    ) -> tuple[int, Any]:
        """Make one channel-socket request as ``user``'s browser would (their cookies go
        along) with the given token and origin; the status, and the uid when accepted.

        For ``poll`` the tab first makes its handshake with the user's real token and the
        site's origin (then runs ``after_handshake``), so the long-poll itself is checked."""
        client_id = str(uuid.uuid4())
        sent_token = user.csrf if token == "own" else token
        query = {"client-id": client_id, **(params or {})}
        hdrs = {**(headers or {})}
        if origin is not None:
            hdrs["Origin"] = origin
        if referer is not None:
            hdrs["Referer"] = referer
        if sent_token is not None:
            hdrs["X-CSRF-Token"] = sent_token
        if entry == "ws":
            return self._ws(user, query, hdrs)
        if entry == "poll":
            good = {"Origin": SITE, **({"X-CSRF-Token": user.csrf} if user.csrf else {})}
            response = user.http.get(
                self.chsk, params={**query, "handshake?": "1"}, headers=good, timeout=5
            )
            assert response.status_code == 200, response.text
            if after_handshake is not None:
                after_handshake()
        if entry in ("handshake", "poll"):
            if entry == "handshake":
                query["handshake?"] = "1"
            response = user.http.get(self.chsk, params=query, headers=hdrs, timeout=10)
        else:
            form = {"client-id": client_id, "ppstr": json.dumps([["iso/ping", 1], "ajax-cb"])}
            response = user.http.post(self.chsk, params=params, data=form, headers=hdrs, timeout=10)
        if response.status_code != 200:
            return response.status_code, response.text
        value = unpack(self.app.extensions["sente"].packer, response.text)[0]
        if entry == "handshake":
            return 200, value[1][0]
        if entry == "post":
            return 200, self.recorder.wait_for(lambda m: m.client_id == client_id).uid
        return 200, None

    def _ws(self, user: User, query: dict[str, str], hdrs: dict[str, str]) -> tuple[int, Any]:
        token = hdrs.pop("X-CSRF-Token", None)
        if token is not None:
            query["csrf-token"] = token
        origin = hdrs.pop("Origin", None)
        cookie = self.cookie(user)
        url = self.ws_url + "?" + "&".join(f"{k}={v}" for k, v in query.items())
        try:
            ws = websocket.create_connection(
                url,
                timeout=5,
                origin=origin,
                suppress_origin=origin is None,
                header=[f"{k}: {v}" for k, v in hdrs.items()],
                cookie=cookie or None,
            )
        except websocket.WebSocketBadStatusException as exc:
            body = exc.resp_body
            return exc.status_code, body.decode() if isinstance(body, bytes) else body
        try:
            value = unpack(self.app.extensions["sente"].packer, ws.recv())[0]
            return 101, value[1][0]
        finally:
            ws.close()

    def cookie(self, user: User) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in user.http.cookies)

    def session_of(self, user: User) -> dict[str, Any]:
        """What the signed session cookie of ``user`` holds."""
        serializer = self.app.session_interface.get_signing_serializer(self.app)
        return serializer.loads(user.http.cookies["session"])


@dataclasses.dataclass
class User:
    site: Site
    uid: str | None
    http: requests.Session
    csrf: str | None


def page_token() -> str:
    """The CSRF token a page of this app would embed: Flask-WTF's signed one when it is
    installed (the default check then validates with Flask-WTF), else the session's."""
    try:
        from flask_wtf.csrf import generate_csrf
    except ImportError:
        session["csrf_token"] = secrets.token_urlsafe(16)
        return str(session["csrf_token"])
    return str(generate_csrf())


def site_app(**options: Any) -> tuple[Flask, Recorder]:
    """An app whose uids and CSRF tokens live in the session, as a real app's would."""
    app = Flask(__name__)
    app.secret_key = "isolation-tests-not-secret"
    recorder = Recorder()
    options.setdefault("lp_timeout_ms", 300)
    sente = Sente(app, **options)

    @app.post("/login")
    def login() -> Any:
        session["uid"] = request.form["uid"]
        return {"csrf": page_token()}

    @app.post("/logout")
    def logout() -> str:
        session.clear()
        return "bye"

    @sente.on_default
    def record(msg: EventMsg) -> None:
        recorder(msg)
        if msg.reply:
            msg.reply("ok")

    return app, recorder


@contextlib.contextmanager
def serving(**options: Any) -> Iterator[Site]:
    app, recorder = site_app(**options)
    with serve_in_thread(app) as url:
        yield Site(app, url, recorder)


ACCEPTED = {"ws": 101, "handshake": 200, "poll": 200, "post": 200}


# ---------------------------------------------------------------------------- CSRF


@pytest.mark.parametrize("entry", ENTRIES)
def test_default_csrf_check_binds_the_token_to_the_session_on_every_entry(entry):
    with serving() as site:
        alice, mallory = site.login("alice"), site.login("mallory")
        assert site.attempt(entry, alice) == (ACCEPTED[entry], None if entry == "poll" else "alice")
        # a token from another session, an empty one, or one only in a cookie: refused
        for token in (mallory.csrf, "", None):
            assert site.attempt(entry, alice, token=token) == (403, "Bad CSRF token")
        alice.http.cookies.set("csrf-token", alice.csrf)
        assert site.attempt(entry, alice, token=None) == (403, "Bad CSRF token")
        if entry != "poll":
            # no session token at all (never logged in): the default check fails closed
            assert site.attempt(entry, site.anonymous(), token=alice.csrf)[0] == 403


@pytest.mark.parametrize("entry", ENTRIES)
def test_flask_wtf_signed_tokens_are_checked_on_every_entry(entry):
    require_module("flask_wtf", "pip install -e '.[dev]'")
    with serving() as site:
        alice = site.login("alice")
        raw = site.session_of(alice)["csrf_token"]
        assert raw != alice.csrf
        assert site.attempt(entry, alice)[0] == ACCEPTED[entry]
        # the raw session value is not the signed token Flask-WTF hands pages
        assert site.attempt(entry, alice, token=raw) == (403, "Bad CSRF token")


def test_csrf_validator_gets_the_client_token_and_a_falsy_answer_refuses():
    seen: list[str] = []

    def validator(token: str) -> bool:
        seen.append(token)
        return token == "v-ok"

    with serving(csrf_token_fn=lambda req: validator) as site:
        user = User(site, None, requests.Session(), "v-ok")
        for entry in ENTRIES:
            assert site.attempt(entry, user)[0] == ACCEPTED[entry]
            assert site.attempt(entry, user, token="v-no") == (403, "Bad CSRF token")
    assert "v-no" in seen and "v-ok" in seen


# ---------------------------------------------------------------------------- origins


@pytest.mark.parametrize("entry", ENTRIES)
def test_cross_site_requests_with_the_victims_cookies_are_refused(entry):
    """Cross-site WebSocket hijacking and its Ajax cousins: with CSRF checking off, the
    origin check alone keeps another site from riding the user's session cookie."""
    with serving(csrf_token_fn=None, allowed_origins={SITE}) as site:
        alice = site.login("alice")
        assert site.attempt(entry, alice, token=None, origin=EVIL) == (403, "Unauthorized origin")
        status, uid = site.attempt(entry, alice, token=None, origin=SITE)
        assert status == ACCEPTED[entry]
        assert uid == (None if entry == "poll" else "alice")
    alice_events = [m for m in site.recorder.drain() if m.uid == "alice"]
    assert all(m.request is None or m.request.header("origin") == SITE for m in alice_events)


@pytest.mark.parametrize(
    "origin, referer",
    [
        (SITE + ".evil.test", None),
        (SITE + ":8080", None),
        ("https://site.test", None),
        (SITE + "/", None),
        ("HTTP://SITE.TEST", None),
        ("null", None),
        ("", None),
        (EVIL, SITE + "/page"),
        (None, SITE + ".evil.test/page"),
        (None, SITE),
        (None, "site.test/page"),
        (None, None),
    ],
)
def test_websocket_upgrades_from_lookalike_origins_are_refused(origin, referer):
    with serving(csrf_token_fn=None, allowed_origins={SITE}) as site:
        alice = site.login("alice")
        status, _ = site.attempt("ws", alice, token=None, origin=origin, referer=referer)
        assert status == 403


def test_websocket_upgrade_without_origin_falls_back_to_the_referer():
    with serving(csrf_token_fn=None, allowed_origins={SITE, "https://other.test"}) as site:
        alice = site.login("alice")
        assert site.attempt("ws", alice, origin=None, referer=SITE + "/chat?x=1") == (101, "alice")
        assert site.attempt("ws", alice, origin="https://other.test") == (101, "alice")


# ---------------------------------------------------------------------------- authorized_fn


@pytest.mark.parametrize("entry", ENTRIES)
def test_authorized_fn_guards_every_entry(entry):
    with serving(
        csrf_token_fn=None, authorized_fn=lambda req: req.session.get("uid") is not None
    ) as site:
        alice = site.login("alice")
        assert site.attempt(entry, alice)[0] == ACCEPTED[entry]
        if entry == "poll":
            # logged out between the handshake and the poll: the poll is refused
            logout = lambda: alice.http.post(site.url + "/logout", timeout=5)  # noqa: E731
            refused = site.attempt(entry, alice, after_handshake=logout)
        else:
            refused = site.attempt(entry, site.anonymous())
        assert refused == (401, "Unauthorized request")


@pytest.mark.parametrize("entry", ["ws", "handshake", "post"])
def test_unauthorized_fn_answer_is_returned_on_every_entry(entry):
    with serving(
        csrf_token_fn=None,
        authorized_fn=lambda req: False,
        unauthorized_fn=lambda req: ("log in first", 418),
    ) as site:
        assert site.attempt(entry, site.login("alice")) == (418, "log in first")


# ---------------------------------------------------------------------------- reject_fn


@pytest.mark.parametrize("entry", ENTRIES)
def test_reject_fn_runs_first_on_every_entry(entry):
    """reject_fn answers before the CSRF, origin and authorization checks have a say."""
    seen: list[str] = []

    def reject(req: Any) -> Any:
        seen.append(req.method)
        return ("banned", 429) if req.header("x-banned") else None

    with serving(
        allowed_origins={SITE},
        authorized_fn=lambda req: req.header("x-banned") is None,
        reject_fn=reject,
    ) as site:
        alice = site.login("alice")
        status = site.attempt(entry, alice, token=None, origin=EVIL, headers={"X-Banned": "1"})
        assert status == (429, "banned")
        assert site.attempt(entry, alice, token=None, origin=EVIL)[0] == 403
    assert seen


# ---------------------------------------------------------------------------- uids


def test_a_client_cannot_choose_its_uid_when_user_id_fn_reads_the_session():
    with serving(csrf_token_fn=None) as site:
        alice, mallory = site.login("alice"), site.login("mallory")
        for entry in ("ws", "handshake", "post"):
            status, uid = site.attempt(entry, mallory, params={"uid": "alice"})
            assert (status, uid) == (ACCEPTED[entry], "mallory")
        # and so mallory's connection gets none of alice's pushes
        client_id = str(uuid.uuid4())
        spy = websocket.create_connection(
            f"{site.ws_url}?client-id={client_id}&uid=alice", cookie=site.cookie(mallory), timeout=5
        )
        victim = websocket.create_connection(
            f"{site.ws_url}?client-id={uuid.uuid4()}", cookie=site.cookie(alice), timeout=5
        )
        try:
            spy.recv(), victim.recv()
            server = site.app.extensions["sente"]
            server.send("alice", ["iso/secret", 1], flush=True)
            server.send("mallory", ["iso/own", 2], flush=True)
            assert unpack(server.packer, victim.recv())[0] == [["iso/secret", 1]]
            assert unpack(server.packer, spy.recv())[0] == [["iso/own", 2]]
        finally:
            spy.close()
            victim.close()


def test_a_websocket_keeps_the_session_of_its_upgrade_request():
    with serving(csrf_token_fn=None) as site:
        user = site.login("alice")
        ws = websocket.create_connection(
            f"{site.ws_url}?client-id={uuid.uuid4()}", cookie=site.cookie(user), timeout=5
        )
        try:
            ws.recv()
            # logging in as someone else over HTTP changes the cookie, not the open socket
            user.http.post(site.url + "/logout", timeout=5)
            user.http.post(site.url + "/login", data={"uid": "bob"}, timeout=5)
            assert site.session_of(user)["uid"] == "bob"
            ws.send(json.dumps([["iso/who", None], "cb1"]))
            assert unpack(site.app.extensions["sente"].packer, ws.recv())[0] == "ok"
            msg = site.recorder.wait_for(lambda m: m.id == "iso/who")
            assert msg.uid == "alice"
            assert msg.request is not None and msg.request.session.get("uid") == "alice"
        finally:
            ws.close()


def test_rejections_are_logged_with_the_reason(caplog):
    with (
        caplog.at_level("INFO", logger="flask_sente.security"),
        serving(allowed_origins={SITE}) as site,
    ):
        alice = site.login("alice")
        site.attempt("ws", alice, token="forged")
        site.attempt("ws", alice, origin=EVIL)
    messages = [r.getMessage() for r in caplog.records if r.name == "flask_sente.security"]
    assert any("bad CSRF token" in m for m in messages), messages
    assert any(EVIL in m for m in messages), messages
