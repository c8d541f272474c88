"""``python -m flask_sente.client URL``: poke at a running channel socket server.

Connects, prints every received event with a timestamp, and sends each line typed on
stdin as an event (JSON, e.g. ``["chat/send", {"text": "hi"}]``), printing its reply. Output
lines are ``HH:MM:SS.mmm <kind> <json>`` with kind ``state`` (one short line per change of
the connection: open or not, transport, uid, why it closed, when it retries), ``recv``,
``reply`` or ``error``, so a script (or a test) can read them back. End of input disconnects.

Apps whose CSRF token belongs to the session need the session cookie too: ``--csrf-from
PAGE_URL`` loads a page for its ``<meta name="csrf-token">`` and its cookies, ``--cookie
NAME=VALUE`` adds one by hand.

Exit status: 0 when every line was sent (a handler's error reply is output, not failure);
1 when the channel never opened, or closed for lines still to send, with the reason on one
line of stderr; 2 for a usage error; 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import re
import sys
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

import requests
from requests.cookies import RequestsCookieJar, create_cookie

from ..errors import ConfigError, SenteError
from ..packers import PACKER_NAMES
from ..protocol import STATE
from .client import Client
from .messages import ClientEventMsg
from .page import csrf_from_page
from .state import now_udt
from .wire import http_url

__all__ = ["main"]

PROG = "python -m flask_sente.client"
#: Seconds the probe that explains a failed connection may take.
PROBE_TIMEOUT = 5.0


def _jsonable(x: Any) -> Any:
    if isinstance(x, set | frozenset):
        return sorted((_jsonable(v) for v in x), key=repr)
    if isinstance(x, uuid.UUID | dt.date):
        return str(x)
    return repr(x)


class _Printer:
    """Writes timestamped lines from several threads without interleaving them."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()

    def __call__(self, kind: str, value: Any) -> None:
        stamp = dt.datetime.now().strftime("%H:%M:%S.%f")[:-3]
        text = json.dumps(value, default=_jsonable, ensure_ascii=False)
        with self._lock:
            self._out.write(f"{stamp} {kind} {text}\n")
            self._out.flush()


# ---------------------------------------------------------------------------- arguments


def _pair(kind: str) -> Callable[[str], tuple[str, str]]:
    """An argparse type for ``KEY=VALUE``: a usage error, not a traceback, when malformed."""

    def parse(text: str) -> tuple[str, str]:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"expected {kind}=VALUE, got {text!r}")
        return key, value

    return parse


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Connect to a Sente-protocol channel socket; send JSON events typed on stdin.",
        epilog="Exit status: 0 all sent, 1 not connected (reason on stderr), 2 usage error.",
    )
    p.add_argument("url", help="the channel socket URL, e.g. http://127.0.0.1:5000/chsk")
    p.add_argument("--type", choices=["auto", "ws", "ajax"], default="auto")
    p.add_argument("--packer", choices=PACKER_NAMES, default="json")
    csrf = p.add_mutually_exclusive_group()
    csrf.add_argument("--csrf-token", default=None)
    csrf.add_argument(
        "--csrf-from",
        metavar="PAGE_URL",
        help='load this page for its <meta name="csrf-token"> and its session cookies',
    )
    p.add_argument(
        "--cookie",
        action="append",
        default=[],
        type=_pair("NAME"),
        metavar="NAME=VALUE",
        help="a cookie to send (repeatable), e.g. the app's session cookie",
    )
    p.add_argument("--client-id", default=None)
    p.add_argument(
        "--param",
        action="append",
        default=[],
        type=_pair("KEY"),
        metavar="KEY=VALUE",
        help="a connect parameter (repeatable)",
    )
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for open / reply")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="log what the client does (to stderr)"
    )
    return p


# ---------------------------------------------------------------------------- reasons


def short_error(exc: BaseException | None) -> str:
    """An exception in a few words: ``HTTP 403 Bad CSRF token``, ``Connection refused``."""
    if exc is None:
        return "no error recorded"
    status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
    body = getattr(exc, "resp_body", None) or getattr(exc, "body", None)
    response = getattr(exc, "response", None)
    if status is None and response is not None:
        status, body = response.status_code, response.text
    if isinstance(status, int):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
        line = _first_line(text)  # a body may be a whole page
        return f"HTTP {status} {line if len(line) <= 100 else line[:99] + '…'}".strip()
    errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(exc))
    if errno:
        return errno.group(1).strip()
    return _first_line(str(exc)) or type(exc).__name__


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def state_line(state: Mapping[str, Any]) -> dict[str, Any]:
    """The few keys of a state worth a line: open or not, transport, uid; when closed,
    why, when the next try is, and the last WebSocket error."""
    line: dict[str, Any] = {"open?": bool(state.get("open?")), "type": state.get("type")}
    if line["open?"]:
        line["uid"] = state.get("uid")
        return line
    close = state.get("last-close")
    if close:
        line["last-close"] = close.get("reason")
    error = state.get("last-ws-error")
    if error:
        line["error"] = short_error(error.get("ex"))
    retry = state.get("udt-next-reconnect")
    if retry:
        line["retry-in-ms"] = max(0, int(retry - now_udt()))
    return line


def why_not_open(client: Client, csrf_token: str | None, cookies: RequestsCookieJar) -> str:
    """Why the channel did not open, in one line.

    The WebSocket's last error says it when there is one. Otherwise (Ajax) ask: a POST
    with the client's credentials and no event passes the server's checks (answered 400)
    or is refused (401, 403), and a server that is down does not answer at all.
    """
    error = client.state.get("last-ws-error")
    if error and error.get("ex") is not None:
        return _explained(error["ex"])
    headers = {"X-Requested-With": "XMLHTTPRequest"}
    if csrf_token:
        headers["X-CSRF-Token"] = csrf_token
    try:
        answer = requests.post(
            http_url(client.url),
            data={"client-id": client.client_id},
            headers=headers,
            cookies=cookies,
            timeout=PROBE_TIMEOUT,
        )
    except requests.RequestException as exc:
        return _explained(exc)
    if answer.status_code in (401, 403):
        return _explained(requests.HTTPError(response=answer))
    return f"no handshake (the server answers HTTP {answer.status_code} to a probe)"


def _explained(exc: BaseException) -> str:
    reason = short_error(exc)
    if isinstance(exc, OSError) and not isinstance(exc, requests.HTTPError):
        return f"{reason} (is the server running?)"
    if reason.startswith(("HTTP 401", "HTTP 403")):
        return f"refused: {reason} (does it want --csrf-from PAGE_URL, or --cookie?)"
    return reason


def _fail(reason: str) -> int:
    sys.stderr.write(f"{PROG}: {reason}\n")
    sys.stderr.flush()
    return 1


# ---------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    # The lines below say what happens; the library's own log only with --verbose.
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
    )
    stdin = stdin or sys.stdin
    show = _Printer(sys.stdout)
    csrf_token, session = args.csrf_token, None
    if args.csrf_from:
        try:
            csrf_token, session = csrf_from_page(args.csrf_from, timeout=args.timeout)
        except (requests.RequestException, SenteError) as exc:
            return _fail(f"cannot get a CSRF token from {args.csrf_from}: {_explained(exc)}")
    jar = session.cookies if session is not None else RequestsCookieJar()
    for name, value in args.cookie:
        jar.set_cookie(create_cookie(name, value))
    try:
        client = Client(
            args.url,
            type=args.type,
            packer=args.packer,
            csrf_token=csrf_token,
            cookies=jar,
            client_id=args.client_id,
            params=dict(args.param),
        )
    except ConfigError as exc:
        parser.error(str(exc))

    last_state: list[dict[str, Any]] = []

    def print_event(msg: ClientEventMsg) -> None:
        if msg.id != STATE:
            show("recv", msg.event)
            return
        line = state_line(msg.data[1])
        if last_state != [line]:
            last_state[:] = [line]
            show("state", line)

    client.start_router(print_event)
    client.connect()
    unsent = 0
    try:
        if not client.wait_open(args.timeout):
            why = why_not_open(client, csrf_token, jar)
            return _fail(f"could not connect to {args.url} within {args.timeout} s: {why}")
        for line in stdin:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                event = json.loads(line)
            except ValueError as exc:
                show("error", f"not JSON: {exc}")
                continue
            if not client.wait_open(args.timeout):
                unsent += 1
                show("error", f"not sent, not open after {args.timeout} s: {line}")
                continue
            try:
                show("reply", client.request(event, args.timeout))
            except (SenteError, ValueError) as exc:
                show("error", f"{type(exc).__name__}: {exc}")
    except KeyboardInterrupt:
        return 130
    finally:
        client.disconnect()
    if unsent:
        return _fail(f"{unsent} event(s) not sent: the channel socket to {args.url} closed")
    return 0
