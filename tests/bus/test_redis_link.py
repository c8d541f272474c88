"""The Redis bus's URLs, and what a reading outlet does to a mailbox left behind."""

from __future__ import annotations

import re

import pytest

from flask_sente.batching import Outgoing
from flask_sente.bus import make_bus
from flask_sente.bus.redis_link import never_sent, parse_sentinel_url
from flask_sente.errors import ConfigError
from flask_sente.packers import get_packer
from flask_sente.scheduler import Scheduler


def test_sentinel_urls_name_the_sentinels_the_service_and_the_database():
    where = parse_sentinel_url("redis+sentinel://:s3cr%2Ft@10.0.0.1:26379,[::1]:26380/main/2")
    assert where.sentinels == [("10.0.0.1", 26379), ("::1", 26380)]
    assert (where.service, where.db, where.password) == ("main", 2, "s3cr/t")
    plain = parse_sentinel_url("redis+sentinel://127.0.0.1:26379/mymaster")
    assert (plain.service, plain.db, plain.password) == ("mymaster", 0, None)


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://127.0.0.1/mymaster",
        "redis+sentinel://127.0.0.1:26379",
        "redis+sentinel://127.0.0.1:26379/mymaster/x",
        "redis+sentinel://127.0.0.1:26379/a/1/2",
    ],
)
def test_a_bad_sentinel_url_is_refused_with_what_is_expected(url):
    with pytest.raises(ConfigError, match=r"HOST:PORT|/SERVICE"):
        parse_sentinel_url(url)


def test_an_unknown_scheme_names_both_kinds_of_url():
    with pytest.raises(ConfigError, match=re.escape('"redis+sentinel://..."')):
        make_bus(
            "amqp://x",
            scheduler=Scheduler(),
            backlog=1,
            window_s=1,
            lost=lambda *a: None,
            packer=get_packer("json"),
        )


def test_only_failures_to_connect_count_as_never_sent():
    import redis
    from redis.sentinel import MasterNotFoundError

    assert never_sent(redis.ConnectionError("Error 111 connecting to 127.0.0.1:1. refused."))
    assert never_sent(redis.TimeoutError("Timeout connecting to server"))
    assert never_sent(MasterNotFoundError("No master found for 'x'"))
    assert not never_sent(redis.ConnectionError("Connection closed by server."))
    assert not never_sent(redis.TimeoutError("Timeout reading from 127.0.0.1:6379"))


def test_a_mailbox_behind_its_reader_moves_up_so_new_pushes_are_not_hidden(redis_url):
    """A replica promoted before it had the last pushes numbers the next ones again from
    where it is; an outlet that sent up to 5 would skip new pushes numbered 4 and 5."""
    packer = get_packer("json")
    bus = make_bus(
        redis_url,
        scheduler=Scheduler(),
        backlog=10,
        window_s=30,
        lost=lambda *a: None,
        packer=packer,
    )
    try:
        bus.ensure_mailbox("u", "c")
        for i in (1, 2, 3):
            bus.push("u", Outgoing.of(packer, ["a/b", i]))
        assert bus.read("u", "c", 5)[1] == []  # the outlet sent 5: the mailbox has 3
        bus.push("u", Outgoing.of(packer, ["a/b", "new"]))
        assert [(seq, item.event) for seq, item in bus.read("u", "c", 5)[1]] == [
            (6, ["a/b", "new"])
        ]
    finally:
        bus.close()
