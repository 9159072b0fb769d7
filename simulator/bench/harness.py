"""``python -m simulator bench``: livemap's throughput, latency and memory next to a bare floor and the peers.

One run, in order, each measurement on fresh server processes with Redis reset in between:
the transport ceiling (a bare websocket that only decodes and acks), livemap's ingest (the full
hot path), fan-out latency at the peers' load and at 2,000 drivers x 10,000 customers, memory per
idle customer socket, ingest on two processes sharing one Redis; then, when available, the peers'
own bench (python-socketio, Node socket.io) and livemap driven by the peers' load generator. It
prints a table and writes ``latest.json`` and a timestamped copy.
"""

from __future__ import annotations

import asyncio
import json
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ..client import ApiError
from ..signals import on_stop_signals
from .analytics import analytics
from .machine import describe_machine
from .measure import BULK_ITEMS, Bench
from .meters import CpuMeter
from .peers import PeersError, run_peers
from .plan import DRIVER_MSGS_PER_S, BenchOptions, Plan
from .procs import ChildError
from .redisdb import BenchRedis
from .report import headline, summarize, table

#: Sockets a run may hold at once: 10,000 customers and their server side, plus headroom.
_WANT_FILES = 65536
#: Machine load (percent of one core) before the run above which it warns that figures will suffer.
_BUSY_PCT = 25


class Progress:
    """Progress lines on stderr, each stamped with the time since the run started."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, line: str) -> None:
        sys.stderr.write(f"[{time.monotonic() - self.t0:5.0f}s] {line}\n")
        sys.stderr.flush()

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.t0


async def _machine_load() -> tuple[int, int]:
    """Percent of one core the machine spends busy, and the hypervisor steals, over one second
    (before we start anything)."""
    meter = CpuMeter({})
    meter.start()
    await asyncio.sleep(1.0)
    cpu = meter.stop()
    return cpu["machine"], cpu["steal"]


def raise_file_limit() -> int:
    """Raise RLIMIT_NOFILE as far as allowed (children inherit it); the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = _WANT_FILES if hard == resource.RLIM_INFINITY else min(_WANT_FILES, hard)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return max(want, soft)


async def run_bench(options: BenchOptions) -> int:
    """Run every measurement, print the table, write the JSON; 0 when every measurement produced a figure."""
    task = asyncio.current_task()
    assert task is not None
    with on_stop_signals(task.cancel):
        try:
            return await _run(options)
        except asyncio.CancelledError:
            sys.stderr.write("bench: interrupted; everything it started has been stopped\n")
            return 130


async def _run(options: BenchOptions) -> int:
    say = Progress()
    plan = Plan.of(options)
    files = raise_file_limit()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    options.out_dir.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix=f"livemap-bench-{stamp}-"))
    say(f"scale {options.scale:g}: windows of {plan.window_s:g} s after {plan.warmup_s:g} s of warm-up; "
        f"livemap started with LIVEMAP_DRIVER_MSGS_PER_S={DRIVER_MSGS_PER_S} (default 50/s would cap the "
        f"closed loop); open-files limit {files}; logs in {work_dir / 'logs'}")  # fmt: skip
    busy, steal = await _warn_if_busy(say)
    log_dir = work_dir / "logs"
    log_dir.mkdir()
    try:
        async with BenchRedis(log_dir, options.redis_url) as db:
            say(db.describe())
            bench = Bench(options, plan, db, work_dir, say)
            results = await _measure(bench, options, plan, say)
            if options.peers_dir is not None and (not options.only or "peers" in options.only):
                try:
                    results["peers"] = await run_peers(options.peers_dir, work_dir, options.out_dir, stamp, bench)
                except (PeersError, ChildError, OSError) as exc:
                    say(f"  peers: {exc}")
                    results["peers"] = {"error": str(exc)}
            await bench.reset()
            redis_text = db.describe()
    finally:
        _tidy(work_dir)
    machine = describe_machine() | {"busy_before_pct": busy, "steal_before_pct": steal}
    document = summarize(results, options, plan, machine, redis_text, say.elapsed_s)
    text = table(document)
    print("\n" + text)
    document["table"] = text.splitlines()
    names = [f"bench-{stamp}.json"] if options.only else ["latest.json", f"bench-{stamp}.json"]
    for name in names:
        (options.out_dir / name).write_text(json.dumps(document, indent=1) + "\n")
    say(f"wrote {' and '.join(str(options.out_dir / n) for n in names)} in {say.elapsed_s:.0f} s (logs: {log_dir})")
    failed = [k for k, v in results.items() if isinstance(v, dict) and "error" in v]
    return 1 if failed else 0


async def _measure(bench: Bench, options: BenchOptions, plan: Plan, say: Progress) -> dict[str, Any]:
    """Run each step the options ask for, in order; a step that fails is recorded as its error."""
    results: dict[str, Any] = {}
    steps: list[tuple[str, str, Callable[[], Awaitable[dict[str, Any]]]]] = [
        ("bare_ingest", f"transport ceiling: bare websocket, {plan.ingest_drivers} ack-paced drivers",
         bench.bare_ingest),
        ("livemap_ingest", f"livemap ingest: {plan.ingest_drivers} ack-paced drivers, full hot path",
         bench.livemap_ingest),
        ("fanout", f"fan-out: {plan.fanout.describe()}", lambda: bench.fanout(plan.fanout, "fanout")),
        ("fanout_large", f"fan-out, large: {plan.fanout_large.describe()}",
         lambda: bench.fanout(plan.fanout_large, "fanout-large")),
        ("idle", f"memory: {plan.idle} idle customer sockets after {plan.idle_warm} warm ones", bench.idle),
        ("scaleout", f"scale-out: ingest on 2 livemap processes, one Redis, {plan.ingest_drivers} drivers",
         lambda: bench.livemap_ingest(2)),
        ("bulk", f"bulk set-up: {BULK_ITEMS} drivers and {BULK_ITEMS} orders in one call each, next to"
         f" {BULK_ITEMS} single order creates", bench.bulk),
        ("analytics", "analytics: a year of a store's orders read back; a tracking page view's cost next to a ping's",
         lambda: analytics(bench)),
    ]  # fmt: skip
    for key, what, step in steps:
        if options.only and key not in options.only:
            continue
        say(what)
        results[key] = await _attempt(step, say)
        say("  " + headline(key, results[key]))
    return results


async def _warn_if_busy(say: Progress) -> tuple[int, int]:
    """The machine's load before the bench (busy %, steal % of one core), with a warning when either is high."""
    busy, steal = await _machine_load()
    if busy > _BUSY_PCT:
        say(f"WARNING: the machine is already busy ({busy}% of one core before the bench started): other jobs "
            "will lower the figures (each measurement's cpu_pct.others says how much they took)")  # fmt: skip
    if steal > _BUSY_PCT:
        say(f"WARNING: the hypervisor is already taking {steal}% of one core from this machine: its other guests "
            "will lower the figures (each measurement's cpu_pct.steal says how much they took)")  # fmt: skip
    return busy, steal


def _tidy(work_dir: Path) -> None:
    """Remove the run's data dirs, specs and peers' copy; keep the logs."""
    for path in work_dir.iterdir():
        if path.is_dir() and path.name != "logs":
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file():
            path.unlink()


async def _attempt(step: Callable[[], Awaitable[dict[str, Any]]], say: Progress) -> dict[str, Any]:
    """One measurement; a failure is recorded and the run goes on (Ctrl-C is not a failure)."""
    t = time.monotonic()
    try:
        result = await step()
    except (ChildError, ApiError, OSError, TimeoutError) as exc:
        say(f"  failed: {type(exc).__name__}: {exc}")
        return {"error": f"{type(exc).__name__}: {exc}"}
    say(f"  measured in {time.monotonic() - t:.0f} s")
    return result
