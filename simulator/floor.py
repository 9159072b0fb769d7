"""The floor under ETA error: how close any ETA could get, knowing the present exactly but not the luck ahead.

For a subsample of the benchmark's scored events, the trip is driven again from that moment many
times (:meth:`.streetdrive.StreetTrip.futures`): same position, speed, pace and current wait,
the same shared congestion (the day's jams and rush hour are the world's, deterministic, and
met again where and when the trip gets there), fresh red lights, turns and long stops ahead. The
median of those futures is the best guess an all-seeing present allows; its error against the
real arrival is what no ETA model can beat on this scenario (it knows more than livemap ever
can: no GPS noise, the exact wait left at a red light, every jam of the day). It tells how much
of livemap's error is still to win.

The *present floor* re-drives the same futures in the congestion of that moment held for ever
(:meth:`.congestion.Congestion.frozen_at`): what an ETA could do if the fleet saw every street
right now, but no jam still to come. Between the two lies what only foresight wins.

Driving thousands of futures is pure CPU, so it runs in worker processes; each plans the
scenario itself (planning is deterministic, and trips hold generators that do not pickle).
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

from .accuracy import Sample
from .scenario import Delivery, ScenarioOptions, plan_scenario

#: Futures per scored event: the median of 16 is within a few percent of the true median.
FUTURES = 16
#: Score the floor on one event in this many (per delivery, in fix-time order).
EVERY = 20

_deliveries: dict[str, Delivery] = {}


def floor_eta_ms(d: Delivery, ts: int, futures: int = FUTURES, *, present_only: bool = False) -> int:
    """The floor's ETA for delivery ``d`` at fix time ``ts``: the median of ``futures`` re-drives."""
    left = d.trip.futures(ts, futures, seed=f"floor:{d.number}:{ts}", present_only=present_only)
    return ts + round(statistics.median(left) * 1000)


def with_floor(
    options: ScenarioOptions,
    start_ms: int,
    samples: list[Sample],
    *,
    every: int = EVERY,
    futures: int = FUTURES,
    workers: int | None = None,
) -> list[Sample]:
    """``samples`` with both floors' ETAs set on one in ``every`` of each delivery's (``every`` 0: none)."""
    if every <= 0 or not samples:
        return samples
    seen: dict[str, int] = {}
    chosen: list[int] = []
    for i, s in enumerate(samples):
        k = seen.get(s.delivery, 0)
        seen[s.delivery] = k + 1
        if k % every == 0:
            chosen.append(i)
    jobs = [(samples[i].delivery, samples[i].ts, futures) for i in chosen]
    workers = workers or os.cpu_count() or 1
    # Spawned, not forked: the caller is an event loop with threads, which a fork would copy half-way.
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, spawn, initializer=_plan, initargs=(options, start_ms)) as pool:
        etas = list(pool.map(_floor_job, jobs, chunksize=max(1, len(jobs) // (workers * 8))))
    out = list(samples)
    for i, (eta, present) in zip(chosen, etas, strict=True):
        out[i] = replace(out[i], floor_ms=eta, floor_present_ms=present)
    return out


def _plan(options: ScenarioOptions, start_ms: int) -> None:
    global _deliveries
    planned = plan_scenario(options)
    _deliveries = {d.number: d for d in planned.starting_at(start_ms).deliveries}


def _floor_job(job: tuple[str, int, int]) -> tuple[int, int]:
    number, ts, futures = job
    d = _deliveries[number]
    return floor_eta_ms(d, ts, futures), floor_eta_ms(d, ts, futures, present_only=True)
