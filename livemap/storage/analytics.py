"""A store's analytics in Redis: each order's moments counted into its store's day, and a period read back.

Counting happens beside the change it counts (an order created, a stage change that committed, a
rating, a page view), in one round trip to the store's slot; the day keys expire after
ANALYTICS_KEEP_DAYS, not with the orders. A period is summed by one script in that slot.
"""

from __future__ import annotations

from typing import Literal, cast

import msgspec

from livemap.domain import analytics as an
from livemap.domain.clock import now_ms
from livemap.domain.messages import MAX_FUTURE_MS
from livemap.domain.records import Order, text
from livemap.domain.responses import Feedback
from livemap.domain.stages import Stage
from livemap.storage.base import StreamEntries, json_encoder
from livemap.storage.db import STANDALONE, Pipe
from livemap.storage.stores import StoreRecords

#: Days a store's daily figures are kept: two years, so a year compares with the one before.
ANALYTICS_KEEP_DAYS = 731
_KEEP_S = ANALYTICS_KEEP_DAYS * 86_400
#: Rated comments kept per store, newest first.
COMMENTS_KEPT = 1000
_SUM = STANDALONE["analytics_sum"]
#: Fields also returned day by day (the charts' series).
SERIES = ("orders", "delivered", "promised", "on_time", "views")
Device = Literal["phone", "desktop"]


class _EtaMark(msgspec.Struct):
    """What an order event says of the ETA the customer saw (location, arriving, delayed, eta events)."""

    ts: int | None = None
    eta_at: int | None = None


class AnalyticsRecords(StoreRecords):
    """Counting a store's orders into its days, and reading a period back."""

    def _count(self, pipe: Pipe, sid: str, day: str, counts: dict[str, int]) -> None:
        key = self.keys.store_day(sid, day)
        for field, n in counts.items():
            pipe.hincrby(key, field, n)
        pipe.expire(key, _KEEP_S)

    async def count_order(self, sid: str, tz: str, at: int, identity: str) -> None:
        """A new order and its customer, on the store's day of `at`."""
        day, k = an.day_of(at, tz), self.keys
        async with self.redis.pipeline(transaction=False) as pipe:
            self._count(pipe, sid, day, {"orders": 1})
            pipe.pfadd(k.store_day_customers(sid, day), identity)
            pipe.expire(k.store_day_customers(sid, day), _KEEP_S)
            await pipe.execute()

    async def count_stage(self, order: Order, tz: str, stage: str, at: int, entered: int) -> None:
        """A committed stage change of `order` (as it was before it) at `at`; it had entered its stage at `entered`."""
        sid, errors = order["store"], dict[int, float]()
        counts = {f"{an.STAGE}{order.stage}:{an.bucket((at - entered) / 1000)}": 1}
        if stage == Stage.DELIVERED:
            counts |= {"delivered": 1, "first_attempt": int(not int(order["fails"] or 0))}
            if promised := int(order["promised_by"] or 0):
                counts |= {"promised": 1, "on_time": int(at <= promised)}
            errors = await self._eta_errors(order.tracking_id, at)
            counts |= {f"eta{m}:{an.bucket(abs(e))}": 1 for m, e in errors.items()}
        elif stage in (Stage.FAILED_ATTEMPT, Stage.RETURNED, Stage.CANCELLED):
            counts[stage] = 1
        async with self.redis.pipeline(transaction=False) as pipe:
            self._count(pipe, sid, an.day_of(at, tz), counts)
            if stage == Stage.FAILED_ATTEMPT:  # first-attempt success is read from it at delivery
                pipe.hincrby(self.keys.order(order.tracking_id), "fails", 1)
            if stage == Stage.DELIVERED and errors:  # the order's own, for the store's export
                pipe.hset(self.keys.order(order.tracking_id), mapping={f"eta_err{m}": e for m, e in errors.items()})
            await pipe.execute()

    async def _eta_errors(self, tid: str, arrived: int) -> dict[int, float]:
        """How far off (seconds, late positive) the ETA the customer saw 30, 10 and 3 minutes before `arrived` was.

        Read from the order's events by their fix time (a driver's late batch counts when its fixes were
        taken); a horizon without an ETA in the two minutes before it (a short trip) is not scored.
        """
        # Entry ids are the server's clock, at most MAX_FUTURE_MS behind the fixes they carry.
        oldest = arrived - (max(an.ETA_HORIZONS) * 60_000 + an.ETA_SCORE_WINDOW_MS + MAX_FUTURE_MS)
        entries = await self.redis.xrange(self.keys.order_events(tid), min=str(oldest), count=6000)
        marks = [msgspec.json.decode(f[b"data"], type=_EtaMark) for _, f in cast(StreamEntries, entries)]
        seen = sorted((m.ts, m.eta_at) for m in marks if m.ts is not None and m.eta_at is not None)
        errors: dict[int, float] = {}
        for minutes in an.ETA_HORIZONS:
            mark = arrived - minutes * 60_000
            shown = [eta for ts, eta in seen if mark - an.ETA_SCORE_WINDOW_MS <= ts <= mark]
            if shown:  # positive: the delivery came later than the customer was told
                errors[minutes] = round((arrived - shown[-1]) / 1000, 1)
        return errors

    async def count_rating(self, sid: str, tz: str, old: Feedback | None, new: Feedback, order_id: str) -> None:
        """A rating, on the day of the order's first one (a new rating replaces the old one there)."""
        day = an.day_of((old or new).at, tz)
        counts = {f"rating:{new.rating}": 1}
        if old:
            counts[f"rating:{old.rating}"] = counts.get(f"rating:{old.rating}", 0) - 1
        async with self.redis.pipeline(transaction=False) as pipe:
            self._count(pipe, sid, day, counts)
            if new.comment:
                note = an.Comment(order_id, new.rating, new.comment, new.at)
                pipe.zadd(self.keys.store_comments(sid), {json_encoder.encode(note): new.at})
                pipe.zremrangebyrank(self.keys.store_comments(sid), 0, -COMMENTS_KEPT - 1)
            await pipe.execute()

    async def count_view(self, sid: str, tz: str, tid: str, seconds: float, device: Device) -> None:
        """One view of an order's tracking page: its time on the page and the kind of device."""
        day, k = an.day_of(now_ms(), tz), self.keys
        counts = {"views": 1, f"views_{device}": 1, f"{an.VIEW}{an.bucket(seconds)}": 1}
        async with self.redis.pipeline(transaction=False) as pipe:
            self._count(pipe, sid, day, counts)
            pipe.pfadd(k.store_day_viewed(sid, day), tid)
            pipe.expire(k.store_day_viewed(sid, day), _KEEP_S)
            await pipe.execute()

    async def day_totals(self, sid: str, period: an.Period, tz: str) -> an.DayTotals:
        """The period's sums, distinct counts, series and its rated comments (newest first, at most 20);
        `tz`: the store's time zone, whose days the period names."""
        k, days = self.keys, period.days()
        reply = await _SUM.call(self.redis, [k.store_day(sid, d) for d in days], list(SERIES))
        flat, per_day = cast(list[bytes], reply[0]), cast(list[bytes], reply[1])
        sums = {text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
        series = {f: [int(per_day[i * len(SERIES) + j]) for i in range(len(days))] for j, f in enumerate(SERIES)}
        customers = await self.redis.pfcount(*[k.store_day_customers(sid, d) for d in days])
        viewed = await self.redis.pfcount(*[k.store_day_viewed(sid, d) for d in days])
        start, end = period.bounds_ms(tz)
        comments = await self.redis.zrevrangebyscore(k.store_comments(sid), f"({end}", start, 0, 20)
        notes = [msgspec.json.decode(c, type=an.Comment) for c in cast(list[bytes], comments)]
        return an.DayTotals(sums, customers, viewed, series, notes)
