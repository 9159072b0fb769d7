"""What operators graph and alert on: one process's counters, in Prometheus's format (`GET /metrics`).

Each process counts its own (scrape every process, as with any multi-process server behind a load
balancer); what lives in Redis (the outbox, the dead letters) is read at scrape time, so every
process reports the same figure for it. Names follow Prometheus's conventions: `_total` for
counters, `_seconds` for durations, a `kind` label for the three socket audiences.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

#: Fixes from drivers, by what became of them: stored (`accepted`), older than the newest stored
#: (`ignored`), or invalid (`rejected`, each fix of a batch on its own).
FIXES = Counter("livemap_fixes", "Driver fixes received, by outcome", ["outcome"])
# The per-fix path's children, looked up once.
FIXES_ACCEPTED, FIXES_IGNORED, FIXES_REJECTED = (FIXES.labels(o) for o in ("accepted", "ignored", "rejected"))
#: Driver messages answered with an error instead of an ack (`rate_limited`, `invalid_json`, ...).
DRIVER_ERRORS = Counter("livemap_driver_errors", "Driver messages answered with an error, by code", ["code"])
#: From a driver message's arrival to its ack (or error) being written to the socket.
ACK_SECONDS = Histogram(
    "livemap_ack_seconds",
    "Time from a driver message to its reply",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
#: One Redis round trip of the per-fix path (the driver's and its orders' scripts in one pipeline).
REDIS_SECONDS = Histogram(
    "livemap_redis_seconds",
    "Redis round trip of a driver message's write",
    buckets=(0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
SOCKETS = Gauge("livemap_sockets", "Open websockets, by audience", ["kind"])
SLOW_CLOSES = Counter("livemap_slow_consumer_closes", "Sockets closed for reading too slowly, by audience", ["kind"])
ROUTER_CALLS = Counter(
    "livemap_router_calls", "Road route requests, by outcome (ok, no_route, unavailable)", ["outcome"]
)
ROUTER_SECONDS = Histogram(
    "livemap_router_seconds", "Road route request time", buckets=(0.001, 0.005, 0.02, 0.1, 0.5, 2.0)
)
DELIVERIES = Counter(
    "livemap_notify_deliveries",
    "Notification attempts, by channel and outcome (sent, failed, dead)",
    ["channel", "outcome"],
)
OUTBOX_DEPTH = Gauge("livemap_outbox_depth", "Notifications not yet delivered: unread, in flight or waiting to retry")
DEAD_LETTERS = Gauge("livemap_dead_letters", "Notifications given up on, kept in the dead-letter stream")
