"""A real local Redis Cluster of three masters, started from the system `redis-server` binary.

Each master is its own process on a free port (and a free cluster-bus port); the slots are split
in three with CLUSTER ADDSLOTSRANGE and the nodes are introduced with CLUSTER MEET, then we wait
until every node reports `cluster_state:ok` and knows the other two.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from livemap.redisconn import die_with_parent

SLOTS = 16384
#: Sharded pub/sub (SSUBSCRIBE / SPUBLISH) and CLUSTER ADDSLOTSRANGE need Redis 7.
MIN_VERSION = (7, 0)


class ClusterUnavailable(RuntimeError):
    """No usable redis-server binary on this machine."""


def redis_server() -> str:
    """Path of the system redis-server, 7.0 or newer; raises ClusterUnavailable otherwise."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ClusterUnavailable("no redis-server on PATH (Debian: apt-get install redis-server)")
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"v=(\d+)\.(\d+)", out)
    version = (int(found[1]), int(found[2])) if found else (0, 0)
    if version < MIN_VERSION:
        raise ClusterUnavailable(f"{binary} is Redis {version[0]}.{version[1]}; the cluster tests need 7.0+")
    return binary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalCluster:
    """Three redis-server masters in `directory`, sharing the 16384 slots. Use as a context manager."""

    def __init__(self, directory: Path, masters: int = 3, timeout: float = 30.0) -> None:
        self.directory = directory
        self.masters = masters
        self.timeout = timeout
        self.ports: list[int] = []
        self._bus_ports: list[int] = []
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """What LIVEMAP_REDIS_URL takes to use this cluster (any one node is enough to find the rest)."""
        return f"redis+cluster://127.0.0.1:{self.ports[0]}/0"

    def __enter__(self) -> LocalCluster:
        binary = redis_server()
        try:
            for _ in range(self.masters):
                self._start(binary)
            self._form()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self, binary: str) -> None:
        port, bus = _free_port(), _free_port()
        node_dir = self.directory / str(port)
        node_dir.mkdir(parents=True)
        args = [
            binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--daemonize", "no",
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(node_dir / "nodes.conf"),
            "--cluster-port", str(bus),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(node_dir),
            "--logfile", str(node_dir / "redis.log"),
        ]  # fmt: skip
        self._procs.append(
            subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, preexec_fn=die_with_parent)
        )
        self.ports.append(port)
        self._bus_ports.append(bus)

    def _client(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)

    def _form(self) -> None:
        deadline = time.monotonic() + self.timeout
        clients = [self._client(p) for p in self.ports]
        try:
            for client in clients:
                self._until(deadline, lambda c=client: bool(c.ping()), "a node to answer PING")
            share = SLOTS // self.masters
            for i, client in enumerate(clients):
                last = SLOTS - 1 if i == self.masters - 1 else (i + 1) * share - 1
                client.execute_command("CLUSTER ADDSLOTSRANGE", i * share, last)
            for port, bus in zip(self.ports[1:], self._bus_ports[1:], strict=True):
                # The bus port is not the default port + 10000 here, so MEET must name it.
                clients[0].execute_command("CLUSTER MEET", "127.0.0.1", port, bus)
            for client in clients:
                self._until(deadline, lambda c=client: self._ready(c), "cluster_state:ok on every node")
        finally:
            for client in clients:
                client.close()

    def _ready(self, client: redis.Redis) -> bool:
        info = client.cluster("INFO")  # parsed by redis-py into a dict of str
        return bool(info["cluster_state"] == "ok" and int(info["cluster_known_nodes"]) == self.masters)

    def _until(self, deadline: float, check: object, what: str) -> None:
        assert callable(check)
        while True:
            try:
                if check():
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"local Redis Cluster in {self.directory}: timed out waiting for {what}")
            time.sleep(0.05)

    def keys_per_node(self, pattern: str) -> dict[int, int]:
        """How many keys matching `pattern` each master holds, by port."""
        counts = {}
        for port in self.ports:
            client = self._client(port)
            try:
                counts[port] = sum(1 for _ in client.scan_iter(match=pattern, count=1000))
            finally:
                client.close()
        return counts

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()
