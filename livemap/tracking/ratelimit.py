"""Per-credential message rate limits, shared by every socket and HTTP request a process serves.

One bucket per driver, not per connection: a device that opens ten sockets, or posts to the tracker
endpoints, gets the same budget as one socket. Buckets live in process memory (the check costs no
Redis trip on the hot path), so N processes behind a balancer allow up to N times the rate to a
client that spreads its connections over all of them.
"""

from __future__ import annotations

import time
from collections.abc import Hashable


class TokenBucket:
    """`rate` messages a second on average, bursts up to twice that."""

    __slots__ = ("at", "capacity", "rate", "tokens")

    def __init__(self, rate: float) -> None:
        self.rate, self.capacity = rate, 2 * rate
        self.tokens, self.at = self.capacity, time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def idle(self, now: float) -> bool:
        """Refilled to capacity by `now`: forgetting it changes nothing."""
        return self.tokens + (now - self.at) * self.rate >= self.capacity


class RateLimits:
    """A token bucket per key (a driver), created on first use and forgotten once it has refilled."""

    #: Sweep refilled buckets after this many new ones, so memory follows the active credentials.
    _SWEEP_EVERY = 1024

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._buckets: dict[Hashable, TokenBucket] = {}
        self._created = 0

    def allow(self, key: Hashable) -> bool:
        """Take one message from `key`'s budget; False when it is spent."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate)
            self._created += 1
            if self._created % self._SWEEP_EVERY == 0:
                self._sweep()
        return bucket.allow()

    def _sweep(self) -> None:
        now = time.monotonic()
        self._buckets = {k: b for k, b in self._buckets.items() if not b.idle(now)}
