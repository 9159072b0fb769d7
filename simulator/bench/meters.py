"""CPU and memory of processes, read from /proc (as the peers' harness reads them)."""

from __future__ import annotations

import os
import time

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process `pid` has used so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise ValueError(f"no VmRSS for pid {pid}")


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy (not idle, not waiting on I/O) since boot."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:8]]  # user nice system idle iowait irq softirq
    return (sum(ticks) - ticks[3] - ticks[4]) / _TICK


class CpuMeter:
    """Percent of one core used by each named group of pids between `start()` and `stop()`.

    Also ``machine`` (every core, whoever used it) and ``others``: what the rest of the machine
    took meanwhile. On a shared box another job's load shows there instead of silently lowering
    the figures.
    """

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self._t0 = 0.0
        self._c0: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        return {name: sum(cpu_seconds(p) for p in pids) for name, pids in self.groups.items()} | {
            "machine": machine_busy_seconds()
        }

    def start(self) -> None:
        self._t0, self._c0 = time.monotonic(), self._now()

    def stop(self) -> dict[str, int]:
        dt = time.monotonic() - self._t0
        c1 = self._now()
        out = {name: round(100 * (c1[name] - self._c0[name]) / dt) for name in c1}
        out["others"] = max(0, out["machine"] - sum(out[name] for name in self.groups))
        return out
