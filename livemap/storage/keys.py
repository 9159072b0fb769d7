"""Every Redis key and channel name livemap uses, in one place.

Hash tags decide which Redis Cluster slot a key lives in, and so which keys one script or MULTI may
touch together: one order's keys and channel share ``{o:TRACKING_ID}``, one driver's
``{d:STORE:DRIVER}``, a store's settings, indexes and channel ``{s:STORE}``, and the outbox's
three keys ``{outbox}``. The geo index is one sorted set per store and region cell (1 degree),
each with its own tag ``{g:STORE:CELL}``, so the cells spread over the slots and no single slot
holds the world. Keys used alone (credentials, sessions, counters) need no tag.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def cell_of(lat: float, lon: float) -> str:
    """The geo shard a position falls in: a 1 x 1 degree cell, named by its south-west corner."""
    return f"{math.floor(lat)}:{math.floor(lon)}"


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str

    def layout(self) -> str:
        """The key layout's version (storage/layout.py)."""
        return f"{self.prefix}:layout"

    # credentials and stores
    def credential(self, token_digest: str) -> str:
        return f"{self.prefix}:cred:{token_digest}"

    def store(self, sid: str) -> str:
        return f"{self.prefix}:{{s:{sid}}}"

    def stores(self) -> str:
        """Set of every store id (the watchdog sweeps each store's drivers)."""
        return f"{self.prefix}:stores"

    def store_orders(self, sid: str) -> str:
        """Hash: the store's order id -> tracking id."""
        return f"{self.prefix}:{{s:{sid}}}:orders"

    def store_drivers(self, sid: str) -> str:
        """Hash: driver id -> name."""
        return f"{self.prefix}:{{s:{sid}}}:drivers"

    def store_active(self, sid: str) -> str:
        """Set of tracking ids of the store's active orders (the dispatcher's list; may hold a few more: see store)."""
        return f"{self.prefix}:{{s:{sid}}}:active"

    def store_retired(self, sid: str) -> str:
        """Sorted set: tracking ids of the store's final orders, scored by when they became final (retention)."""
        return f"{self.prefix}:{{s:{sid}}}:retired"

    def store_seen(self, sid: str) -> str:
        """Sorted set: driver id scored by its newest fix time (online / stale)."""
        return f"{self.prefix}:{{s:{sid}}}:seen"

    def store_lastfix(self, sid: str) -> str:
        """Sorted set: driver id scored by the arrival time of its newest fix (the watchdog's stale checks)."""
        return f"{self.prefix}:{{s:{sid}}}:lastfix"

    def geo(self, sid: str, cell: str) -> str:
        """Geo set of the store's drivers whose newest fix is in `cell`."""
        return f"{self.prefix}:geo:{{g:{sid}:{cell}}}"

    def geo_times(self, sid: str, cell: str) -> str:
        """Hash: driver id -> fix time of its entry in the cell's geo set (only newer fixes move it)."""
        return f"{self.prefix}:geo:{{g:{sid}:{cell}}}:ts"

    def store_channel(self, sid: str) -> str:
        return f"{self.prefix}:ch:{{s:{sid}}}"

    # drivers
    def driver(self, sid: str, did: str) -> str:
        return f"{self.prefix}:{{d:{sid}:{did}}}"

    def driver_orders(self, sid: str, did: str) -> str:
        """Set of tracking ids assigned to the driver and not final (its stops)."""
        return f"{self.prefix}:{{d:{sid}:{did}}}:orders"

    def driver_channel(self, sid: str, did: str) -> str:
        return f"{self.prefix}:ch:{{d:{sid}:{did}}}"

    # orders
    def order(self, tid: str) -> str:
        return f"{self.prefix}:{{o:{tid}}}"

    def order_events(self, tid: str) -> str:
        """Stream of the order's events; entry ids are the customer-visible offsets."""
        return f"{self.prefix}:{{o:{tid}}}:events"

    def order_history(self, tid: str) -> str:
        """List of the order's stage changes as JSON, never trimmed."""
        return f"{self.prefix}:{{o:{tid}}}:history"

    def order_channel(self, tid: str) -> str:
        return f"{self.prefix}:ch:{{o:{tid}}}"

    def order_notices(self, tid: str) -> str:
        """Set of the tokens of the notifiable events the order stored (each outbox entry waits for its own)."""
        return f"{self.prefix}:{{o:{tid}}}:notices"

    def order_proof(self, tid: str) -> str:
        """Hash: the order's proof of delivery (recipient name, photo and its type); kept as long as the order."""
        return f"{self.prefix}:{{o:{tid}}}:proof"

    def outbox(self) -> str:
        """Stream of notifiable events for the notifications worker."""
        return f"{self.prefix}:{{outbox}}"

    def outbox_delayed(self) -> str:
        """Sorted set of deliveries waiting for a retry or for quiet hours to end, scored by due time (ms)."""
        return f"{self.prefix}:{{outbox}}:delayed"

    def outbox_dead(self) -> str:
        """Stream of deliveries that failed for good (dead letters), with the last error."""
        return f"{self.prefix}:{{outbox}}:dead"

    def notify_done(self, event_id: str, channel: str) -> str:
        """Marks one event as delivered on one channel (expires), so a redelivery does not send it again."""
        return f"{self.prefix}:notify:done:{event_id}:{channel}"

    def lookup_attempts(self, sid: str, client: str) -> str:
        """Counter of order-lookup attempts by one client address for one store (expires)."""
        return f"{self.prefix}:lookup:{sid}:{client}"

    def store_placed(self, sid: str) -> str:
        """Sorted set of the tracking ids of the store's orders, by the time each was placed (the dashboard's list)."""
        return f"{self.prefix}:{{s:{sid}}}:placed"

    def store_returns(self, sid: str) -> str:
        """Sorted set of the tracking ids of the store's orders with a return, by the time it was asked for."""
        return f"{self.prefix}:{{s:{sid}}}:returns"

    # analytics: the store's own days, kept ANALYTICS_KEEP_DAYS (they outlive the orders they count)
    def store_day(self, sid: str, day: str) -> str:
        """Hash: the store's counters and histograms of one day (see domain/analytics.py)."""
        return f"{self.prefix}:{{s:{sid}}}:day:{day}"

    def store_day_customers(self, sid: str, day: str) -> str:
        """HyperLogLog of the customers who ordered that day."""
        return f"{self.prefix}:{{s:{sid}}}:day:{day}:customers"

    def store_day_viewed(self, sid: str, day: str) -> str:
        """HyperLogLog of the orders whose tracking page was viewed that day."""
        return f"{self.prefix}:{{s:{sid}}}:day:{day}:viewed"

    def store_comments(self, sid: str) -> str:
        """Sorted set of the customers' rated comments (JSON) by time; the newest COMMENTS_KEPT stay."""
        return f"{self.prefix}:{{s:{sid}}}:comments"

    # dispatchers
    def store_dispatchers(self, sid: str) -> str:
        """Hash: dispatcher account name -> its password hash and creation time (JSON)."""
        return f"{self.prefix}:{{s:{sid}}}:dispatchers"

    def session(self, token_digest: str) -> str:
        """Hash: a signed-in dispatcher's session (store, account, CSRF token); expires."""
        return f"{self.prefix}:session:{token_digest}"

    def notify_tests(self, sid: str) -> str:
        """Counter of the store's test notifications in the current minute (expires with it)."""
        return f"{self.store(sid)}:notify-tests"

    def signin_failures(self, client: str) -> str:
        """Counter of failed dispatcher sign-ins from one client address (expires)."""
        return f"{self.prefix}:signin:{client}"

    # shop integrations (WooCommerce, Shopify)
    def store_external_orders(self, sid: str, platform: str) -> str:
        """Hash: the platform's own order id -> the store's order id (an integration's orders)."""
        return f"{self.prefix}:{{s:{sid}}}:ext:{platform}"

    def external_order_lock(self, sid: str, platform: str, external_id: str) -> str:
        """Lock held while one delivery of a platform's order is applied (deliveries of it come in parallel)."""
        return f"{self.prefix}:{{s:{sid}}}:ext:{platform}:lock:{external_id}"

    def geocode(self, digest: str) -> str:
        """A geocoded address (by digest of geocoder + normalized address): [lat, lon], or [] when not found."""
        return f"{self.prefix}:geocode:{digest}"

    def hub_channel(self) -> str:
        """Keeps each process's pub/sub connection open while it has no other subscription."""
        return f"{self.prefix}:ch:hub"

    def fleet_paces(self, graph: str) -> str:
        """Street segments' paces learned from the fleet, for one routing graph (its segment ids)."""
        return f"{self.prefix}:{{fleet:{graph}}}:pace"

    def fleet_updated(self, graph: str) -> str:
        """The same segments by time of their newest observation (what pruning walks)."""
        return f"{self.prefix}:{{fleet:{graph}}}:updated"
