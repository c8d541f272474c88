"""A Redis master, its replica and three sentinels on 127.0.0.1, each a real process.

Sentinel is tuned to be quick (``down-after-milliseconds`` 500, ``failover-timeout``
3000), so a test that kills the master sees the replica promoted within seconds.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import redis

from tests.support import free_port, wait_until

SERVICE = "mymaster"
DOWN_AFTER_MS = 500
FAILOVER_TIMEOUT_MS = 3000


class SentinelCluster:
    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not installed (.ci/run installs it with apt-get)")
        self.dir = Path(tempfile.mkdtemp(prefix="sente-sentinel-"))
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.master_port = self._server()
        self.replica_port = self._server("--replicaof", "127.0.0.1", str(self.master_port))
        self.sentinel_ports = [self._sentinel() for _ in range(3)]
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        self.url = f"redis+sentinel://{hosts}/{SERVICE}/0"
        wait_until(self._ready, timeout=20, interval=0.05)

    def _start(self, port: int, argv: list[str]) -> None:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs[port] = proc
        client = redis.Redis(port=port, socket_connect_timeout=0.5)

        def pong() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"{argv[0]} on port {port} exited: {argv}")
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_until(pong, timeout=10, interval=0.05)
        client.close()

    def _server(self, *extra: str) -> int:
        port = free_port()
        where = self.dir / str(port)
        where.mkdir()
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        self._start(port, [*argv, "--appendonly", "no", "--dir", str(where), *extra])
        return port

    def _sentinel(self) -> int:
        port = free_port()
        conf = self.dir / f"sentinel-{port}.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.master_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        self._start(port, ["redis-server", str(conf), "--sentinel"])
        return port

    def _ready(self) -> bool:
        """The replica is in sync and every sentinel knows it and the two others."""
        try:
            replica = redis.Redis(port=self.replica_port, decode_responses=True)
            if replica.info("replication").get("master_link_status") != "up":
                return False
            for port in self.sentinel_ports:
                sentinel = redis.Redis(port=port, decode_responses=True)
                if not sentinel.execute_command("SENTINEL", "REPLICAS", SERVICE):
                    return False
                if len(sentinel.execute_command("SENTINEL", "SENTINELS", SERVICE)) != 2:
                    return False
        except redis.RedisError:
            return False
        return True

    def master_address(self) -> tuple[str, int]:
        sentinel = redis.Redis(port=self.sentinel_ports[0], decode_responses=True)
        host, port = sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        return host, int(port)

    def kill_master(self) -> None:
        proc = self.procs.pop(self.master_port)
        proc.kill()
        proc.wait(10)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.kill()
        for proc in self.procs.values():
            proc.wait(10)
        self.procs.clear()
        shutil.rmtree(self.dir, ignore_errors=True)
