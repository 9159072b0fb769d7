"""Latency histograms that several load generator processes fill and the harness merges.

Bins are 0.1 ms wide and kept sparse, so hundreds of thousands of samples cross a pipe as a
few hundred numbers, and percentiles over all processes are exact to the bin.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

_BIN_S = 1e-4


class Histogram(msgspec.Struct):
    """Counts per 0.1 ms bin, plus the exact maximum."""

    bins: dict[int, int] = msgspec.field(default_factory=dict)
    max_s: float = 0.0

    def add(self, seconds: float) -> None:
        b = int(max(seconds, 0.0) / _BIN_S)
        self.bins[b] = self.bins.get(b, 0) + 1
        if seconds > self.max_s:
            self.max_s = seconds

    @property
    def count(self) -> int:
        return sum(self.bins.values())

    def quantile_ms(self, q: float) -> float | None:
        """The `q` quantile in milliseconds (bin midpoint, but never above the exact maximum), None without samples."""
        total = self.count
        if total == 0:
            return None
        rank = min(total - 1, int(q * total))  # the same rank rule as the peers' loadgen
        seen = 0
        for b in sorted(self.bins):
            seen += self.bins[b]
            if seen > rank:
                return round(min((b + 0.5) * _BIN_S, self.max_s) * 1e3, 1)
        raise AssertionError("unreachable")

    def summary(self) -> dict[str, float | int | None]:
        """``{"n", "p50_ms", "p99_ms", "max_ms"}``."""
        return {
            "n": self.count,
            "p50_ms": self.quantile_ms(0.50),
            "p99_ms": self.quantile_ms(0.99),
            "max_ms": round(self.max_s * 1e3, 1) if self.count else None,
        }


def merged(parts: Iterable[Histogram]) -> Histogram:
    out = Histogram()
    for h in parts:
        for b, n in h.bins.items():
            out.bins[b] = out.bins.get(b, 0) + n
        out.max_s = max(out.max_s, h.max_s)
    return out
