"""Options checked against their type hints, with errors that say what was wrong.

The server's and the client's options are dataclasses whose fields carry type hints; a
value is checked against its hint where the options are resolved, so
``Sente(app, lp_timeout_ms="abc")`` fails at once with a :class:`~flask_sente.errors.ConfigError`
naming the option, the value and the type expected, rather than later with a ``TypeError``
from deep inside. Range and choice checks stay with the options themselves.

The hints understood are those options use: ``int`` (not ``bool``), ``float`` (an ``int``
too), ``bool``, ``str``, ``None``, unions, callables, mappings, sets (any collection of the
members' type) and ``Any``; any other class by ``isinstance``.
"""

from __future__ import annotations

import collections.abc
import functools
import inspect
import types
import typing
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from .errors import ConfigError

__all__ = ["check_arguments", "check_types", "describe"]

F = typing.TypeVar("F", bound=Callable[..., Any])


def check_arguments(fn: F) -> F:
    """Decorator: each argument a call passes is checked against its hint in ``fn``'s
    signature (a constructor's options, say) before ``fn`` runs."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def checked(*args: Any, **kwargs: Any) -> Any:
        given = signature.bind(*args, **kwargs).arguments
        check_types(fn, {name: v for name, v in given.items() if name != "self"})
        return fn(*args, **kwargs)

    return checked  # type: ignore[return-value]


def check_types(
    cls: type | Callable[..., Any],
    values: Mapping[str, Any],
    *,
    label: Callable[[str], str] = str,
    skip: Iterable[str] = (),
) -> None:
    """Check each of ``values`` against the type hint of the field of ``cls`` (or the
    parameter of the function ``cls``) it is for.

    ``label(name)`` is how the error names an option (a config key, say). Names without a
    hint, and those in ``skip`` (resolved and checked elsewhere), are not checked."""
    hints = _hints(cls)
    skipped = set(skip)
    for name, value in values.items():
        hint = hints.get(name)
        if hint is None or name in skipped or accepts(hint, value):
            continue
        raise ConfigError(
            f"{label(name)} must be {describe(hint)}: got {value!r} ({type(value).__name__})"
        )


@functools.cache
def _hints(cls: type | Callable[..., Any]) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def accepts(hint: Any, value: Any) -> bool:
    """Whether ``value`` is of the type ``hint`` describes."""
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return any(accepts(arm, value) for arm in typing.get_args(hint))
    if hint is Any:
        return True
    if hint is None or hint is type(None):
        return value is None
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if origin is collections.abc.Callable or hint is collections.abc.Callable:
        return callable(value)
    if origin in (collections.abc.Mapping, dict):
        return isinstance(value, Mapping)
    if origin in (frozenset, set, collections.abc.Set):
        (member,) = typing.get_args(hint)
        return (
            isinstance(value, Collection)
            and not isinstance(value, str | bytes | Mapping)
            and all(accepts(member, v) for v in value)
        )
    return isinstance(value, origin or hint)


def describe(hint: Any) -> str:
    """``hint`` in words: ``"an int or None"``, ``"a set of str"``..."""
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return " or ".join(describe(arm) for arm in typing.get_args(hint))
    if hint is None or hint is type(None):
        return "None"
    if hint is Any:
        return "anything"
    if hint is float:
        return "a number"
    if origin is collections.abc.Callable or hint is collections.abc.Callable:
        return "a callable"
    if origin in (collections.abc.Mapping, dict):
        return "a mapping"
    if origin in (frozenset, set, collections.abc.Set):
        article, _, noun = describe(typing.get_args(hint)[0]).partition(" ")
        return "a set of " + (noun if article in ("a", "an") else f"{article} {noun}".strip())
    name = getattr(origin or hint, "__name__", str(hint))
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"
