"""docs/migrating-from-sente.md says only what is true: every name it gives exists, every
option of Sente's server is accepted, and the defaults are the ones it states. What the
rows promise about behaviour is tested where that behaviour lives (the row's page says where).
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest

import flask_sente
from flask_sente import EventMsg, RequestSnapshot, Sente
from flask_sente.client import Client, ClientState
from flask_sente.config import Options
from tests.support import PROTOCOL_DIR, ROOT

GUIDE = (ROOT / "docs" / "migrating-from-sente.md").read_text(encoding="utf-8")
#: The guide's inline code spans (the fenced examples are Clojure and a short app).
SPANS = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", GUIDE, flags=re.DOTALL))

#: What the guide's code spans call things: ``sente.x`` is the extension, and so on.
OWNERS: dict[str, Any] = {
    "sente": Sente,
    "msg": EventMsg,
    "req": RequestSnapshot,
    "client": Client,
    "state": ClientState,
}


def resolve(dotted: str) -> Any:
    """``flask_sente.protocol.X``: import the longest module prefix, then get attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


def test_every_flask_sente_name_in_the_guide_exists() -> None:
    names = {m for span in SPANS for m in re.findall(r"\bflask_sente(?:\.\w+)+", span)}
    assert len(names) > 10
    missing = []
    for name in sorted(names):
        try:
            resolve(name)
        except (ImportError, AttributeError):
            missing.append(name)
    assert missing == []


@pytest.mark.parametrize("owner", sorted(OWNERS))
def test_every_attribute_the_guide_uses_exists(owner: str) -> None:
    attributes = {
        m
        for span in SPANS
        if span != "sente.js"  # the browser client's file
        for m in re.findall(rf"(?<![\w.]){owner}\.(\w+)", span)
    }
    assert attributes, f"the guide uses no {owner}.x"
    missing = sorted(a for a in attributes if not hasattr(OWNERS[owner], a))
    assert missing == []


def sente_server_options() -> list[str]:
    """The option names of ``make-channel-socket-server!`` in Sente's API text."""
    api = (PROTOCOL_DIR / "sente-api.txt").read_text(encoding="utf-8")
    keys = re.search(r"\{:keys \[(recv-buf-or-n[^\]]*)\]", api)
    assert keys is not None
    return keys.group(1).split()


def python_name(sente_option: str) -> str:
    """The guide's rule: snake_case, no ``?``; ``?unauthorized-fn`` is ``maybe_...``."""
    if sente_option.startswith("?"):
        sente_option = "maybe-" + sente_option[1:]
    return sente_option.replace("?", "").replace("-", "_")


def test_every_option_of_sentes_server_is_accepted_under_the_guides_name() -> None:
    options = sente_server_options()
    assert "?unauthorized-fn" in options and "authorized?-fn" in options
    fields = set(Options.__dataclass_fields__)
    assert [o for o in options if python_name(o) not in fields] == []


def test_the_defaults_are_the_ones_the_guide_states() -> None:
    options = Options.resolve({}, {})
    assert options.packer.name == "json"  # the one default that differs on purpose
    assert (options.ws_kalive_ms, options.ws_kalive_s) == (25000, 12.5)
    assert options.ws_ping_timeout_ms == 10000
    assert options.lp_timeout_ms == 20000
    assert (options.send_buf_ms_ws, options.send_buf_ms_ajax) == (30, 100)
    assert options.ms_allow_reconnect_before_close_ws == 2500
    assert options.ms_allow_reconnect_before_close_ajax == 5000
    assert options.recv_buf_or_n == 1000
    assert options.allowed_origins == "all"
    assert options.authorized_fn is None and options.maybe_unauthorized_fn is None
    assert options.reject_fn is None
    snapshot = RequestSnapshot("GET", "/chsk", {}, {}, {}, None, {}, "c")
    assert options.bad_csrf_fn(snapshot) == ("Bad CSRF token", 403)
    assert options.bad_origin_fn(snapshot) == ("Unauthorized origin", 403)
    assert options.unauthorized_fn(snapshot) == ("Unauthorized request", 401)
    assert options.handshake_data_fn(snapshot) is None
    assert options.csrf_token_fn(snapshot) is None  # no token in the session: the check fails
    assert options.user_id_fn(RequestSnapshot("GET", "/", {}, {}, {}, None, {"uid": 7}, "c")) == 7
    assert options.write_legacy_pack_format is None
    assert flask_sente.sente_version == (1, 22, 0)
