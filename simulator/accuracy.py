"""Scoring ETAs against the truth: pure functions, no I/O, so every number in the report is unit-testable.

A sample is one location event of a live delivery: the fix time ``ts``, the ETA livemap
published with it, and the simulator's exact arrival time of that trip. Next to livemap's ETA
stands a naive baseline, the straight line from the fix to the door at a car's average speed,
so a reader can tell a good ETA from a lucky one. Errors are grouped by the *true* remaining
time, because what counts as a good ETA 40 minutes out differs from what counts 2 minutes out.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .geo import LatLon, haversine_m

#: The baseline's speed: a car's average in town, stops included (livemap's own prior for a car).
BASELINE_MPS = 7.0
#: An ETA that moves by more than this between two consecutive pings has jumped.
JUMP_MS = 120_000
#: Buckets by true remaining time, longest first, then every sample.
BUCKETS = ("gt30", "10to30", "3to10", "lt3")
ALL = "all"


@dataclass(frozen=True, slots=True)
class Sample:
    """One scored ETA: ``delivery`` names the order; all times are epoch ms of simulated time."""

    delivery: str
    ts: int
    truth_ms: int
    eta_ms: int
    baseline_ms: int
    #: The floor's ETA (:mod:`.floor`) where it was computed (a subsample: it is costly), else None.
    floor_ms: int | None = None

    @property
    def remaining_s(self) -> float:
        """True seconds left at ``ts``."""
        return (self.truth_ms - self.ts) / 1000.0

    @property
    def error_s(self) -> float:
        """livemap's absolute error, seconds."""
        return abs(self.eta_ms - self.truth_ms) / 1000.0

    @property
    def baseline_error_s(self) -> float:
        return abs(self.baseline_ms - self.truth_ms) / 1000.0

    @property
    def floor_error_s(self) -> float | None:
        return None if self.floor_ms is None else abs(self.floor_ms - self.truth_ms) / 1000.0


def baseline_eta_ms(ts: int, position: LatLon, destination: LatLon, mps: float = BASELINE_MPS) -> int:
    """The naive ETA: fix time plus the straight-line distance to the door at ``mps``."""
    return ts + round(haversine_m(position, destination) / mps * 1000.0)


def make_sample(
    delivery: str, ts: int, eta_ms: int, position: LatLon, destination: LatLon, truth_ms: int
) -> Sample | None:
    """Score one location event; None once the driver has truly arrived (nothing left to predict)."""
    if truth_ms - ts <= 0:
        return None
    return Sample(delivery, ts, truth_ms, eta_ms, baseline_eta_ms(ts, position, destination))


def bucket_of(remaining_s: float) -> str:
    """The bucket of a true remaining time: > 30 min, 10-30, 3-10, < 3 min."""
    if remaining_s > 1800.0:
        return "gt30"
    if remaining_s > 600.0:
        return "10to30"
    if remaining_s >= 180.0:
        return "3to10"
    return "lt3"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between order statistics (numpy's default)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def error_stats(errors: Sequence[float]) -> dict[str, float | None]:
    """Mean, median and 90th percentile of absolute errors (seconds, to 0.1); None for an empty set."""
    if not errors:
        return {"mae_s": None, "median_s": None, "p90_s": None}
    return {
        "mae_s": round(statistics.fmean(errors), 1),
        "median_s": round(statistics.median(errors), 1),
        "p90_s": round(percentile(errors, 90.0), 1),
    }


def by_delivery(samples: Iterable[Sample]) -> dict[str, list[Sample]]:
    """Samples grouped per delivery, each group in fix-time order."""
    groups: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        groups[s.delivery].append(s)
    return {k: sorted(v, key=lambda s: s.ts) for k, v in groups.items()}


def jump_pct(series: Iterable[Sequence[int]], threshold_ms: int = JUMP_MS) -> float:
    """Share (%) of consecutive pairs, within each series of ETAs, that differ by more than ``threshold_ms``."""
    pairs = jumps = 0
    for etas in series:
        for a, b in itertools.pairwise(etas):
            pairs += 1
            jumps += abs(b - a) > threshold_ms
    return round(100.0 * jumps / pairs, 1) if pairs else 0.0


def summarize(
    samples: Sequence[Sample], *, deliveries: int, seed: int, speedup: float, interval_s: float
) -> dict[str, Any]:
    """The benchmark's JSON report (see ``python -m simulator eta-accuracy --help``)."""
    groups: dict[str, list[Sample]] = {b: [] for b in (*BUCKETS, ALL)}
    for s in samples:
        groups[bucket_of(s.remaining_s)].append(s)
        groups[ALL].append(s)
    buckets = {
        name: {
            "n": len(group),
            "livemap": error_stats([s.error_s for s in group]),
            "baseline": error_stats([s.baseline_error_s for s in group]),
            **_floor_stats(group),
        }
        for name, group in groups.items()
    }
    series = list(by_delivery(samples).values())
    return {
        "deliveries": deliveries,
        "seed": seed,
        "baseline_mps": BASELINE_MPS,
        "speedup": speedup,
        "interval_s": interval_s,
        "buckets": buckets,
        "jumps_over_2min_pct": {
            "livemap": jump_pct([[s.eta_ms for s in group] for group in series]),
            "baseline": jump_pct([[s.baseline_ms for s in group] for group in series]),
        },
    }


def _floor_stats(group: Sequence[Sample]) -> dict[str, Any]:
    """The floor's errors and, on the very same samples, livemap's: the two compare like for like."""
    scored = [s for s in group if s.floor_ms is not None]
    if not scored:
        return {}
    return {
        "floor": {
            "n": len(scored),
            **error_stats([s.floor_error_s for s in scored if s.floor_error_s is not None]),
            "livemap_median_s": error_stats([s.error_s for s in scored])["median_s"],
        }
    }


def format_table(report: dict[str, Any]) -> str:
    """The report as a console table: per bucket, livemap's, the baseline's and the floor's errors in seconds."""
    floor = any("floor" in b for b in report["buckets"].values())
    head = (
        f"{'bucket':<8} {'n':>7} | {'livemap MAE':>11} {'median':>8} {'p90':>8} |"
        f" {'baseline MAE':>12} {'median':>8} {'p90':>8} | {'median ratio':>12}"
        + (f" | {'floor median':>12} {'p90':>8} {'(livemap':>9} {'n)':>6}" if floor else "")
    )
    lines = [head, "-" * len(head)]
    for name in (*BUCKETS, ALL):
        b = report["buckets"][name]
        lm, bl = b["livemap"], b["baseline"]
        ratio = (
            f"{lm['median_s'] / bl['median_s']:.2f}"
            if lm["median_s"] is not None and bl["median_s"] not in (None, 0.0)
            else "-"
        )
        lines.append(
            f"{name:<8} {b['n']:>7} | {_num(lm['mae_s']):>11} {_num(lm['median_s']):>8} {_num(lm['p90_s']):>8} |"
            f" {_num(bl['mae_s']):>12} {_num(bl['median_s']):>8} {_num(bl['p90_s']):>8} | {ratio:>12}"
            + (_floor_cells(b.get("floor")) if floor else "")
        )
    jumps = report["jumps_over_2min_pct"]
    lines.append(
        f"ETA moved > 2 min between consecutive pings: livemap {jumps['livemap']:.1f}%,"
        f" baseline {jumps['baseline']:.1f}%"
    )
    return "\n".join(lines)


def _floor_cells(f: dict[str, Any] | None) -> str:
    if f is None:
        return f" | {'-':>12} {'-':>8} {'-':>9} {'-':>6}"
    return f" | {_num(f['median_s']):>12} {_num(f['p90_s']):>8} {_num(f['livemap_median_s']):>9} {f['n']:>6}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
