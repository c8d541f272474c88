"""``python -m flask_sente.client URL``: poke at a running channel socket server.

Connects, prints every received event with a timestamp, and sends each line typed on
stdin as an event (JSON, e.g. ``["chat/send", {"text": "hi"}]``), printing its reply. Output
lines are ``HH:MM:SS.mmm <kind> <json>`` with kind ``recv``, ``reply`` or ``error``, so a
script (or a test) can read them back. End of input disconnects and exits.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import threading
import uuid
from collections.abc import Sequence
from typing import Any, TextIO

from ..errors import SenteError
from .client import Client
from .events import ClientEventMsg

__all__ = ["main"]


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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m flask_sente.client",
        description="Connect to a Sente-protocol channel socket; send JSON events typed on stdin.",
    )
    p.add_argument("url", help="the channel socket URL, e.g. http://127.0.0.1:5000/chsk")
    p.add_argument("--type", choices=["auto", "ws", "ajax"], default="auto")
    p.add_argument("--packer", choices=["json", "edn"], default="json")
    p.add_argument("--csrf-token", default=None)
    p.add_argument("--client-id", default=None)
    p.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="a connect parameter"
    )
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for open / reply")
    return p


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None) -> int:
    args = _parser().parse_args(argv)
    stdin = stdin or sys.stdin
    show = _Printer(sys.stdout)
    params = dict(kv.split("=", 1) for kv in args.param)
    client = Client(
        args.url,
        type=args.type,
        packer=args.packer,
        csrf_token=args.csrf_token,
        client_id=args.client_id,
        params=params,
    )

    def print_event(msg: ClientEventMsg) -> None:
        show("recv", msg.event)

    client.start_router(print_event)
    client.connect()
    try:
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
                show("error", f"not open after {args.timeout} s: {client.state.snapshot()!r}")
                continue
            try:
                show("reply", client.request(event, args.timeout))
            except (SenteError, ValueError) as exc:
                show("error", f"{type(exc).__name__}: {exc}")
    except KeyboardInterrupt:
        return 130
    finally:
        client.disconnect()
    return 0
