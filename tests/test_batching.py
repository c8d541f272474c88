"""Push batches from events packed once: joined, they are what packing the batch whole gives."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_sente import protocol
from flask_sente.batching import BatchWriter, Outgoing, pack_value, reported
from flask_sente.errors import InvalidEvent, PackError, UnpackError
from flask_sente.packers import get_packer
from flask_sente.protocol import Keyword, pack, push_batch

ids = st.from_regex(r"[a-z][a-z0-9-]{0,6}/[a-z][a-z0-9?!-]{0,8}", fullmatch=True)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(min_size=1, max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
events = st.one_of(st.tuples(ids).map(list), st.tuples(ids, values).map(list))
tags = st.none() | st.from_regex(r"[0-9a-f]{8}:[0-9]{1,6}", fullmatch=True)


@pytest.mark.parametrize("name", ["json", "edn"])
@settings(max_examples=150, deadline=None)
@given(batch=st.lists(events, min_size=1, max_size=6), tag=tags, legacy=st.booleans())
def test_joined_batches_are_byte_for_byte_the_batch_packed_whole(name, batch, tag, legacy):
    packer = get_packer(name)
    writer = BatchWriter(packer, legacy=legacy)
    assert writer.joins
    items = [Outgoing.of(packer, ev) for ev in batch]
    whole = pack(packer, push_batch(batch), None, tag=tag, legacy=legacy)
    assert writer.write(items, tag) == whole


@pytest.mark.parametrize("name", ["json", "edn"])
def test_an_unset_legacy_follows_the_module_default_at_each_write(name, monkeypatch):
    packer = get_packer(name)
    writer = BatchWriter(packer, legacy=None)
    items = [Outgoing.of(packer, ["a/b", 1])]
    assert writer.write(items, None) == pack(packer, push_batch([["a/b", 1]]), None, legacy=False)
    monkeypatch.setattr(protocol, "WRITE_LEGACY_PACK_FORMAT", True)
    assert writer.write(items, None) == pack(packer, push_batch([["a/b", 1]]), None, legacy=True)
    assert str(writer.write(items, None)).startswith("-")


@pytest.mark.parametrize("name", ["msgpack", "gzip+json", "gzip+edn"])
def test_packers_that_cannot_join_pack_the_batch_anew(name):
    packer = get_packer(name)
    writer = BatchWriter(packer, legacy=False)
    assert not writer.joins
    batch = [["a/b", {"k": "v", "n": [1, 2]}], ["c/d"], ["a/b", {"k": "w"}]]
    items = [Outgoing.of(packer, ev) for ev in batch]
    assert writer.write(items, "e:3") == pack(packer, push_batch(batch), None, tag="e:3")


def test_an_event_is_checked_normalized_and_packed_once():
    packer = get_packer("edn")
    item = Outgoing.of(packer, ("chat/msg", {"text": "hi"}))
    assert item.event == [Keyword("chat/msg"), {"text": "hi"}]
    assert isinstance(item.event[0], Keyword)
    assert item.packed == '[:chat/msg {:text "hi"}]'
    with pytest.raises(InvalidEvent):
        Outgoing.of(packer, "chat/msg")
    with pytest.raises(InvalidEvent):
        Outgoing.of(packer, ["no-namespace"])


@pytest.mark.parametrize("name", ["json", "edn", "msgpack"])
def test_what_a_packer_cannot_write_is_a_pack_error_at_once(name):
    with pytest.raises(PackError):
        Outgoing.of(get_packer(name), ["t/b", object()])


def test_a_third_party_packers_own_exception_becomes_a_pack_error():
    class Fussy:
        binary = False

        def pack(self, value):
            raise TypeError("no")

        def unpack(self, data):
            return data

    with pytest.raises(PackError, match="cannot write") as caught:
        pack_value(Fussy(), ["a/b", 1])
    assert isinstance(caught.value.__cause__, TypeError)


def test_an_event_kept_only_packed_is_read_back_when_needed():
    packer = get_packer("json")
    item = Outgoing.unread(packer, '["a/b",{"x":1}]')
    assert item.event == ["a/b", {"x": 1}]
    foreign = Outgoing.unread(packer, "[:a/b 1]")  # written with edn, read with json
    with pytest.raises(UnpackError):
        _ = foreign.event
    # a report of what was not delivered shows what can be shown, never fails
    assert reported([item, foreign, ["plain/event"]]) == [
        ["a/b", {"x": 1}],
        "[:a/b 1]",
        ["plain/event"],
    ]
