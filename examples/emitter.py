"""Push to a user from a process that is not a web server: a Celery task, a cron job, a script.

    python examples/emitter.py redis://127.0.0.1:6379/0 alice '["report/ready", {"id": 42}]'
    python examples/emitter.py redis://127.0.0.1:6379/0 42 '["report/ready", {}]' --json-uid
    python examples/emitter.py redis://127.0.0.1:6379/0 alice '["a/b", 1]' bob '["a/b", 2]'

The web app runs with ``message_queue`` (or ``SENTE_MESSAGE_QUEUE``) set to the same Redis;
each event then reaches every connection of its uid on every worker and machine, or waits
in its mailboxes between two long-polls. Several ``UID EVENT`` pairs go in one batch: one
round trip to Redis, in order. Exit status: 0 all pushed, 2 a uid has no connection
anywhere (nothing was kept for it), 1 Redis could not be reached or an event is not valid
(then nothing was sent).

In a Celery worker, make one ``Emitter`` per process and reuse it in the tasks; a task that
pushes to many users sends them in one batch::

    emitter = Emitter(os.environ["SENTE_MESSAGE_QUEUE"])

    @shared_task
    def build_report(uid, report_id):
        ...
        emitter.send(uid, ["report/ready", {"id": report_id}])

    @shared_task
    def announce(text):
        with emitter.batch() as batch:
            for uid in User.objects.values_list("id", flat=True):
                batch.send(uid, ["site/notice", text])
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from flask_sente import Emitter, SenteError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="push events to uids through Redis")
    parser.add_argument("url", help="the web app's message queue, e.g. redis://127.0.0.1:6379/0")
    parser.add_argument(
        "pairs",
        nargs="+",
        metavar="UID EVENT",
        help='a user, as the app\'s user_id_fn returns it, and an event as JSON: ["ns/id"] or '
        '["ns/id", data]; several pairs go in one batch',
    )
    parser.add_argument(
        "--json-uid", action="store_true", help="read the uids as JSON (42 is then a number)"
    )
    parser.add_argument("--channel", default="flask_sente", help="the app's channel option")
    parser.add_argument("--packer", default="json", help="the app's packer (a text packer)")
    args = parser.parse_args(argv)
    if len(args.pairs) % 2:
        parser.error("give a UID and an EVENT for each push")
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")

    try:
        uids = args.pairs[::2]
        pushes = [
            (json.loads(uid) if args.json_uid else uid, json.loads(event))
            for uid, event in zip(uids, args.pairs[1::2], strict=True)
        ]
        with (
            Emitter(args.url, channel=args.channel, packer=args.packer) as emitter,
            emitter.batch() as batch,
        ):
            for uid, event in pushes:
                batch.send(uid, event)
    except ConnectionError as exc:  # Redis is not reachable
        print(f"cannot reach Redis at {args.url}: {exc}", file=sys.stderr)
        return 1
    except (ValueError, SenteError) as exc:  # bad JSON, an invalid event, a binary packer
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0 if batch.results is not None and all(batch.results) else 2


if __name__ == "__main__":
    sys.exit(main())
