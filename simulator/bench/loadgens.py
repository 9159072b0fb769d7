"""The harness's side of the load generators: start them, line them up on one window, meter it.

Every process connects its sockets first and says `Ready`; only then does the harness give all
of them the same `Run` window on the wall clock, so their counts add up over the same seconds,
and it meters CPU (servers, Redis, load generators) over exactly that window.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from .meters import CpuMeter
from .procs import Child, ChildError
from .protocol import Command, LoadSpec, Ready, Report, Run

R = TypeVar("R", bound=Report)

_reports = msgspec.json.Decoder(Report)
_encode = msgspec.json.Encoder().encode
#: Longest wait for a load generator to connect its sockets (10,000 handshakes on a busy server).
CONNECT_TIMEOUT_S = 300.0


class Loadgen:
    """One ``python -m simulator.bench.loadgen`` process."""

    def __init__(self, child: Child) -> None:
        self.child = child

    async def send(self, command: Command) -> None:
        stdin = self.child.proc.stdin
        assert stdin is not None
        stdin.write(_encode(command) + b"\n")
        await stdin.drain()

    async def receive(self, kind: type[R], timeout_s: float) -> R:
        stdout = self.child.proc.stdout
        assert stdout is not None
        line = await asyncio.wait_for(stdout.readline(), timeout_s)
        if not line:
            code = await self.child.proc.wait()
            raise ChildError(f"{self.child.name} exited with status {code}: see {self.child.log_path}")
        report = _reports.decode(line)
        if not isinstance(report, kind):
            raise ChildError(f"{self.child.name} said {type(report).__name__}, expected {kind.__name__}")
        return report


@contextlib.asynccontextmanager
async def started(specs: Sequence[LoadSpec], work_dir: Path, log_dir: Path, name: str) -> AsyncIterator[list[Loadgen]]:
    """Start one load generator per spec; all are stopped on the way out."""
    async with contextlib.AsyncExitStack() as stack:
        gens = []
        for i, spec in enumerate(specs):
            path = work_dir / f"{name}-{i}.json"
            path.write_bytes(msgspec.json.encode(spec))
            argv = [sys.executable, "-m", "simulator.bench.loadgen", str(path)]
            child, _ = await Child.start(f"loadgen-{name}-{i}", argv, log_dir, pipes=True)
            child.stop_timeout_s = 5.0
            gens.append(Loadgen(await stack.enter_async_context(child)))
        yield gens


@dataclass(frozen=True)
class Window:
    warmup_s: float
    window_s: float
    drain_s: float


async def run_window(
    gens: Sequence[Loadgen],
    result: type[R],
    window: Window,
    meter_pids: dict[str, list[int]],
    say: Callable[[str], None],
) -> tuple[list[Ready], list[R], dict[str, int]]:
    """Wait for every load generator's `Ready`, run one window, return readies, results and CPU%."""
    t = time.monotonic()
    readies = await asyncio.gather(*(g.receive(Ready, CONNECT_TIMEOUT_S) for g in gens))
    say(f"  {sum(r.connected for r in readies):,} sockets connected in {time.monotonic() - t:.1f} s; measuring")
    start = time.time() + 0.5
    run = Run(start=start, t0=start + window.warmup_s, t1=start + window.warmup_s + window.window_s)
    for g in gens:
        await g.send(run)
    meter = CpuMeter(meter_pids | {"loadgen": [g.child.pid for g in gens]})
    await asyncio.sleep(max(0.0, run.t0 - time.time()))
    meter.start()
    await asyncio.sleep(max(0.0, run.t1 - time.time()))
    cpu = meter.stop()
    timeout = window.drain_s + 60.0
    results = await asyncio.gather(*(g.receive(result, timeout) for g in gens))
    return list(readies), list(results), cpu


def loadgen_errors(gens: Sequence[Loadgen]) -> dict[str, Any]:
    """Error lines the load generators logged (an exception in a socket callback loses its counts)."""
    lines = [line for g in gens for line in g.child.errors()]
    return {"loadgen_errors": len(lines), "loadgen_error_lines": lines[:3]} if lines else {}
