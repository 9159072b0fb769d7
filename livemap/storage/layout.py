"""The key layout's version, checked at start, and `livemap migrate`, which upgrades an older one in place.

Layout 1 (livemap before Redis Cluster support) kept a store's keys under `P:store:SID...`, every
driver's last fix time in one global `P:lastfix` and the outbox under `P:outbox...`; layout 2 (now)
tags a store's keys `P:{s:SID}...` (one Cluster slot), keeps `P:stores` and a `lastfix` per store,
and the outbox under `P:{outbox}`. Credentials, drivers' and orders' keys are the same in both.
`P:layout` holds the version; a server refuses to start on an older layout, and on a newer one.

Migrating copies each key to its new name (DUMP/RESTORE: names in different Cluster slots cannot be
RENAMEd), then deletes the old one, so an interrupted migration runs again from where it stopped.
Geo cells are not moved (the next fix of each driver puts it back), nor undelivered layout-1
notifications (their entries lack the tokens the worker now checks): both are counted and said.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import cast

from livemap.domain.records import text
from livemap.storage.db import Client
from livemap.storage.keys import Keys

log = logging.getLogger("livemap.storage")

VERSION = 2


class LayoutMismatch(RuntimeError):
    """Redis holds another key layout than this livemap's; the message says what to do."""


async def check(client: Client, keys: Keys) -> None:
    """At start: mark an empty or current Redis as layout 2; refuse an older or newer one."""
    found = await client.get(keys.layout())
    if found is None:
        if await _has_layout_1(client, keys):
            raise LayoutMismatch(
                f"Redis holds livemap's key layout 1 under prefix {keys.prefix!r}: run `livemap migrate` (with the"
                " same LIVEMAP_REDIS_URL and LIVEMAP_KEY_PREFIX) to upgrade it in place, then start again"
            )
        await client.set(keys.layout(), VERSION, nx=True)
    elif int(found) > VERSION:
        raise LayoutMismatch(
            f"Redis holds key layout {int(found)}, newer than this livemap's {VERSION}: upgrade livemap"
        )


async def _has_layout_1(client: Client, keys: Keys) -> bool:
    # Layout 1's global keys (one each: on a Cluster they live in different slots) tell at once;
    # else its store keys, found by a scan (a fresh or small Redis: quick).
    for old in (f"{keys.prefix}:lastfix", f"{keys.prefix}:outbox"):
        if await client.exists(old):
            return True
    async for _ in client.scan_iter(match=f"{keys.prefix}:store:*", count=1000):
        return True
    return False


async def migrate(client: Client, keys: Keys) -> Counter[str] | None:
    """Upgrade layout 1 to 2 in place; what was done, counted, or None when the Redis is current already
    (left as it is: migrating again is harmless)."""
    found = await client.get(keys.layout())
    if found is not None and int(found) >= VERSION:
        return None
    done: Counter[str] = Counter()
    p = keys.prefix
    async for raw in client.scan_iter(match=f"{p}:store:*", count=1000):
        old = text(raw)
        sid, _, rest = old.removeprefix(f"{p}:store:").partition(":")
        if ":lock:" in rest:  # a lock held by a layout-1 process: nothing holds it any more
            await client.delete(old)
            continue
        await _move(client, old, keys.store(sid) + (f":{rest}" if rest else ""))
        await client.sadd(keys.stores(), sid)
        done["store keys"] += 1
    lastfix = f"{p}:lastfix"
    for member, score in cast(list[tuple[bytes, float]], await client.zrange(lastfix, 0, -1, withscores=True)):
        sid, _, did = text(member).partition("\x1f")
        await client.zadd(keys.store_lastfix(sid), {did: score})
        done["drivers' last fix times"] += 1
    await client.delete(lastfix)
    async for raw in client.scan_iter(match=f"{p}:geo:*", count=1000):
        if "{g:" not in text(raw):
            await client.delete(raw)
            done["geo cells dropped (refilled by the next fixes)"] += 1
    if await client.exists(f"{p}:outbox:dead"):
        await _move(client, f"{p}:outbox:dead", keys.outbox_dead())
        done["dead-letter stream kept"] += 1
    dropped = int(await client.xlen(f"{p}:outbox")) + int(await client.zcard(f"{p}:outbox:delayed"))
    if dropped:
        done["undelivered layout-1 notifications dropped"] += dropped
    for old_key in (f"{p}:outbox", f"{p}:outbox:delayed"):
        await client.delete(old_key)
    await client.set(keys.layout(), VERSION)
    return done


async def _move(client: Client, old: str, new: str) -> None:
    """Copy `old` to `new` (its TTL too) and delete `old`; a `new` already there (a rerun) is kept."""
    dumped = await client.dump(old)
    if dumped is not None and not await client.exists(new):
        ttl = await client.pttl(old)
        await client.restore(new, max(int(ttl), 0), dumped)
    await client.delete(old)
