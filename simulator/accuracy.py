"""Scoring ETAs against the truth: pure functions, no I/O, so every number in the report is unit-testable.

A sample is one location event of a live delivery: the fix time ``ts``, the ETA livemap
published with it, and the simulator's exact arrival time of that trip. Next to livemap's ETA
stands a naive baseline, the straight line from the fix to the door at a car's average speed,
so a reader can tell a good ETA from a lucky one. Errors are grouped by the *true* remaining
time, because what counts as a good ETA 40 minutes out differs from what counts 2 minutes out.
Several livemap variants are scored side by side on the very same moments (:func:`align`).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .geo import LatLon, haversine_m

#: The baseline's speed: a car's average in town, stops included (livemap's own prior for a car).
BASELINE_MPS = 7.0
#: An ETA that moves by more than this between two consecutive pings has jumped.
JUMP_MS = 120_000
#: The livemap variants a run scores side by side: router with fleet speeds, router without them, the store's route.
VARIANTS = ("livemap", "livemap_no_fleet", "livemap_store_route")
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
    #: The present floor's ETA (:mod:`.floor`: today's congestion held, no jam to come), on the same moments.
    floor_present_ms: int | None = None

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

    @property
    def floor_present_error_s(self) -> float | None:
        return None if self.floor_present_ms is None else abs(self.floor_present_ms - self.truth_ms) / 1000.0


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


def align(variants: Mapping[str, Sequence[Sample]]) -> dict[str, list[Sample]]:
    """Each variant's samples on only the moments (delivery, fix time) that every variant scored, in one order.

    The variants drive the same fixes, so they score the same moments but for the odd event one of
    them missed; keeping the common ones compares them like for like.
    """
    index = {name: {(s.delivery, s.ts): s for s in samples} for name, samples in variants.items()}
    common = sorted(set.intersection(*(set(keys) for keys in index.values()))) if index else []
    return {name: [found[key] for key in common] for name, found in index.items()}


def summarize(
    variants: Mapping[str, Sequence[Sample]],
    *,
    scenario: str,
    seed: int,
    speedup: float,
    interval_s: float,
    wall_time_s: float | None = None,
) -> dict[str, Any]:
    """The benchmark's JSON report (see ``python -m simulator eta-accuracy --help``).

    ``variants`` maps each livemap variant's name to its samples, aligned (:func:`align`): the first
    one's give the buckets (by true time left), the baseline and the floor, the same for all.
    """
    names = list(variants)
    first = variants[names[0]] if names else []
    groups: dict[str, list[int]] = {b: [] for b in (*BUCKETS, ALL)}
    for i, s in enumerate(first):
        groups[bucket_of(s.remaining_s)].append(i)
        groups[ALL].append(i)
    buckets = {
        bucket: {
            "n": len(picked),
            **{name: error_stats([variants[name][i].error_s for i in picked]) for name in names},
            "baseline": error_stats([first[i].baseline_error_s for i in picked]),
            "floor": _floor_stats(variants, picked),
        }
        for bucket, picked in groups.items()
    }
    jumps = {name: jump_pct([[s.eta_ms for s in g] for g in by_delivery(variants[name]).values()]) for name in names}
    jumps["baseline"] = jump_pct([[s.baseline_ms for s in g] for g in by_delivery(first).values()])
    return {
        "scenario": scenario,
        "deliveries": len({s.delivery for s in first}),
        "seed": seed,
        "baseline_mps": BASELINE_MPS,
        "speedup": speedup,
        "interval_s": interval_s,
        "wall_time_s": wall_time_s,
        "buckets": buckets,
        "jumps_over_2min_pct": jumps,
    }


def _floor_stats(variants: Mapping[str, Sequence[Sample]], picked: list[int]) -> dict[str, Any]:
    """The floor's errors and, on the very same moments, each variant's median: they compare like for like."""
    names = list(variants)
    first = variants[names[0]] if names else []
    scored = [i for i in picked if first[i].floor_ms is not None]
    floor_errors = [e for i in scored if (e := first[i].floor_error_s) is not None]
    present = [e for i in scored if (e := first[i].floor_present_error_s) is not None]
    return {
        "n": len(scored),
        **error_stats(floor_errors),
        **{f"{name}_median_s": error_stats([variants[name][i].error_s for i in scored])["median_s"] for name in names},
        "present": error_stats(present),
    }


#: Column titles of the console table, per variant name.
_TITLES = {"livemap": "livemap", "livemap_no_fleet": "no fleet", "livemap_store_route": "store route"}


def format_table(report: dict[str, Any]) -> str:
    """The report as a console table: per bucket, median and p90 absolute errors (s) of each variant,
    the baseline and the floor (its median and p90, the present floor's median, livemap's median on
    the floor's moments)."""
    names = [k for k in report["buckets"]["all"] if k not in ("n", "baseline", "floor")]
    columns = [*names, "baseline"]
    head = f"{'bucket':<8} {'n':>7}" + "".join(f" | {_TITLES.get(c, c)[:13]:>13} {'p90':>7}" for c in columns)
    head += f" | {'floor':>7} {'p90':>7} {'present':>8} {'(livemap':>9} {'n)':>6}"
    lines = [head, "-" * len(head)]
    for bucket in (*BUCKETS, ALL):
        b = report["buckets"][bucket]
        row = f"{bucket:<8} {b['n']:>7}"
        row += "".join(f" | {_num(b[c]['median_s']):>13} {_num(b[c]['p90_s']):>7}" for c in columns)
        f = b["floor"]
        first = f.get(f"{names[0]}_median_s") if names else None
        row += f" | {_num(f['median_s']):>7} {_num(f['p90_s']):>7} {_num(f['present']['median_s']):>8}"
        row += f" {_num(first):>9} {f['n']:>6}"
        lines.append(row)
    jumps = report["jumps_over_2min_pct"]
    lines.append(
        "median / p90 absolute error, seconds. ETA moved > 2 min between consecutive pings: "
        + ", ".join(f"{_TITLES.get(k, k)} {v:.1f}%" for k, v in jumps.items())
    )
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
