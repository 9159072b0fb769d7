"""A store's analytics: what one day's counters hold, and how a period's sum reads.

Every figure is kept as a counter in a per-store, per-day hash (the store's own days, in its time
zone), so that it outlives the orders it counts and a year is 365 small hashes. Durations are kept as
histograms of log-spaced buckets (5% apart): a median or p90 read from them is within 2.5% of the
exact one, and they sum over days like any counter. Distinct customers and distinct orders viewed are
HyperLogLogs per day, merged over the period (0.81% standard error).
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from collections.abc import Mapping

import msgspec

#: Histogram buckets: bucket b holds durations in [GROWTH**b - 1, GROWTH**(b+1) - 1) seconds.
GROWTH = 1.05
_LOG = math.log(GROWTH)
#: The moments before arrival at which the ETA a customer saw is scored, in minutes.
ETA_HORIZONS = (30, 10, 3)
#: A horizon is scored only when the customer had an ETA at most this long before it.
ETA_SCORE_WINDOW_MS = 120_000
#: The longest period one request reads.
MAX_DAYS = 366
#: Stages' histograms are `st:<stage>:<bucket>`; the ETA's `eta<minutes>:<bucket>`; time on page `view:<bucket>`.
STAGE, VIEW = "st:", "view:"


def bucket(seconds: float) -> int:
    """The histogram bucket of a duration (negative durations count as 0)."""
    return int(math.log1p(max(0.0, seconds)) / _LOG)


def bucket_value(b: int) -> float:
    """The bucket's representative duration: its geometric middle, so a quantile is off by at most 2.5%."""
    return math.expm1((b + 0.5) * _LOG) if b > 0 else 0.0


def quantile(counts: Mapping[int, int], q: float) -> float | None:
    """The q-quantile (lower) of a histogram {bucket: count}; None when it is empty."""
    total = sum(counts.values())
    if total == 0:
        return None
    rank, seen = max(1, math.ceil(q * total)), 0
    for b in sorted(counts):
        seen += counts[b]
        if seen >= rank:
            return round(bucket_value(b), 1)
    raise AssertionError("unreachable: the ranks add up to the total")


def day_of(at_ms: int, tz: str) -> str:
    """The store's day (ISO date, in its time zone) of a moment."""
    moment = dt.datetime.fromtimestamp(at_ms / 1000, tz=dt.UTC)
    return moment.astimezone(zoneinfo.ZoneInfo(tz)).date().isoformat()


def days_between(first: dt.date, last: dt.date) -> list[str]:
    """Every day of a period, both ends included."""
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


class Period(msgspec.Struct):
    """The days asked for, checked: ISO dates, `to` not before `from`, at most MAX_DAYS."""

    first: dt.date
    last: dt.date

    @classmethod
    def parse(cls, first: str | None, last: str | None, today: dt.date) -> Period:
        """`from` and `to` of a query (default: the 30 days ending today); ValueError saying what is wrong."""
        try:
            end = dt.date.fromisoformat(last) if last else today
            start = dt.date.fromisoformat(first) if first else end - dt.timedelta(days=29)
        except ValueError:
            raise ValueError("from and to are dates: YYYY-MM-DD") from None
        if start > end:
            raise ValueError(f"from ({start}) is after to ({end})")
        if (end - start).days + 1 > MAX_DAYS:
            raise ValueError(f"a period is at most {MAX_DAYS} days; ask for the rest in another request")
        return cls(start, end)

    def days(self) -> list[str]:
        return days_between(self.first, self.last)

    def bounds_ms(self, tz: str) -> tuple[int, int]:
        """The period in epoch ms, in the store's time zone: from its first day's start to the next day after it."""
        zone = zoneinfo.ZoneInfo(tz)
        start = dt.datetime.combine(self.first, dt.time(), zone)
        end = dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time(), zone)
        return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def customer_identity(email: str | None, phone: str | None, name: str) -> str:
    """Who bought, for counting distinct customers: the email, else the phone's digits, else the name."""
    if email:
        return "e:" + email.strip().lower()
    if phone and (digits := "".join(c for c in phone if c.isdigit())):
        return "p:" + digits
    return "n:" + " ".join(name.lower().split())


class Comment(msgspec.Struct):
    """A customer's rating with a comment, as the store's latest comments list it."""

    order_id: str
    rating: int
    comment: str
    at: int


class DayTotals(msgspec.Struct):
    """A period read back: every counter and bucket summed, distinct counts, each day's series, comments."""

    sums: dict[str, int]
    customers: int
    viewed_orders: int
    series: dict[str, list[int]]
    comments: list[Comment]


class Spread(msgspec.Struct):
    """A duration's distribution over the period, in seconds (within 2.5%); null medians when n is 0."""

    n: int
    median_s: float | None
    p90_s: float | None


class StageTime(msgspec.Struct):
    stage: str
    time: Spread


class EtaTruth(msgspec.Struct):
    """How far off the ETA the customer saw `minutes_before` arrival was (absolute error)."""

    minutes_before: int
    error: Spread


class OnTime(msgspec.Struct):
    """Deliveries with a promised time (`promised_by`), and those made by it."""

    promised: int
    on_time: int
    share: float | None


class Attempts(msgspec.Struct):
    delivered: int
    first_attempt: int
    first_attempt_share: float | None
    failed_attempts: int


class Ratings(msgspec.Struct):
    count: int
    average: float | None
    #: Ratings by stars, "1" to "5".
    distribution: dict[str, int]
    #: The newest rated comments of the period (at most 20).
    latest: list[Comment]


class Returns(msgspec.Struct):
    returned: int
    #: Returned over delivered in the period.
    rate: float | None


class Views(msgspec.Struct):
    """Tracking page views, counted by the page itself (no cookie): time on page, phones vs the rest."""

    views: int
    orders_viewed: int
    per_order: float | None
    time_on_page: Spread
    phone: int
    desktop: int
    phone_share: float | None


class Daily(msgspec.Struct):
    """The period day by day, for charts."""

    days: list[str]
    orders: list[int]
    delivered: list[int]
    on_time_share: list[float | None]
    views: list[int]


class Analytics(msgspec.Struct):
    """A store's figures over a period of its own days."""

    first: str = msgspec.field(name="from")
    last: str = msgspec.field(name="to")
    tz: str = "UTC"
    orders: int = 0
    unique_customers: int = 0
    #: Orders over unique customers.
    purchase_frequency: float | None = None
    cancelled: int = 0
    on_time: OnTime | None = None
    attempts: Attempts | None = None
    stages: list[StageTime] = []
    eta_truth: list[EtaTruth] = []
    ratings: Ratings | None = None
    returns: Returns | None = None
    views: Views | None = None
    daily: Daily | None = None


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _spread(sums: Mapping[str, int], prefix: str) -> Spread:
    counts = {int(f[len(prefix) :]): n for f, n in sums.items() if f.startswith(prefix) and n}
    return Spread(sum(counts.values()), quantile(counts, 0.5), quantile(counts, 0.9))


def summarize(totals: DayTotals, period: Period, tz: str, stages: tuple[str, ...]) -> Analytics:
    """The figures a store reads, from a period's sums (`stages`: the store's stages, in pipeline order)."""
    s = totals.sums
    orders, delivered = s.get("orders", 0), s.get("delivered", 0)
    stars = {str(r): s.get(f"rating:{r}", 0) for r in range(1, 6)}
    rated = sum(stars.values())
    views, phone = s.get("views", 0), s.get("views_phone", 0)
    times = [StageTime(st, spread) for st in stages if (spread := _spread(s, f"{STAGE}{st}:")).n]
    series = totals.series
    return Analytics(
        period.first.isoformat(), period.last.isoformat(), tz, orders, totals.customers,
        round(orders / totals.customers, 3) if totals.customers else None, s.get("cancelled", 0),
        OnTime(s.get("promised", 0), s.get("on_time", 0), _share(s.get("on_time", 0), s.get("promised", 0))),
        Attempts(delivered, s.get("first_attempt", 0), _share(s.get("first_attempt", 0), delivered),
                 s.get("failed_attempt", 0)),
        times,
        [EtaTruth(m, _spread(s, f"eta{m}:")) for m in ETA_HORIZONS],
        Ratings(rated, round(sum(int(r) * n for r, n in stars.items()) / rated, 2) if rated else None, stars,
                totals.comments),
        Returns(s.get("returned", 0), _share(s.get("returned", 0), delivered)),
        Views(views, totals.viewed_orders, round(views / totals.viewed_orders, 2) if totals.viewed_orders else None,
              _spread(s, VIEW), phone, s.get("views_desktop", 0), _share(phone, views)),
        Daily(period.days(), series["orders"], series["delivered"],
              [_share(t, p) for t, p in zip(series["on_time"], series["promised"], strict=True)], series["views"]),
    )  # fmt: skip
