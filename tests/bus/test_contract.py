"""One contract, every bus: the in-process bus and the Redis bus behave the same."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from flask_sente.batching import Outgoing
from flask_sente.bus import Bus, make_bus
from flask_sente.packers import get_packer
from flask_sente.scheduler import Scheduler
from tests.support import wait_until

PACKER = get_packer("json")


def ev(n: int) -> Outgoing:
    """What ``send`` puts on a bus: the event ``["a/b", n]``, packed."""
    return Outgoing.of(PACKER, ["a/b", n])


def read(bus: Bus, uid: str, client_id: str, after: int) -> list:
    return [(seq, item.event) for seq, item in bus.read(uid, client_id, after)[1]]


class Listener:
    def __init__(self) -> None:
        self.pushes: list = []
        self.closes: list = []
        self.presence = 0
        self.dead: list = []

    def remote_push(self, uid):
        self.pushes.append(uid)

    def remote_close(self, uid):
        self.closes.append(uid)

    def presence_changed(self):
        self.presence += 1

    def uid_closed_elsewhere(self, uid):
        self.dead.append(uid)


@pytest.fixture(params=["local", "redis"])
def make(request) -> Iterator:
    scheduler = Scheduler()
    made: list[Bus] = []
    lost: list = []

    channel = f"contract-{uuid.uuid4().hex[:8]}"  # no state from another test can leak in

    def factory(**overrides) -> Bus:
        url = request.getfixturevalue("redis_url") if request.param == "redis" else None
        options = {"backlog": 100, "window_s": 30.0, **overrides}
        bus = make_bus(
            url,
            scheduler=scheduler,
            lost=lambda uid, events, why: lost.append((uid, events, why)),
            packer=PACKER,
            channel=channel,
            **options,
        )
        made.append(bus)
        return bus

    factory.lost = lost  # type: ignore[attr-defined]
    factory.kind = request.param  # type: ignore[attr-defined]
    yield factory
    for bus in made:
        bus.close()
    scheduler.close()


def test_push_reaches_every_mailbox_of_the_uid_numbered_in_order(make):
    bus = make()
    assert bus.push("u", ev(0)) is False  # nobody to push to
    bus.ensure_mailbox("u", "c1")
    bus.ensure_mailbox("u", "c2")
    for i in range(1, 4):
        assert bus.push("u", ev(i)) is True
    for client in ("c1", "c2"):
        assert bus.read("u", client, 0)[0]
        assert read(bus, "u", client, 0) == [(1, ["a/b", 1]), (2, ["a/b", 2]), (3, ["a/b", 3])]
    assert read(bus, "u", "c1", 2) == [(3, ["a/b", 3])]
    assert read(bus, "other", "c1", 0) == []
    # the packed form is what was pushed, whoever stores it
    assert [item.packed for _, item in bus.read("u", "c1", 0)[1]] == [
        ev(i).packed for i in (1, 2, 3)
    ]


def test_a_batch_is_numbered_in_order_and_says_which_pushes_found_a_mailbox(make):
    bus = make()
    bus.ensure_mailbox("u", "c")
    batch = [("u", ev(1)), ("nobody", ev(2)), ("u", ev(3)), (7, ev(4))]
    assert bus.push_many(batch) == [True, False, True, False]
    assert bus.push_many([]) == []
    assert read(bus, "u", "c", 0) == [(1, ["a/b", 1]), (2, ["a/b", 3])]


def test_positions_follow_reports_of_the_same_epoch_else_what_was_delivered(make):
    bus = make()
    bus.ensure_mailbox("u", "c")
    for i in range(5):
        bus.push("u", ev(i))
    epoch, _ = bus.read("u", "c", 0)
    assert bus.position("u", "c", None) == 0
    bus.delivered("u", "c", 3)
    assert bus.position("u", "c", None) == 3
    assert bus.position("u", "c", (epoch, 4)) == 4
    assert bus.position("u", "c", ("another-epoch", 4)) == 0  # saw nothing of this mailbox
    assert bus.position("u", "c", ("", 0)) == 0  # a reporting client's "-"
    assert bus.position("u", "c", (epoch, 99)) == 3  # beyond what exists: not trusted
    bus.delivered("u", "c", 2)  # never goes back
    assert bus.position("u", "c", None) == 3


def test_backlog_is_bounded(make):
    bus = make(backlog=3)
    bus.ensure_mailbox("u", "c")
    for i in range(6):
        bus.push("u", ev(i))
    assert [seq for seq, _ in bus.read("u", "c", 0)[1]] == [4, 5, 6]


def test_presence_counts_first_and_last_across_kinds(make):
    bus = make()
    assert bus.opened("u", "ws") is True
    assert bus.opened("u", "ajax") is False
    assert bus.connected_uids() == {
        "ws": frozenset({"u"}),
        "ajax": frozenset({"u"}),
        "any": frozenset({"u"}),
    }
    assert bus.closed("u", "ws") is False
    assert bus.closed("u", "ajax") is True
    assert bus.connected_uids()["any"] == frozenset()


@pytest.mark.parametrize("make", ["redis"], indirect=True)  # local: one process by definition
def test_presence_is_shared_by_buses_of_one_cluster(make):
    one, two = make(), make()
    listener = Listener()
    two.start(listener)
    wait_until(lambda: two.health()["ok"], 5)
    assert one.opened("u", "ws") is True
    assert two.opened("u", "ajax") is False  # already in the cluster
    wait_until(lambda: listener.presence >= 1, 5)
    assert two.connected_uids()["any"] == frozenset({"u"})
    assert one.closed("u", "ws") is False
    assert two.closed("u", "ajax") is True
    one.ensure_mailbox("v", "c")
    two.attach("v", "c")  # a connection of v's client on two: two must hear of v's pushes
    one.push("v", ev(1))
    wait_until(lambda: listener.pushes == ["v"], 5)
    assert read(two, "v", "c", 0) == [(1, ["a/b", 1])]


@pytest.mark.parametrize("make", ["redis"], indirect=True)  # local: one process by definition
def test_a_push_wakes_only_the_workers_holding_the_uid(make):
    pusher, holder, bystander = make(), make(), make()
    heard = {"holder": Listener(), "bystander": Listener()}
    holder.start(heard["holder"])
    bystander.start(heard["bystander"])
    wait_until(lambda: holder.health()["ok"] and bystander.health()["ok"], 5)
    for uid in ("x", "y"):
        pusher.ensure_mailbox(uid, "c")
    holder.attach("x", "c")
    bystander.attach("y", "c")
    bystander.detach("y", "c")  # y's connection on the bystander ended
    assert pusher.push_many([("x", ev(1)), ("y", ev(2)), ("x", ev(3))]) == [
        True,
        True,
        True,
    ]
    pusher.push("y", ev(4))
    bystander.attach("y", "c")
    pusher.push("y", ev(5))  # the last push: the bystander now hears of it
    wait_until(lambda: heard["bystander"].pushes == ["y"], 5)
    pusher.push("x", ev(6))  # what the holder hears after this is all it heard before
    wait_until(lambda: len(heard["holder"].pushes) >= 2, 5)
    assert heard["holder"].pushes == ["x", "x"]  # one notice for the whole batch, one for 6
    assert heard["bystander"].pushes == ["y"]
    assert read(holder, "x", "c", 0) == [(1, ["a/b", 1]), (2, ["a/b", 3]), (3, ["a/b", 6])]


@pytest.mark.parametrize("make", ["redis"], indirect=True)  # local: one process by definition
def test_a_dead_workers_uids_are_reaped(make, monkeypatch):
    import flask_sente.bus.redis_presence as redis_bus

    monkeypatch.setattr(redis_bus, "ALIVE_TTL_S", 0.5)
    monkeypatch.setattr(redis_bus, "REAP_EVERY_S", 0.2)
    monkeypatch.setattr(redis_bus, "HEARTBEAT_S", 0.1)
    dying, survivor = make(), make()
    listener = Listener()
    dying.start(Listener())
    survivor.start(listener)
    assert dying.opened("ghost", "ws") is True
    wait_until(lambda: "ghost" in survivor.connected_uids()["any"], 5)
    dying._stop.set()  # its heartbeat stops, as if the process were killed
    wait_until(lambda: listener.dead == ["ghost"], 10)
    wait_until(lambda: "ghost" not in survivor.connected_uids()["any"], 5)


def test_a_departed_clients_log_expires_with_its_mailbox_whatever_else_is_pushed(
    redis_server, redis_url
):
    # Pushes to a uid reach every mailbox it has, a departed client's too: they must not keep
    # that client's log alive past its mailbox (a soak found Redis growing that way).
    scheduler = Scheduler()
    bus = make_bus(
        redis_url,
        scheduler=scheduler,
        lost=lambda *a: None,
        packer=PACKER,
        backlog=100,
        window_s=30.0,
    )
    try:
        bus.ensure_mailbox("u", "gone")
        bus.ensure_mailbox("u", "stays")
        bus.push("u", ev(1))
        client = redis_server.client()
        (mailbox,) = client.keys("*mb:*:gone")
        (log,) = client.keys("*log:*:gone")
        client.pexpire(mailbox, 2000)  # its time runs out, as after its last connection
        bus.push("u", ev(2))  # for the client that stays
        assert 0 < client.pttl(log) <= client.pttl(mailbox) + 50
    finally:
        bus.close()
        scheduler.close()
