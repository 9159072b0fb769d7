"""What the ETA benchmark prints and saves besides its report: progress, the worst deliveries, every sample."""

from __future__ import annotations

import csv
import time
from pathlib import Path

from .accuracy import VARIANTS, Sample, by_delivery
from .etalanes import Counters, Seen
from .scenario import Scenario
from .stats import Stats


def progress(stats: Stats, counters: Counters, total: int, started: float) -> str:
    """One progress line: deliveries done (in every variant), fixes, ETA events, trouble if any."""
    errors = stats.fixes_rejected + stats.reply_timeouts + stats.api_errors
    elapsed = int(time.monotonic() - started)
    return (
        f"[{elapsed // 60:02d}:{elapsed % 60:02d}] deliveries {stats.deliveries}/{total},"
        f" pings {stats.fixes_sent} (acked {stats.fixes_acked}), ETA events {counters.location_events},"
        f" errors {errors}"
        + (f", resent after rate limit {stats.fixes_deferred}" if stats.fixes_deferred else "")
        + (f", socket drops {counters.socket_drops}" if counters.socket_drops else "")
        + (f", waits timed out {counters.stage_waits_timed_out}" if counters.stage_waits_timed_out else "")
    )


def worst(scenario: Scenario, samples: list[Sample], seen: dict[str, list[Seen]], count: int = 5) -> str:
    """The deliveries with the largest single errors of one variant, with what might explain them."""
    groups = by_delivery(samples)
    by_number = {d.number: d for d in scenario.deliveries}
    missing = [d.number for d in scenario.deliveries if d.number not in groups]
    ranked = sorted(groups.items(), key=lambda kv: max(s.error_s for s in kv[1]), reverse=True)[:count]
    lines = [f"\nlargest {VARIANTS[0]} errors ({len(groups)} deliveries scored):"]
    for number, group in ranked:
        d = by_number[number]
        top = max(group, key=lambda s: s.error_s)
        events = {ev.ts: ev for ev in seen.get(number, [])}
        ev = events.get(top.ts)
        truth_left_m = d.trip.state_at(top.ts).remaining_m
        lines.append(
            f"  order {number} ({d.kind}, {d.path.length_m / 1000:.1f} km, {'off' if d.detoured else 'on'} the"
            f" navigation app's path, {len(d.trip.street.jams)} jam stretches on it, trip"
            f" {d.trip.duration_s / 60:.1f} min): median error {_median(group):.0f} s, worst {top.error_s:.0f} s"
            f" with {top.remaining_s / 60:.1f} min truly left: livemap said {(top.eta_ms - top.ts) / 60_000:.1f} min"
            + (f" / {ev.remaining_m} m" if ev is not None and ev.remaining_m is not None else "")
            + f" (truth {truth_left_m:.0f} m), baseline {(top.baseline_ms - top.ts) / 60_000:.1f} min"
        )
    if missing:
        lines.append(f"  no scored location events at all for {len(missing)} deliveries: {', '.join(missing[:10])}")
    return "\n".join(lines)


def _median(group: list[Sample]) -> float:
    errors = sorted(s.error_s for s in group)
    mid = len(errors) // 2
    return errors[mid] if len(errors) % 2 else (errors[mid - 1] + errors[mid]) / 2


def write_samples(path: Path, scenario: Scenario, samples: dict[str, list[Sample]]) -> None:
    """Every scored moment as a CSV row: the truth, each variant's and the baseline's time left (s)."""
    by_number = {d.number: d for d in scenario.deliveries}
    names = list(samples)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            ["order", "kind", "detoured", "ts", "truth_left_s", *(f"{n}_left_s" for n in names), "baseline_left_s"]
        )
        for row in zip(*(samples[n] for n in names), strict=True):
            s = row[0]
            d = by_number[s.delivery]
            etas = [round((v.eta_ms - v.ts) / 1000, 1) for v in row]
            w.writerow(
                [s.delivery, d.kind, int(d.detoured), s.ts, round(s.remaining_s, 1), *etas,
                 round((s.baseline_ms - s.ts) / 1000, 1)]
            )  # fmt: skip
