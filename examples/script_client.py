"""A script that talks to a channel-socket server: connect, send one request, print the reply.

    python examples/script_client.py http://127.0.0.1:8090/chsk
    python examples/script_client.py http://127.0.0.1:8090/chsk --event test/echo \\
        --data '{"a": 1}' --type ajax --csrf-token T

Try it against the conformance app (``python examples/conformance.py``), whose ``test/echo``
handler replies ``{"echo": <data>}``. The reply is printed as one line of JSON; a request
that fails prints why on stderr and exits with status 1.
"""

from __future__ import annotations

import argparse
import json
import sys

from flask_sente import SenteError
from flask_sente.client import Client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="send one request over a channel socket")
    parser.add_argument("url", help="the channel-socket route, e.g. http://127.0.0.1:5000/chsk")
    parser.add_argument("--event", default="test/echo", help="the event id (default test/echo)")
    parser.add_argument("--data", default='{"hello": "world"}', help="the event data, as JSON")
    parser.add_argument("--type", choices=["auto", "ws", "ajax"], default="auto")
    parser.add_argument("--packer", choices=["json", "edn"], default="json")
    parser.add_argument("--csrf-token")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    args = parser.parse_args(argv)

    try:
        with Client(
            args.url, type=args.type, packer=args.packer, csrf_token=args.csrf_token
        ) as client:
            reply = client.request([args.event, json.loads(args.data)], timeout=args.timeout)
    except SenteError as exc:  # ChannelClosed, ReplyTimeout, ReplyError
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(reply, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
