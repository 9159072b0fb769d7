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


def machine_seconds() -> tuple[float, float]:
    """CPU seconds since boot, over all cores: busy (not idle, not waiting on I/O) and stolen (this
    virtual machine wanted to run, the hypervisor ran another guest)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks[:7]) - ticks[3] - ticks[4]) / _TICK, ticks[7] / _TICK


class CpuMeter:
    """Percent of one core used by each named group of pids between `start()` and `stop()`.

    Also ``machine`` (every core, whoever used it), ``others``: what the rest of the machine took
    meanwhile, and ``steal``: what the hypervisor gave other guests while this one wanted the CPU.
    On a shared box another job's load shows in one of them instead of silently lowering the
    figures (a cloud VM's neighbours show only as steal).
    """

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self._t0 = 0.0
        self._c0: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        busy, steal = machine_seconds()
        return {name: sum(cpu_seconds(p) for p in pids) for name, pids in self.groups.items()} | {
            "machine": busy,
            "steal": steal,
        }

    def start(self) -> None:
        self._t0, self._c0 = time.monotonic(), self._now()

    def stop(self) -> dict[str, int]:
        dt = time.monotonic() - self._t0
        c1 = self._now()
        out = {name: round(100 * (c1[name] - self._c0[name]) / dt) for name in c1}
        out["others"] = max(0, out["machine"] - sum(out[name] for name in self.groups))
        return out
