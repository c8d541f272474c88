"""Log in as a browser would: load a page, keep its cookies, read its CSRF token.

Most apps put the session's CSRF token in the page (``<meta name="csrf-token">``, where
``sente.js`` reads it) and check it against the session cookie. A script does the same::

    token, web = csrf_from_page("http://127.0.0.1:5000/")
    with Client("http://127.0.0.1:5000/chsk", csrf_token=token, cookies=web) as chsk:
        ...

``web`` is a :class:`requests.Session`: post a login form with it first when the app wants one.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import NamedTuple

import requests

from ..errors import ConfigError

__all__ = ["PageCredentials", "csrf_from_page"]


class PageCredentials(NamedTuple):
    """A page's CSRF token, and the session holding the cookies it came with."""

    csrf_token: str
    session: requests.Session


class _MetaCsrf(HTMLParser):
    """Finds the content of the first ``<meta name="csrf-token">``."""

    def __init__(self) -> None:
        super().__init__()
        self.token: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "meta" or self.token is not None:
            return
        found = dict(attrs)
        if (found.get("name") or "").lower() == "csrf-token" and found.get("content"):
            self.token = found["content"]


def csrf_from_page(
    url: str, *, session: requests.Session | None = None, timeout: float = 10.0
) -> PageCredentials:
    """GET ``url`` with ``session`` (a new one by default); its token and the session.

    Raises :class:`requests.RequestException` when the page cannot be loaded (an HTTP
    error status included) and :class:`~flask_sente.errors.ConfigError` when it has no
    ``<meta name="csrf-token">``.
    """
    web = session if session is not None else requests.Session()
    response = web.get(url, timeout=timeout)
    response.raise_for_status()
    parser = _MetaCsrf()
    parser.feed(response.text)
    parser.close()
    if parser.token is None:
        raise ConfigError(
            f'{url} has no <meta name="csrf-token" content="...">; give the URL of a page '
            "that carries the channel socket's CSRF token"
        )
    return PageCredentials(parser.token, web)
