"""flask_sente.packers.GzipPacker: Sente's gzip wrapper around any packer."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_sente import protocol
from flask_sente.errors import ConfigError, UnpackError
from flask_sente.packers import (
    GZIP_THRESHOLD,
    EdnPacker,
    GzipPacker,
    JsonPacker,
    MsgpackPacker,
    get_packer,
)
from flask_sente.values import Keyword

INNERS = ["json", "edn", "msgpack"]
BIG = ["x" * 2000]


def test_names_choose_a_gzip_packer_around_each_packer() -> None:
    for name, cls in (("json", JsonPacker), ("edn", EdnPacker), ("msgpack", MsgpackPacker)):
        packer = get_packer(f"gzip+{name}")
        assert isinstance(packer, GzipPacker) and isinstance(packer.inner, cls)
        assert packer.binary is True
        assert packer.name == f"gzip+{name}"
        assert packer.threshold == GZIP_THRESHOLD == 1024
    assert get_packer("GZIP+EDN").name == "gzip+edn"
    assert repr(get_packer("gzip+json")) == (
        "GzipPacker(JsonPacker(), threshold=1024, level=6, max_size=67108864)"
    )
    mine = GzipPacker(EdnPacker(keywordize_keys=False), threshold=0)
    assert get_packer(mine) is mine


@pytest.mark.parametrize(
    "make",
    [
        lambda: get_packer("gzip+"),
        lambda: get_packer("gzip+gzip+json"),
        lambda: GzipPacker("gzip+json"),
        lambda: GzipPacker("json", threshold=-1),
        lambda: GzipPacker("json", max_size=0),
        lambda: GzipPacker("json", level=10),
        lambda: GzipPacker(object()),  # type: ignore[arg-type]
    ],
)
def test_bad_options_are_config_errors(make: Any) -> None:
    with pytest.raises(ConfigError):
        make()


@pytest.mark.parametrize("inner", INNERS)
def test_small_packages_go_raw_behind_a_zero_byte(inner: str) -> None:
    packer = get_packer(f"gzip+{inner}")
    plain = get_packer(inner).pack([Keyword("a/b"), 1])
    packed = packer.pack([Keyword("a/b"), 1])
    assert packed == b"\x00" + (plain.encode() if isinstance(plain, str) else plain)
    assert packer.unpack(packed) == [Keyword("a/b"), 1]


@pytest.mark.parametrize("inner", INNERS)
def test_large_packages_are_gzipped_behind_a_one_byte(inner: str) -> None:
    packer = get_packer(f"gzip+{inner}")
    plain = get_packer(inner).pack(BIG)
    packed = packer.pack(BIG)
    assert packed[:1] == b"\x01"
    assert gzip.decompress(packed[1:]) == (plain.encode() if isinstance(plain, str) else plain)
    assert len(packed) < 100
    assert packer.unpack(packed) == BIG


def test_the_gzip_stream_has_javas_header() -> None:
    """As ``java.util.zip.GZIPOutputStream`` writes it: no name, no time, no OS."""
    packed = GzipPacker("json", threshold=0).pack("hi")
    assert packed[:11] == bytes.fromhex("01 1f8b 08 00 00000000 00 00")


def test_the_threshold_is_the_packed_size_in_bytes() -> None:
    packer = GzipPacker("json", threshold=10)
    assert packer.pack("a" * 7)[:1] == b"\x00"  # '"aaaaaaa"' is 9 bytes
    assert packer.pack("a" * 8)[:1] == b"\x01"  # 10 bytes
    assert GzipPacker("json", threshold=0).pack(None)[:1] == b"\x01"
    assert GzipPacker("json", threshold=10**9).pack(BIG)[:1] == b"\x00"


def test_any_threshold_reads_any_other() -> None:
    """The flag byte says what each package is, so thresholds need not agree."""
    never, always = GzipPacker("msgpack", threshold=10**9), GzipPacker("msgpack", threshold=0)
    for value in (None, BIG, {"a": b"\x00" * 3000}):
        assert never.unpack(always.pack(value)) == value
        assert always.unpack(never.pack(value)) == value


def test_text_packers_carry_utf8() -> None:
    packer = GzipPacker("edn", threshold=0)
    assert gzip.decompress(packer.pack("é€")[1:]) == '"é€"'.encode()
    assert packer.unpack(b"\x00" + '"é€"'.encode()) == "é€"
    with pytest.raises(UnpackError, match="not UTF-8"):
        packer.unpack(b"\x00\xff")


def test_concatenated_gzip_members_read() -> None:
    body = gzip.compress(b'["a",') + gzip.compress(b'"b"]')
    assert get_packer("gzip+json").unpack(b"\x01" + body) == ["a", "b"]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "first byte is missing"),
        (b"\x02[1]", "first byte is 02"),
        (gzip.compress(b"[1]"), "first byte is 1f"),
        (b"\x01not gzip", "not valid gzip"),
        (b"\x01" + gzip.compress(b"[1]")[:-6], "truncated"),
        (b"\x01" + gzip.compress(b"[1]") + b"junk", "not valid gzip"),
        (b"\x00[1", "not valid JSON"),
        ("[1]", "text message arrived"),
    ],
    ids=repr,
)
def test_bad_packages_raise_unpack_error_with_the_package(data: Any, why: str) -> None:
    packer = get_packer("gzip+json")
    with pytest.raises(UnpackError, match=why) as caught:
        packer.unpack(data)
    assert caught.value.package is data
    with pytest.raises(UnpackError) as caught:
        protocol.unpack(packer, data)
    assert caught.value.package is data


def test_a_package_may_not_inflate_past_max_size() -> None:
    bomb = b"\x01" + gzip.compress(b"[" + b" " * 100_000 + b"1]")
    assert len(bomb) < 200
    assert GzipPacker("json", max_size=100_003).unpack(bomb) == [1]
    with pytest.raises(UnpackError, match="inflates past max_size \\(100002 bytes\\)"):
        GzipPacker("json", max_size=100_002).unpack(bomb)


def test_messages_are_binary_in_the_current_format_only() -> None:
    packer = get_packer("gzip+edn")
    wire = protocol.pack(packer, [Keyword("chsk/ws-ping")], "3f2e1d")
    assert wire == b'\x00[[:chsk/ws-ping] "3f2e1d"]'
    assert protocol.unpack(packer, wire) == ([Keyword("chsk/ws-ping")], "3f2e1d")
    with pytest.raises(ValueError, match="text only"):
        protocol.pack(packer, [Keyword("a/b")], None, legacy=True)


_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=300),
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_values, st.sampled_from(INNERS), st.integers(0, 2000))
def test_values_round_trip_at_any_threshold(value: Any, inner: str, threshold: int) -> None:
    packer = GzipPacker(inner, threshold=threshold)
    packed = packer.pack(value)
    if packed[:1] == b"\x00":
        assert len(packed) - 1 < threshold
    else:
        assert len(gzip.decompress(packed[1:])) >= threshold
    assert packer.unpack(packed) == get_packer(inner).unpack(get_packer(inner).pack(value))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.sampled_from(INNERS))
def test_unpacking_any_bytes_raises_only_unpack_error(data: bytes, inner: str) -> None:
    try:
        get_packer(f"gzip+{inner}").unpack(data)
    except UnpackError as exc:
        assert exc.package is data
