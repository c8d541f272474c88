"""Packers turn Python values into wire text (or bytes) and back.

A server and its clients must use the same packer; Sente has no negotiation.

* ``json`` (the default) for Python and JavaScript clients: the same structure as
  Sente's, in JSON, with keywords (event ids, ``chsk/timeout``...) written as strings.
  Sets are written as arrays, UUIDs and datetimes as strings. The standard library's
  ``json`` is used: it measured 267,000 pack+unpack per second on a typical event here,
  enough for the target; orjson was faster (1.2 million) but is one more dependency.
* ``edn`` for real Sente (ClojureScript or JVM) peers: see :mod:`flask_sente.edn`.
* ``transit`` for Sente peers using its transit packer (``:json``; ``:json-verbose`` with
  ``TransitPacker(verbose=True)``): see :mod:`flask_sente.transit`.
* ``msgpack``, binary, for Sente peers using its msgpack packer and for anything that
  carries ``bytes``: see :mod:`flask_sente.msgpack` (needs ``flask-sente[msgpack]``).
* ``gzip+json``, ``gzip+edn``, ``gzip+msgpack``: :class:`GzipPacker` around another
  packer, as Sente's ``gzip/wrap-packer``. Always binary.

A packer is anything with ``binary: bool``, ``pack(value)`` and ``unpack(data)``;
``unpack`` raises :class:`~flask_sente.errors.UnpackError` on what it cannot read.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
import zlib
from collections.abc import Callable
from decimal import Decimal
from json.encoder import c_encode_basestring, c_make_encoder  # type: ignore[attr-defined]
from typing import Any, Protocol, runtime_checkable

from . import edn, transit
from .errors import ConfigError, PackError, UnpackError
from .typecheck import check_arguments
from .values import Symbol

__all__ = [
    "PACKER_NAMES",
    "EdnPacker",
    "GzipPacker",
    "JsonPacker",
    "MsgpackPacker",
    "Packer",
    "TransitPacker",
    "get_packer",
]


@runtime_checkable
class Packer(Protocol):
    """What a packer provides. ``binary`` says whether ``pack`` returns bytes."""

    binary: bool

    def pack(self, value: Any) -> str | bytes: ...

    def unpack(self, data: str | bytes) -> Any: ...


def _json_default(x: Any) -> Any:
    if isinstance(x, set | frozenset | tuple):
        return list(x)
    if isinstance(x, uuid.UUID | Decimal):
        return str(x)
    if isinstance(x, dt.datetime | dt.date):
        return x.isoformat()
    if isinstance(x, Symbol):
        return x.name
    if isinstance(x, bytes | bytearray):
        raise PackError("JSON cannot carry bytes; use a binary packer (msgpack) for them")
    raise PackError(f"JSON cannot write a {type(x).__name__}: {x!r}")


class JsonPacker:
    """Sente's message structure in compact JSON."""

    name = "json"
    binary = False

    def __init__(self) -> None:
        self._encode: Callable[[Any], str] = json.JSONEncoder(
            separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default
        ).encode
        if c_make_encoder is not None and c_encode_basestring is not None:
            # the same C encoder, made once: JSONEncoder.encode makes it anew on every call,
            # half the cost of packing an event (every push is packed when it is sent)
            chunks = c_make_encoder(
                None, _json_default, c_encode_basestring, None, ":", ",", False, False, False
            )
            self._encode = lambda value: "".join(chunks(value, 0))
        self._decode = json.JSONDecoder().decode

    def pack(self, value: Any) -> str:
        try:
            return self._encode(value)
        except PackError:
            raise
        except (TypeError, ValueError, RecursionError) as exc:
            raise PackError(f"cannot write as JSON: {exc}") from exc

    def unpack(self, data: str | bytes) -> Any:
        try:
            text = bytes(data).decode("utf-8") if isinstance(data, bytes | bytearray) else data
            return self._decode(text)
        except (ValueError, RecursionError) as exc:
            raise UnpackError(f"not valid JSON: {exc}", data) from exc

    def __repr__(self) -> str:
        return "JsonPacker()"


class EdnPacker:
    """edn exactly as Sente's default packer writes it (Clojure ``pr-str``)."""

    name = "edn"
    binary = False

    def __init__(self, *, keywordize_keys: bool = True) -> None:
        self.keywordize_keys = keywordize_keys

    def pack(self, value: Any) -> str:
        try:
            return edn.dumps(value, keywordize_keys=self.keywordize_keys)
        except PackError:
            raise
        except RecursionError as exc:
            raise PackError("value is nested too deeply for edn") from exc
        except ValueError as exc:  # e.g. an int past sys.get_int_max_str_digits()
            raise PackError(f"cannot write as edn: {exc}") from exc

    def unpack(self, data: str | bytes) -> Any:
        return edn.loads(data)

    def __repr__(self) -> str:
        return f"EdnPacker(keywordize_keys={self.keywordize_keys})"


class TransitPacker:
    """Sente's transit packer, ``(taoensso.sente.packers.transit/get-packer :json)``.

    ``verbose=True`` writes ``:json-verbose`` (maps as JSON objects, no cache); either
    reads both, as transit's readers do.
    """

    name = "transit"
    binary = False

    def __init__(self, *, keywordize_keys: bool = True, verbose: bool = False) -> None:
        self.keywordize_keys = keywordize_keys
        self.verbose = verbose

    def pack(self, value: Any) -> str:
        try:
            return transit.dumps(value, keywordize_keys=self.keywordize_keys, verbose=self.verbose)
        except PackError:
            raise
        except RecursionError as exc:
            raise PackError("value is nested too deeply for transit") from exc
        except ValueError as exc:  # e.g. an int past sys.get_int_max_str_digits()
            raise PackError(f"cannot write as transit: {exc}") from exc

    def unpack(self, data: str | bytes) -> Any:
        return transit.loads(data)

    def __repr__(self) -> str:
        return f"TransitPacker(keywordize_keys={self.keywordize_keys}, verbose={self.verbose})"


class MsgpackPacker:
    """Sente's MessagePack dialect (``taoensso.sente.packers.msgpack``); binary."""

    name = "msgpack"
    binary = True

    def __init__(self, *, keywordize_keys: bool = True) -> None:
        try:
            from . import msgpack
        except ImportError as exc:
            raise ConfigError(
                "the msgpack packer needs the msgpack package: "
                "pip install 'flask-sente[msgpack]' (or pip install msgpack)"
            ) from exc
        self.keywordize_keys = keywordize_keys
        self._dumps = msgpack.dumps
        self._loads = msgpack.loads

    def pack(self, value: Any) -> bytes:
        try:
            return self._dumps(value, keywordize_keys=self.keywordize_keys)
        except PackError:
            raise
        except RecursionError as exc:
            raise PackError("value is nested too deeply for msgpack") from exc
        except (TypeError, ValueError, OverflowError) as exc:
            raise PackError(f"cannot write as msgpack: {exc}") from exc

    def unpack(self, data: str | bytes) -> Any:
        return self._loads(data)

    def __repr__(self) -> str:
        return f"MsgpackPacker(keywordize_keys={self.keywordize_keys})"


_RAW, _GZIP = b"\x00", b"\x01"
#: Sente's own threshold: packages of fewer bytes go uncompressed.
GZIP_THRESHOLD = 1024


class GzipPacker:
    """Another packer's output, gzipped, as Sente's ``gzip/wrap-packer`` writes it.

    Each package is one flag byte and a body: ``01`` then a gzip stream, or ``00`` then the
    inner packer's bytes as they are (UTF-8 for a text packer). Packages under ``threshold``
    bytes (Sente: 1024) go uncompressed; the threshold is the sender's choice alone, since
    every package says what it is. ``max_size`` bounds what one package may inflate to, so a
    small hostile package cannot take the server's memory.
    """

    binary = True

    @check_arguments
    def __init__(
        self,
        inner: str | Packer,
        *,
        threshold: int = GZIP_THRESHOLD,
        level: int = 6,
        max_size: int = 64 * 1024 * 1024,
    ) -> None:
        self.inner = get_packer(inner)
        if isinstance(self.inner, GzipPacker):
            raise ConfigError("a GzipPacker around another GzipPacker compresses twice for nothing")
        if threshold < 0 or max_size < 1 or not -1 <= level <= 9:
            raise ConfigError(
                f"GzipPacker needs threshold >= 0, max_size >= 1 and level -1..9; got "
                f"threshold={threshold}, max_size={max_size}, level={level}"
            )
        self.threshold = threshold
        self.level = level
        self.max_size = max_size

    @property
    def name(self) -> str:
        return "gzip+" + getattr(self.inner, "name", type(self.inner).__name__)

    def pack(self, value: Any) -> bytes:
        packed = self.inner.pack(value)
        data = packed.encode("utf-8") if isinstance(packed, str) else bytes(packed)
        if len(data) < self.threshold:
            return _RAW + data
        return _GZIP + _gzip(data, self.level)

    def unpack(self, data: str | bytes) -> Any:
        if isinstance(data, str):
            raise UnpackError(
                "gzip packages are binary but a text message arrived: is the peer using a "
                "text packer, or sending text WebSocket frames?",
                data,
            )
        flag, body = bytes(data[:1]), data[1:]
        if flag == _GZIP:
            body = _gunzip(body, self.max_size, data)
        elif flag != _RAW:
            raise UnpackError(
                f"not a gzip-packer package: its first byte is {flag.hex() or 'missing'}, "
                "not 00 (raw) or 01 (gzip)",
                data,
            )
        try:
            return self.inner.unpack(
                bytes(body) if self.inner.binary else bytes(body).decode("utf-8")
            )
        except UnpackError as exc:
            raise UnpackError(str(exc), data) from exc
        except UnicodeDecodeError as exc:
            raise UnpackError(f"the inner package is not UTF-8 text: {exc}", data) from exc

    def __repr__(self) -> str:
        return (
            f"GzipPacker({self.inner!r}, threshold={self.threshold}, level={self.level}, "
            f"max_size={self.max_size})"
        )


_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x00"


def _gzip(data: bytes, level: int) -> bytes:
    """A gzip member with the header Java's ``GZIPOutputStream`` writes (no name, time 0)."""
    deflate = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    crc = zlib.crc32(data).to_bytes(4, "little")
    size = (len(data) & 0xFFFFFFFF).to_bytes(4, "little")
    return _GZIP_HEADER + deflate.compress(data) + deflate.flush() + crc + size


def _gunzip(body: bytes, limit: int, package: bytes) -> bytes:
    """The content of one or more gzip members, refusing more than ``limit`` bytes."""
    out = bytearray()
    while True:
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += inflate.decompress(body, limit + 1 - len(out))
        except zlib.error as exc:
            raise UnpackError(f"not valid gzip: {exc}", package) from exc
        if len(out) > limit:
            raise UnpackError(f"gzip package inflates past max_size ({limit} bytes)", package)
        if not inflate.eof:
            raise UnpackError("gzip package is truncated", package)
        body = inflate.unused_data
        if not body:
            return bytes(out)


_BY_NAME: dict[str, type] = {
    "json": JsonPacker,
    "edn": EdnPacker,
    "transit": TransitPacker,
    "msgpack": MsgpackPacker,
}
#: Every name :func:`get_packer` takes, for command lines and configuration checks.
PACKER_NAMES: tuple[str, ...] = (*_BY_NAME, *(f"gzip+{name}" for name in _BY_NAME))


def get_packer(packer: str | Packer | None) -> Packer:
    """A packer from its name (``"json"``, ``"edn"``, ``"transit"``, ``"msgpack"``,
    ``"gzip+json"``...)
    or a packer object as it is."""
    if packer is None:
        return JsonPacker()
    if isinstance(packer, str):
        name = packer.lower()
        inner, gzip = (name[5:], True) if name.startswith("gzip+") else (name, False)
        try:
            chosen = _BY_NAME[inner]()
        except KeyError:
            raise ConfigError(
                f"unknown packer {packer!r}; use one of {list(PACKER_NAMES)} or a Packer object"
            ) from None
        return GzipPacker(chosen) if gzip else chosen
    if isinstance(packer, Packer):
        return packer
    raise ConfigError(f"a packer must be a name or have pack, unpack and binary: got {packer!r}")
