"""Pipelining of concurrent script calls: the pings that arrive in one turn of the event loop
share one Redis round trip (one write, one read) instead of taking one each.

Each call still runs its own script, so atomicity and per-call results are unchanged; only the
trips are shared. A driver socket has at most one call in flight (it waits for its ack), so a
batch never reorders one driver's fixes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError
from redis.typing import EncodableT, KeyT

_Call = tuple[AsyncScript, Sequence[KeyT], Sequence[EncodableT], "asyncio.Future[Any]"]


class ScriptBatcher:
    """`await batcher.call(script, keys, args)` is `await script(keys=keys, args=args)`, batched."""

    def __init__(self, client: aioredis.Redis, max_batch: int = 256) -> None:
        self._client = client
        self._max_batch = max_batch
        self._pending: list[_Call] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def call(self, script: AsyncScript, keys: Sequence[KeyT], args: Sequence[EncodableT]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((script, keys, args, future))
        if len(self._pending) == 1:
            # Flush once the loop has run every callback that is ready now: the other sockets'
            # messages that arrived in the same turn join this batch.
            loop.call_soon(self._flush)
        elif len(self._pending) >= self._max_batch:
            self._flush()
        return await future

    async def aclose(self) -> None:
        """Wait for the batches in flight (their callers are waiting for the answers)."""
        self._flush()
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.create_task(self._send(batch), name="livemap-script-batch")
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[_Call]) -> None:
        try:
            results = await self._execute(batch)
        except Exception as exc:  # the connection failed: every caller in the batch gets the error
            results = [exc] * len(batch)
        for (*_, future), result in zip(batch, results, strict=True):
            if future.done():  # the caller went away (its socket closed) while Redis worked
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _execute(self, batch: list[_Call]) -> list[Any]:
        # EVALSHA by hand: redis-py's pipelined scripts cost a SCRIPT EXISTS round trip per execute.
        async with self._client.pipeline(transaction=False) as pipe:
            for script, keys, args, _ in batch:
                pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
            results: list[Any] = await pipe.execute(raise_on_error=False)
        for i, result in enumerate(results):
            if isinstance(result, NoScriptError):  # Redis restarted or its scripts were flushed
                script, keys, args, _ = batch[i]
                try:
                    results[i] = await script(keys=keys, args=args)  # loads the script, then runs it
                except Exception as exc:
                    results[i] = exc
        return results
