"""Configuration errors say what is wrong: the option, the value and the type expected."""

from __future__ import annotations

import dataclasses
import logging
import re

import pytest
from flask import Flask

from flask_sente import ConfigError, Sente
from flask_sente.client import Client
from flask_sente.config import Options, config_key
from flask_sente.packers import GzipPacker
from flask_sente.typecheck import accepts, describe

OPTIONS = [f.name for f in dataclasses.fields(Options)]


class Wrong:
    """A value of no option's type."""

    def __repr__(self) -> str:
        return "<wrong>"


def test_the_issues_example() -> None:
    with pytest.raises(ConfigError) as caught:
        Sente(Flask(__name__), lp_timeout_ms="abc")
    assert str(caught.value) == "lp_timeout_ms must be an int: got 'abc' (str)"


@pytest.mark.parametrize("name", OPTIONS)
def test_every_option_is_type_checked_by_keyword(name: str) -> None:
    with pytest.raises(ConfigError, match=rf"\b{name}\b.*<wrong>"):
        Sente(**{name: Wrong()})


@pytest.mark.parametrize("name", OPTIONS)
def test_every_option_is_type_checked_by_config_key(name: str) -> None:
    app = Flask(__name__)
    app.config[config_key(name)] = Wrong()
    expected = config_key(name) if name != "packer" else "packer"
    with pytest.raises(ConfigError, match=rf"\b{expected}\b.*<wrong>"):
        Sente(app)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"handler_workers": True}, "handler_workers must be an int: got True (bool)"),
        ({"ws_kalive_ms": 2.5}, "ws_kalive_ms must be an int or None: got 2.5 (float)"),
        ({"simulated_bad_conn_rate": "x"}, "simulated_bad_conn_rate must be a number"),
        ({"allowed_origins": ["https://a", 3]}, "allowed_origins must be a str or a set of str"),
        ({"user_id_fn": "uid"}, "user_id_fn must be a callable: got 'uid' (str)"),
        ({"message_queue": 6379}, "message_queue must be a str or None: got 6379 (int)"),
        ({"packer": "msgpack", "write_legacy_pack_format": True}, "needs a text packer"),
    ],
)
def test_messages_name_option_value_and_type(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Sente(**options)


def test_values_of_the_right_type_pass() -> None:
    Sente(
        allowed_origins=["https://a.example", "https://b.example"],
        simulated_bad_conn_rate=0,
        ws_kalive_ms=None,
        max_held_requests=10,
        user_id_fn=lambda req: "u",
    )


def test_an_unknown_keyword_is_refused_with_the_nearest_option() -> None:
    with pytest.raises(ConfigError, match=r"'lp_timout_ms' \(did you mean 'lp_timeout_ms'\?\)"):
        Sente(lp_timout_ms=100)


def test_an_unknown_sente_key_logs_the_nearest_known_key(caplog: pytest.LogCaptureFixture) -> None:
    app = Flask(__name__)
    app.config.update(SENTE_PAKCER="edn", SENTE_SOMETHING_ELSE=1, SECRET_KEY="not ours")
    with caplog.at_level(logging.WARNING, logger="flask_sente.config"):
        sente = Sente(app)
    warnings = [r.getMessage() for r in caplog.records if r.name == "flask_sente.config"]
    assert len(warnings) == 2, warnings
    assert "'SENTE_PAKCER'" in warnings[0] and "did you mean SENTE_PACKER?" in warnings[0]
    assert "'SENTE_SOMETHING_ELSE'" in warnings[1] and "did you mean" not in warnings[1]
    assert sente.server(app).packer.name == "json"  # the typo really was ignored
    sente.close(app)


def test_the_client_and_the_gzip_packer_check_their_options_too() -> None:
    with pytest.raises(ConfigError, match=r"ws_kalive_ms must be an int or None: got 'x'"):
        Client("http://127.0.0.1:9/chsk", ws_kalive_ms="x")
    with pytest.raises(ConfigError, match=r"params must be a mapping or None"):
        Client("http://127.0.0.1:9/chsk", params="a=1")
    with pytest.raises(ConfigError, match=r"recv_buf_or_n must be an int: got '8'"):
        Client("http://127.0.0.1:9/chsk", recv_buf_or_n="8")
    with pytest.raises(ConfigError, match=r"threshold must be an int: got '1k'"):
        GzipPacker("json", threshold="1k")


def test_type_hints_in_words() -> None:
    assert describe(int | None) == "an int or None"
    assert describe(frozenset[str]) == "a set of str"
    assert accepts(frozenset[str], ("a", "b")) and not accepts(frozenset[str], "ab")
    assert accepts(float, 1) and not accepts(float, True) and not accepts(int, False)
