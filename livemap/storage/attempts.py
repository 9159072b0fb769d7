"""Attempt counters for guessable forms (dispatcher sign-in, order lookup): counted before they are judged.

The count and the check are one step (the increment's result is the check), so a burst of
concurrent attempts cannot all read "under the limit" before any of them is counted.
"""

from __future__ import annotations

from livemap.storage.db import Client


async def take(redis: Client, key: str, window_s: int) -> int:
    """Count one attempt under `key` and return how many this window holds, this one included.

    The window starts at the first attempt (SET NX with its expiry, then INCR, in one transaction:
    Redis 6.2 has no EXPIRE NX).
    """
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(key, 0, ex=window_s, nx=True)
        pipe.incr(key)
        _, attempts = await pipe.execute()
    return int(attempts)


async def give_back(redis: Client, key: str) -> None:
    """Uncount an attempt that turned out legitimate (a right password), so it uses none of the budget."""
    await redis.decr(key)
