"""Helpers for the browser tests."""

from __future__ import annotations

import sys

from tests.support import ServerProcess

READY = r"listening on (http://\S+)"


class Server:
    """A server subprocess that can be killed and started again on the same port."""

    def __init__(self, script: str, *args: str) -> None:
        self.script = script
        self.args = list(args)
        self.process = self._start("0")
        self.url = self.process.url
        self.port = self.url.rsplit(":", 1)[1]

    def _start(self, port: str) -> ServerProcess:
        return ServerProcess([sys.executable, self.script, "--port", port, *self.args], ready=READY)

    def kill(self) -> None:
        self.process.kill()
        self.process.proc.wait(10)

    def restart(self) -> None:
        self.process = self._start(self.port)

    def stop(self) -> None:
        self.process.stop()
