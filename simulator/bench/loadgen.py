"""A load generator process: ``python -m simulator.bench.loadgen SPEC.json`` (started by the harness).

It reads its `LoadSpec`, connects every socket it owns, says `Ready` on stdout and waits for the
harness's commands on stdin (see :mod:`.protocol`). One process owns a set of drivers and every
customer socket of their orders, so a delivery's latency is measured on the clock that sent it.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import msgspec

from .agents import Customer, Dispatcher, Driver, FanoutTally, IngestTally, connect_all
from .protocol import (
    Command,
    Connect,
    Connected,
    FanoutResult,
    IngestResult,
    LoadSpec,
    Ready,
    Report,
    Run,
    Stop,
)

C = TypeVar("C", Run, Connect, Stop)

_commands = msgspec.json.Decoder(Command)
_encode = msgspec.json.Encoder().encode
#: First few connection errors are passed on verbatim; the rest only counted.
_SHOWN_ERRORS = 5


def _say(report: Report) -> None:
    sys.stdout.write(_encode(report).decode() + "\n")
    sys.stdout.flush()


async def _next_command() -> Command:
    line = await asyncio.to_thread(sys.stdin.readline)
    if not line:
        raise SystemExit("the harness went away")
    return _commands.decode(line)


async def _command(kind: type[C]) -> C:
    command = await _next_command()
    if not isinstance(command, kind):
        raise SystemExit(f"expected {kind.__name__}, got {command!r}")
    return command


def _url(spec: LoadSpec, index: int) -> str:
    return spec.urls[index % len(spec.urls)]


async def _sleep_until(t: float) -> None:
    await asyncio.sleep(max(0.0, t - time.time()))


async def _ingest(spec: LoadSpec) -> None:
    opened, errors = await connect_all([Driver(d, _url(spec, d.index)).open for d in spec.drivers], spec.concurrency)
    drivers = [d for d in opened if d is not None]
    _say(Ready(len(drivers), len(errors), errors[:_SHOWN_ERRORS]))
    run = await _command(Run)
    tally = IngestTally()
    await _sleep_until(run.start)
    await asyncio.gather(*(d.ingest(run, tally) for d in drivers))
    _say(IngestResult(tally.acked, dict(tally.errors), tally.ignored, len(tally.active), tally.rtt, tally.disconnects))


async def _fanout(spec: LoadSpec) -> None:
    drivers = {d.index: Driver(d, _url(spec, d.index)) for d in spec.drivers}
    # Customer j of the whole run watches driver j % drivers_total; this process opens those of its drivers.
    customers = [
        Customer(drivers[j % spec.drivers_total].spec, _url(spec, j), drivers[j % spec.drivers_total])
        for j in range(spec.customers_total)
        if j % spec.drivers_total in drivers
    ]
    own = {d.spec.id: d for d in drivers.values()}
    desks = [Dispatcher(_url(spec, k), spec.store_key, own) for k in range(spec.dispatchers)]
    # Watchers first: a fix sent before its customers subscribed would count as lost.
    opened_c, errors = await connect_all([c.open for c in customers], spec.concurrency)
    opened_k, errors_k = await connect_all([k.open for k in desks], spec.concurrency)
    opened_d, errors_d = await connect_all([d.open for d in drivers.values()], spec.concurrency)
    errors += errors_k + errors_d
    watching = [c for c in opened_c if c is not None]
    dispatchers = [k for k in opened_k if k is not None]
    senders = [d for d in opened_d if d is not None]
    _say(Ready(len(watching) + len(dispatchers) + len(senders), len(errors), errors[:_SHOWN_ERRORS]))

    run = await _command(Run)
    tally = FanoutTally()
    rng = random.Random(spec.seed)
    phases = [rng.random() for _ in range(spec.drivers_total)]  # the same phases in every process
    for w in [*watching, *dispatchers]:
        w.arm(run, tally)
    await _sleep_until(run.start)
    await asyncio.gather(*(d.send_on_schedule(run, spec.hz, phases[d.spec.index], tally) for d in senders))
    await _sleep_until(run.t1 + spec.drain_s)  # late deliveries still count as received, not lost
    _say(_fanout_result(tally, watching, dispatchers, senders))


def _fanout_result(
    tally: FanoutTally, watching: list[Customer], dispatchers: list[Dispatcher], senders: list[Driver]
) -> FanoutResult:
    """What the run saw, from the tally and the clients' own counts."""
    owed = {c: c.driver.owed if c.driver is not None else 0 for c in watching}
    calm = [c for c in watching if not c.slow]
    closed = [w for w in [*watching, *dispatchers] if w.close_code is not None and not w.slow]
    return FanoutResult(
        sent=tally.sent,
        sent_new_seconds=sum(d.owed for d in senders),
        acked=tally.acked,
        ack_errors=dict(tally.ack_errors),
        customers=len(watching),
        expected=sum(owed.values()),
        received=sum(c.received for c in watching),
        expected_non_slow=sum(owed[c] for c in calm),
        received_non_slow=sum(c.received for c in calm),
        slow_closed=len(watching) - len(calm),
        disconnects=len(closed) + sum(d.dropped for d in senders),
        latency=tally.latency,
        ack_latency=tally.ack_latency,
        send_lag=tally.send_lag,
        dispatchers=len(dispatchers),
        dispatch_received=tally.dispatch_received,
        dispatch_latency=tally.dispatch_latency,
    )


async def _idle(spec: LoadSpec) -> None:
    def openers(count: int, offset: int) -> list[Callable[[], Awaitable[Customer]]]:
        orders = spec.drivers
        return [Customer(orders[(offset + j) % len(orders)], _url(spec, j)).open for j in range(count)]

    warm, errors = await connect_all(openers(spec.warm, 0), spec.concurrency)
    _say(Ready(sum(c is not None for c in warm), len(errors), errors[:_SHOWN_ERRORS]))
    await _command(Connect)
    measured, errors = await connect_all(openers(spec.idle, spec.warm), spec.concurrency)
    _say(Connected(sum(c is not None for c in measured), len(errors), errors[:_SHOWN_ERRORS]))
    await _command(Stop)


async def main(spec: LoadSpec) -> None:
    modes = {"ingest": _ingest, "fanout": _fanout, "idle": _idle}
    await modes[spec.mode](spec)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m simulator.bench.loadgen SPEC.json (started by the bench harness)")
    with open(sys.argv[1], "rb") as f:
        load = msgspec.json.decode(f.read(), type=LoadSpec)
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(load))
    else:
        uvloop.run(main(load))
    # Thousands of sockets would close one handshake at a time; the OS closes them at once.
    os._exit(0)
