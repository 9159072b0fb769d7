"""The outbox as the worker sees it: a Redis Stream read by a consumer group, plus retries and dead letters.

Entry fields. Storing a notifiable event (a stage change, `arriving`, `delayed`; a new shop order
whose tracking link goes back to the shop) first appends an entry with ``store``, ``tracking_id``,
``data`` (the event as dispatchers see it) and ``notice``, a token; then the order's script stores
the event and records the token in the order's ``notices`` set. The outbox and the order live in
different Redis Cluster slots, so this order makes a crash in between leave an entry without its
event (the worker waits for the token a little, then drops the entry: nothing happened) rather than
an event nobody is told about. On one Redis both go in one pipeline, the entry first. The entry's
stream id becomes the event's id: the idempotency key. A retry is a new entry with the same fields
plus ``event_id`` (the original id), ``channel`` (only that channel is tried) and ``attempt``
(failed tries so far); a re-check of an unconfirmed entry keeps ``notice``.

Life of an entry: a worker reads it (``XREADGROUP``), tries each channel, then in one script
(``outbox_finish.lua``) acks it and schedules what is left: a failed channel goes into the ``delayed``
sorted set, due after the backoff (a channel held by quiet hours: due when they end); one that failed
for good goes to the ``dead`` stream. Due entries are moved back into the stream atomically
(``promote``, ``outbox_promote.lua``). An entry whose worker died stays pending in the group; after
``claim_idle_ms`` another worker takes it (``XAUTOCLAIM``) and tries the channels not yet marked done.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis

from livemap.domain.clock import now_ms
from livemap.domain.records import text
from livemap.storage.db import STANDALONE, Client
from livemap.storage.keys import Keys

GROUP = "notify"
#: Dead letters kept (approximately).
DEAD_MAXLEN = 100_000
#: How long "delivered on this channel" is remembered: longer than any retry schedule.
DONE_TTL_S = 7 * 24 * 3600

_FINISH, _PROMOTE = STANDALONE["outbox_finish"], STANDALONE["outbox_promote"]


def _flat(fields: dict[str, str]) -> str:
    """`{"a": "1"}` -> `["a","1"]`: what the scripts unpack into XADD's field list."""
    return json.dumps([x for kv in sorted(fields.items()) for x in kv], separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Entry:
    """One outbox entry as read from the stream."""

    id: str
    fields: dict[str, str]

    @property
    def event_id(self) -> str:
        return self.fields.get("event_id") or self.id

    @property
    def channel(self) -> str | None:
        """The one channel a retry is for; None for an event's first pass (every channel it is configured for)."""
        return self.fields.get("channel") or None

    @property
    def attempt(self) -> int:
        """Failed tries so far (0 on the first pass)."""
        return int(self.fields.get("attempt") or 0)

    @property
    def created_at(self) -> int:
        return int(self.event_id.split("-")[0])

    @property
    def notice(self) -> str:
        """The token of the event this entry announces, while unconfirmed ('' once confirmed: retries)."""
        return self.fields.get("notice", "")

    def recheck(self) -> dict[str, str]:
        """The fields of a later entry that waits again for this entry's event to be stored."""
        return self.fields | {"event_id": self.event_id}

    def follow_up(self, channel: str, attempt: int, error: str = "") -> dict[str, str]:
        """The fields of a later entry for `channel` of the same event."""
        base = {k: self.fields.get(k, "") for k in ("store", "tracking_id", "data")}
        return base | {"event_id": self.event_id, "channel": channel, "attempt": str(attempt), "error": error}


def _entries(raw: Any) -> list[Entry]:
    out = []
    for eid, fields in raw or ():
        if eid is None:
            continue
        out.append(Entry(text(eid), {text(k): text(v) for k, v in (fields or {}).items()}))
    return out


class Outbox:
    """Redis operations of one worker (consumer `consumer` of the `notify` group)."""

    def __init__(self, client: Client, keys: Keys, consumer: str) -> None:
        self.redis, self.keys, self.consumer = client, keys, consumer

    async def ensure_group(self) -> None:
        """Create the consumer group if needed, from the stream's start: events stored before any worker ran count."""
        try:
            await self.redis.xgroup_create(self.keys.outbox(), GROUP, id="0", mkstream=True)
        except aioredis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, count: int, block_ms: int) -> list[Entry]:
        """New entries for this consumer, waiting up to `block_ms` for the first."""
        reply = await self.redis.xreadgroup(
            GROUP, self.consumer, {self.keys.outbox(): ">"}, count=count, block=max(1, block_ms)
        )
        streams = cast(list[tuple[bytes, Any]], reply or [])
        return [e for _, entries in streams for e in _entries(entries)]

    async def claim(self, min_idle_ms: int, count: int) -> list[Entry]:
        """Entries other consumers read but left unacknowledged for `min_idle_ms` (their worker died)."""
        claimed: list[Entry] = []
        start = "0-0"
        while len(claimed) < count:
            reply = await self.redis.xautoclaim(
                self.keys.outbox(), GROUP, self.consumer, min_idle_ms, start_id=start, count=count
            )
            start = text(reply[0])
            entries = _entries(reply[1])
            # An entry trimmed from the stream while pending comes back without fields: nothing to deliver.
            for gone in [e for e in entries if not e.fields]:
                await self.redis.xack(self.keys.outbox(), GROUP, gone.id)
            claimed += [e for e in entries if e.fields]
            if start == "0-0":
                break
        return claimed

    async def times_delivered(self, entry_id: str) -> int:
        """How often the group handed this entry to a consumer (read, then claimed)."""
        info = await self.redis.xpending_range(self.keys.outbox(), GROUP, min=entry_id, max=entry_id, count=1)
        return int(info[0]["times_delivered"]) if info else 0

    async def finish(self, entry: Entry, retries: list[tuple[int, dict[str, str]]], dead: list[dict[str, str]]) -> bool:
        """Ack `entry`, schedule `retries` (due ms, fields) and dead-letter `dead`; False if already acked."""
        k = self.keys
        args: list[str | int] = [GROUP, entry.id, DEAD_MAXLEN, len(retries)]
        for due, fields in retries:
            args += [due, _flat(fields)]
        args += [_flat(fields) for fields in dead]
        done = await _FINISH.call(self.redis, [k.outbox(), k.outbox_delayed(), k.outbox_dead()], args)
        return bool(done)

    async def promote(self, limit: int = 100) -> int:
        """Move retries that are due back into the stream; returns how many."""
        moved = await _PROMOTE.call(self.redis, [self.keys.outbox_delayed(), self.keys.outbox()], [now_ms(), limit])
        return int(cast(int, moved))

    async def next_due(self) -> int | None:
        """Epoch ms of the earliest scheduled retry, if any."""
        first = await self.redis.zrange(self.keys.outbox_delayed(), 0, 0, withscores=True)
        return int(first[0][1]) if first else None

    async def is_done(self, event_id: str, channel: str) -> bool:
        return bool(await self.redis.exists(self.keys.notify_done(event_id, channel)))

    async def mark_done(self, event_id: str, channel: str) -> None:
        await self.redis.set(self.keys.notify_done(event_id, channel), now_ms(), ex=DONE_TTL_S)
