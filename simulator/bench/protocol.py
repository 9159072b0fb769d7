"""What the harness and its load generator processes say to each other (JSON lines over pipes).

The harness writes a `LoadSpec` to a file and starts ``python -m simulator.bench.loadgen SPEC``.
The load generator connects its sockets and answers `Ready` on stdout; the harness then sends a
`Run` (one window on the shared wall clock for every process) on stdin and gets one result back.
The idle measurement uses `Connect` / `Connected` / `Stop` instead, so the harness can read the
server's memory between the steps.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from .fleet import DriverSpec
from .hist import Histogram

Mode = Literal["ingest", "fanout", "idle"]


class LoadSpec(msgspec.Struct, frozen=True):
    mode: Mode
    #: Base URLs (http://host:port) of the servers under test; driver i uses ``urls[i % len(urls)]``.
    urls: list[str]
    #: This process's drivers (ingest, fanout), or the orders its idle customers watch.
    drivers: list[DriverSpec]
    store_key: str
    drivers_total: int
    #: fanout: customer j of the whole run watches driver ``j % drivers_total``'s order.
    customers_total: int = 0
    #: fanout: dispatcher sockets this process opens (they see every driver of the store).
    dispatchers: int = 0
    hz: float = 1.0
    #: idle: sockets connected before `Ready` (the baseline) and on `Connect` (the measured ones).
    warm: int = 0
    idle: int = 0
    seed: int = 0
    #: Handshakes in flight at once while connecting.
    concurrency: int = 100
    #: fanout: how long after the window a delivery still counts as received, not lost.
    drain_s: float = 3.0


# --- harness -> load generator -------------------------------------------------------------------


class Run(msgspec.Struct, tag="run", tag_field="kind"):
    """Send from `start`; count what happens in [t0, t1) (epoch seconds); stop sending at t1."""

    start: float
    t0: float
    t1: float


class Connect(msgspec.Struct, tag="connect", tag_field="kind"):
    """idle: connect the measured sockets now."""


class Stop(msgspec.Struct, tag="stop", tag_field="kind"):
    """idle: done, exit."""


Command = Run | Connect | Stop


# --- load generator -> harness -------------------------------------------------------------------


class Ready(msgspec.Struct, tag="ready", tag_field="kind"):
    connected: int
    connect_errors: int
    first_errors: list[str]


class Connected(msgspec.Struct, tag="connected", tag_field="kind"):
    connected: int
    connect_errors: int
    first_errors: list[str]


class IngestResult(msgspec.Struct, tag="ingest", tag_field="kind"):
    #: Replies received in the window: acks, and errors by code (rate_limited, unavailable...).
    acked: int
    errors: dict[str, int]
    #: Fixes acked but not stored as new (not newer than the last): should be 0.
    ignored: int
    #: Drivers that had at least one fix acked in the window.
    active: int
    rtt: Histogram
    #: Sockets the server closed during the run.
    disconnects: int


class FanoutResult(msgspec.Struct, tag="fanout", tag_field="kind"):
    #: Fixes sent in the window, and how many of them start a new second of fix time (livemap sends
    #: a customer at most one location per second of fix time).
    sent: int
    sent_new_seconds: int
    acked: int
    ack_errors: dict[str, int]
    customers: int
    #: Location deliveries owed to customers for fixes sent in the window, and those received
    #: (within the drain time); the same two over customers never closed as slow consumers.
    expected: int
    received: int
    expected_non_slow: int
    received_non_slow: int
    #: Customer sockets closed by the server with 1013 (slow consumer), and any other server close.
    slow_closed: int
    disconnects: int
    latency: Histogram
    ack_latency: Histogram
    #: How late the sender got to its scheduled send times (the load generator's own lag).
    send_lag: Histogram
    dispatchers: int
    #: Dispatcher `location` messages received (all drivers) and the latency of this process's own.
    dispatch_received: int
    dispatch_latency: Histogram


Report = Ready | Connected | IngestResult | FanoutResult
