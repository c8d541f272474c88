"""Push to a user from a process that is not a web server: a Celery task, a cron job, a script.

    python examples/emitter.py redis://127.0.0.1:6379/0 alice '["report/ready", {"id": 42}]'
    python examples/emitter.py redis://127.0.0.1:6379/0 42 '["report/ready", {}]' --json-uid

The web app runs with ``message_queue`` (or ``SENTE_MESSAGE_QUEUE``) set to the same Redis;
the event then reaches every connection of the uid on every worker and machine, or waits in
its mailboxes between two long-polls. Exit status: 0 pushed, 2 the uid has no connection
anywhere (nothing was kept), 1 Redis could not be reached or the event is not valid.

In a Celery worker, make one ``Emitter`` per process and reuse it in the tasks::

    emitter = Emitter(os.environ["SENTE_MESSAGE_QUEUE"])

    @shared_task
    def build_report(uid, report_id):
        ...
        emitter.send(uid, ["report/ready", {"id": report_id}])
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from flask_sente import Emitter, SenteError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="push one event to a uid through Redis")
    parser.add_argument("url", help="the web app's message queue, e.g. redis://127.0.0.1:6379/0")
    parser.add_argument("uid", help="the user to push to, as the app's user_id_fn returns it")
    parser.add_argument("event", help='the event as JSON: ["ns/id"] or ["ns/id", data]')
    parser.add_argument(
        "--json-uid", action="store_true", help="read the uid as JSON (42 is then a number)"
    )
    parser.add_argument("--channel", default="flask_sente", help="the app's channel option")
    parser.add_argument("--packer", default="json", help="the app's packer (a text packer)")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")

    try:
        uid = json.loads(args.uid) if args.json_uid else args.uid
        event = json.loads(args.event)
        with Emitter(args.url, channel=args.channel, packer=args.packer) as emitter:
            pushed = emitter.send(uid, event)
    except ConnectionError as exc:  # Redis is not reachable
        print(f"cannot reach Redis at {args.url}: {exc}", file=sys.stderr)
        return 1
    except (ValueError, SenteError) as exc:  # bad JSON, an invalid event, a binary packer
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0 if pushed else 2


if __name__ == "__main__":
    sys.exit(main())
