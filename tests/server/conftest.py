"""The conformance app served in-process, with the json and the edn packer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server.harness import Server, running


@pytest.fixture
def server() -> Iterator[Server]:
    with running() as s:
        yield s


@pytest.fixture
def edn_server() -> Iterator[Server]:
    with running(packer="edn") as s:
        yield s
