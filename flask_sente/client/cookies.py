"""The client's cookie jar: one jar for the WebSocket handshake and every Ajax request.

An app whose CSRF token is tied to its session (Flask's usual set-up) only accepts a client
that sends the session cookie with the token. ``Client(cookies=...)`` takes that cookie as
a mapping, a :class:`http.cookiejar.CookieJar` or a :class:`requests.Session` (whose jar is
shared, so cookies the server sets over Ajax land in it and go out with the next handshake).
"""

from __future__ import annotations

from collections.abc import Mapping
from http.cookiejar import CookieJar
from typing import TypeAlias

import requests
from requests.cookies import cookiejar_from_dict, get_cookie_header

from ..errors import ConfigError
from .wire import http_url

__all__ = ["Cookies", "cookie_header", "cookie_jar"]

#: What ``Client(cookies=...)`` accepts.
Cookies: TypeAlias = Mapping[str, str] | CookieJar | requests.Session


def cookie_jar(cookies: Cookies | None) -> CookieJar | None:
    """The jar behind ``cookies``: a session's or a jar itself (shared), a mapping's (new)."""
    if cookies is None or isinstance(cookies, CookieJar):
        return cookies
    if isinstance(cookies, requests.Session):
        return cookies.cookies
    if isinstance(cookies, Mapping):
        return cookiejar_from_dict({str(k): str(v) for k, v in cookies.items()})
    raise ConfigError(
        "cookies must be a mapping of names to values, a http.cookiejar.CookieJar or a "
        f"requests.Session, got {type(cookies).__name__}"
    )


def cookie_header(jar: CookieJar | None, url: str) -> str | None:
    """The ``Cookie`` header a browser would send to ``url`` (domain, path and secure
    flags honoured); None when no cookie applies."""
    if jar is None:
        return None
    request = requests.Request("GET", http_url(url)).prepare()
    return get_cookie_header(jar, request)
